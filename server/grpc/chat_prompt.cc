// Chat prompts -> text (see chat_prompt.h).
#include "server/grpc/chat_prompt.h"

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace attnres {
namespace {

using json = nlohmann::ordered_json;

// Text request validation has checked to be a JSON object; ordered, so that a template's tojson
// writes the keys in the order the client gave them (as Python's json.loads keeps them).
json ParseObject(const std::string& text) {
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  return j.is_discarded() ? json::object() : j;
}

// As vLLM passes request.tools (each tool's model_dump(): unset fields are null).
json ToolsJson(const v1::Chat& chat) {
  if (chat.tools().empty()) return nullptr;  // as transformers passes no tools
  json tools = json::array();
  for (const v1::Tool& t : chat.tools()) {
    tools.push_back(
        {{"type", "function"},
         {"function",
          {{"name", t.name()},
           {"description", t.has_description() ? json(t.description()) : json()},
           {"parameters",
            t.parameters_json().empty() ? json() : ParseObject(t.parameters_json())}}}});
  }
  return tools;
}

// {"role", "content"}, plus "tool_calls" (arguments parsed into objects, as vLLM hands them to
// templates) or "tool_call_id" where set.
json MessageJson(const v1::ChatMessage& m) {
  json message = {{"role", m.role()}, {"content", m.content()}};
  if (!m.tool_calls().empty()) {
    json calls = json::array();
    for (const v1::ToolCall& c : m.tool_calls()) {
      calls.push_back(
          {{"id", c.id()},
           {"type", "function"},
           {"function", {{"name", c.name()}, {"arguments", ParseObject(c.arguments_json())}}}});
    }
    message["tool_calls"] = std::move(calls);
  }
  if (!m.tool_call_id().empty()) message["tool_call_id"] = m.tool_call_id();
  return message;
}

}  // namespace

absl::StatusOr<std::string> RenderChat(const v1::Chat& chat, const ServingContext& ctx) {
  if (!ctx.chat.has_value()) {
    return absl::FailedPreconditionError(
        "prompt.chat needs a chat template: the model directory has none (chat_template.jinja "
        "or tokenizer_config.json's chat_template) and the server was started without "
        "--chat-template; send prompt.text");
  }
  json messages = json::array();
  for (const v1::ChatMessage& m : chat.messages()) messages.push_back(MessageJson(m));
  // Continuing the final message needs it left open, so the generation prompt then defaults off
  // (request validation refuses both set true).
  const bool continue_final = chat.continue_final_message();
  const json context = {
      {"messages", std::move(messages)},
      {"add_generation_prompt",
       chat.has_add_generation_prompt() ? chat.add_generation_prompt() : !continue_final},
      {"bos_token", ctx.chat->bos_token},
      {"eos_token", ctx.chat->eos_token},
      {"tools", ToolsJson(chat)},
      {"documents", nullptr}};  // as transformers passes them without documents
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
