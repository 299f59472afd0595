// Chat templates: the Jinja `chat_template` of a Hugging Face tokenizer_config.json, compiled once
// and rendered per request the way transformers' apply_chat_template renders it (jinja2's
// ImmutableSandboxedEnvironment with trim_blocks, lstrip_blocks, loop controls and
// {% generation %}, raise_exception, strftime_now and a json.dumps tojson). The Jinja engine is
// models/jinja/ (lexer -> parser -> interpreter, with values and built-ins below them); this
// header is all its users see.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "models/jinja/limits.h"
#include "nlohmann/json.hpp"

namespace attnres {

namespace jinja {
struct Template;
}

// Bounds on one render; exceeding one is an InvalidArgument error naming the limit.
using ChatTemplateLimits = jinja::Limits;

class ChatTemplate {  // cheap to copy (shared immutable compiled form), thread-safe Render
 public:
  // Compiles Jinja source. Errors: InvalidArgument "chat template line L, column C: <what>".
  static absl::StatusOr<ChatTemplate> Compile(std::string_view source);

  // Renders with `context`'s keys as variables (messages, add_generation_prompt, bos_token,
  // eos_token, tools, documents, and any extra keys; transformers passes tools and documents as
  // null when absent). Errors: InvalidArgument; for raise_exception exactly the template's
  // message, and IsTemplateRaise(status) true; for other runtime errors
  // "chat template line L: <what>" (limits included).
  absl::StatusOr<std::string> Render(const nlohmann::ordered_json& context) const;
  absl::StatusOr<std::string> Render(const nlohmann::ordered_json& context,
                                     const ChatTemplateLimits& limits) const;

 private:
  explicit ChatTemplate(std::shared_ptr<const jinja::Template> compiled)
      : compiled_(std::move(compiled)) {}
  std::shared_ptr<const jinja::Template> compiled_;
};

// The status came from the template's raise_exception().
bool IsTemplateRaise(const absl::Status& status);

// What transformers' apply_chat_template(..., continue_final_message=True) keeps of `rendered`
// (the conversation written without the generation prompt) so that the model continues the final
// message, whose content is `final_message`: the text up to the last occurrence of that content
// stripped of whitespace (Python's str.strip), plus its trailing whitespace when the template kept
// it (transformers compares the unstripped content, so content with leading whitespace always
// loses its trailing whitespace). Byte offsets; UTF-8 in and out. InvalidArgument when the
// stripped content is not in `rendered` (the template rewrote or dropped it).
absl::StatusOr<std::string> CutAfterFinalMessage(std::string_view rendered,
                                                 std::string_view final_message);

// What a model directory says about chat: the template from chat_template.jinja, else from
// tokenizer_config.json's chat_template (nullopt when neither has one), and that file's special
// tokens.
struct ChatTemplateConfig {
  std::string source;     // chat_template: a string, or the entry named "default" of a list of
                          // {name, template}; or chat_template.jinja's text
  std::string origin;     // where source came from, for messages ("<dir>/chat_template.jinja")
  std::string bos_token;  // "" when absent; a string or an AddedToken object {"content": ...}
  std::string eos_token;
};
// Errors (InvalidArgument) name the file and key.
absl::StatusOr<std::optional<ChatTemplateConfig>> ReadChatTemplateConfig(
    const std::filesystem::path& model_dir);

}  // namespace attnres
