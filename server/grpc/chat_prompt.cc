// Chat prompts -> text (see chat_prompt.h).
#include "server/grpc/chat_prompt.h"

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace attnres {

absl::StatusOr<std::string> RenderChat(const v1::Chat& chat, const ServingContext& ctx) {
  if (!ctx.chat.has_value()) {
    return absl::FailedPreconditionError(
        "prompt.chat needs a chat template: the model directory has none (chat_template.jinja "
        "or tokenizer_config.json's chat_template) and the server was started without "
        "--chat-template; send prompt.text");
  }
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();
  for (const v1::ChatMessage& m : chat.messages()) {
    messages.push_back({{"role", m.role()}, {"content", m.content()}});
  }
  // Continuing the final message needs it left open, so the generation prompt then defaults off
  // (request validation refuses both set true).
  const bool continue_final = chat.continue_final_message();
  const nlohmann::ordered_json context = {
      {"messages", std::move(messages)},
      {"add_generation_prompt",
       chat.has_add_generation_prompt() ? chat.add_generation_prompt() : !continue_final},
      {"bos_token", ctx.chat->bos_token},
      {"eos_token", ctx.chat->eos_token},
      {"tools", nullptr},  // as transformers passes them without tools or documents
      {"documents", nullptr}};
  absl::StatusOr<std::string> text = ctx.chat->chat_template.Render(context);
  if (!text.ok()) {
    const absl::Status& s = text.status();
    return absl::Status(s.code(), IsTemplateRaise(s)
                                      ? absl::StrCat("prompt.chat: the model's chat template "
                                                     "refused the conversation: ",
                                                     s.message())
                                      : absl::StrCat("prompt.chat: ", s.message()));
  }
  if (!continue_final || chat.messages().empty()) return text;
  absl::StatusOr<std::string> cut =
      CutAfterFinalMessage(*text, chat.messages(chat.messages_size() - 1).content());
  if (cut.ok()) return cut;
  return absl::Status(cut.status().code(),
                      absl::StrCat("prompt.chat.continue_final_message: ", cut.status().message()));
}

}  // namespace attnres
