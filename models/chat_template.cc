// ChatTemplate over the Jinja engine in models/jinja/, and reading tokenizer_config.json.
#include "models/chat_template.h"

#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "models/config_json.h"
#include "models/file_text.h"
#include "models/jinja/interpreter.h"
#include "models/jinja/lexer.h"
#include "models/jinja/parser.h"
#include "models/jinja/py_string.h"

namespace attnres {
namespace {

// The payload that marks a raise_exception() status.
constexpr char kRaisePayload[] = "attnres.chat_template.raise";

}  // namespace

absl::StatusOr<ChatTemplate> ChatTemplate::Compile(std::string_view source) {
  try {
    return ChatTemplate(jinja::Parse(source));
  } catch (const jinja::CompileError& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("chat template line ", e.line, ", column ", e.column, ": ", e.message));
  } catch (const jinja::TemplateError& e) {  // a value error while building constants
    return absl::InvalidArgumentError(absl::StrCat("chat template: ", e.message));
  }
}

absl::StatusOr<std::string> ChatTemplate::Render(const nlohmann::ordered_json& context) const {
  return Render(context, ChatTemplateLimits{});
}

absl::StatusOr<std::string> ChatTemplate::Render(const nlohmann::ordered_json& context,
                                                 const ChatTemplateLimits& limits) const {
  if (!context.is_object()) {
    return absl::InvalidArgumentError("chat template context must be a JSON object");
  }
  try {
    jinja::Value ctx = jinja::Value::FromJson(context);
    jinja::Interpreter interpreter(compiled_, std::move(ctx), limits);
    return interpreter.Render();
  } catch (const jinja::TemplateError& e) {
    if (e.is_raise) {
      absl::Status s = absl::InvalidArgumentError(e.message);
      s.SetPayload(kRaisePayload, absl::Cord("1"));
      return s;
    }
    return absl::InvalidArgumentError(absl::StrCat("chat template line ", e.line, ": ", e.message));
  }
}

bool IsTemplateRaise(const absl::Status& status) {
  return !status.ok() && status.GetPayload(kRaisePayload).has_value();
}

absl::StatusOr<std::string> CutAfterFinalMessage(std::string_view rendered,
                                                 std::string_view final_message) {
  const std::string stripped = jinja::pystr::Strip(final_message, std::nullopt, true, true);
  const std::string lstripped = jinja::pystr::Strip(final_message, std::nullopt, true, false);
  // rfind("") is rendered.size(), as Python's rindex("") is len(rendered).
  const size_t loc = rendered.rfind(stripped);
  if (loc == std::string_view::npos) {
    return absl::InvalidArgumentError(
        "the final message does not appear in the rendered conversation (the chat template "
        "changes or drops its content), so it cannot be continued");
  }
  // transformers' test, kept as it is: the slice as long as the left-stripped content against the
  // unstripped content. Equal: the template kept the content as given, trailing whitespace too.
  if (rendered.substr(loc, lstripped.size()) == final_message) {
    return std::string(rendered.substr(0, loc + lstripped.size()));
  }
  return std::string(rendered.substr(0, loc + stripped.size()));
}

namespace {

absl::Status KeyError(const std::string& file, const char* key, const char* what) {
  return config_json::KeyError(file, key, absl::StrCat("must be ", what));
}

// A special token: absent or null -> "", a string, or an AddedToken object {"content": ...}.
absl::Status ReadToken(const nlohmann::ordered_json& j, const std::string& file, const char* key,
                       std::string* out) {
  const auto it = j.find(key);
  if (it == j.end() || it->is_null()) return absl::OkStatus();
  if (it->is_string()) {
    *out = it->get<std::string>();
    return absl::OkStatus();
  }
  if (it->is_object()) {
    const auto c = it->find("content");
    if (c != it->end() && c->is_string()) {
      *out = c->get<std::string>();
      return absl::OkStatus();
    }
  }
  return KeyError(file, key, "a string or an object with a string \"content\"");
}

// tokenizer_config.json's chat_template, if any: a string, or the entry named "default" of a
// list of {name, template}.
absl::Status ReadTemplate(const nlohmann::ordered_json& j, const std::string& file,
                          ChatTemplateConfig* config) {
  const auto it = j.find("chat_template");
  if (it == j.end() || it->is_null()) return absl::OkStatus();
  constexpr char kShape[] = "a string or a list of {name, template}";
  if (it->is_string()) {
    config->source = it->get<std::string>();
  } else if (it->is_array()) {
    bool found = false;
    for (const auto& entry : *it) {
      if (!entry.is_object()) return KeyError(file, "chat_template", kShape);
      const auto name = entry.find("name");
      const auto tmpl = entry.find("template");
      if (name == entry.end() || !name->is_string() || tmpl == entry.end() || !tmpl->is_string()) {
        return KeyError(file, "chat_template", kShape);
      }
      if (!found && name->get<std::string>() == "default") {
        config->source = tmpl->get<std::string>();
        found = true;
      }
    }
    if (!found) {
      return absl::InvalidArgumentError(
          absl::StrCat(file, ": key \"chat_template\" has no entry named \"default\""));
    }
  } else {
    return KeyError(file, "chat_template", kShape);
  }
  config->origin = absl::StrCat(file, ": chat_template");
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::optional<ChatTemplateConfig>> ReadChatTemplateConfig(
    const std::filesystem::path& model_dir) {
  ChatTemplateConfig config;
  const std::filesystem::path path = model_dir / "tokenizer_config.json";
  const std::string file = path.string();
  absl::StatusOr<std::string> text = ReadFileText(path);
  if (!text.ok() && !absl::IsNotFound(text.status())) return text.status();
  if (text.ok()) {
    const auto j = nlohmann::ordered_json::parse(*text, nullptr, /*allow_exceptions=*/false);
    if (j.is_discarded() || !j.is_object()) {
      return absl::InvalidArgumentError(absl::StrCat(file, ": not a JSON object"));
    }
    if (absl::Status s = ReadTemplate(j, file, &config); !s.ok()) return s;
    for (absl::Status s : {ReadToken(j, file, "bos_token", &config.bos_token),
                           ReadToken(j, file, "eos_token", &config.eos_token)}) {
      if (!s.ok()) return s;
    }
  }
  // Newer transformers versions save the template beside tokenizer_config.json instead; it wins,
  // as it does there.
  const std::filesystem::path jinja_path = model_dir / "chat_template.jinja";
  absl::StatusOr<std::string> jinja = ReadFileText(jinja_path);
  if (!jinja.ok() && !absl::IsNotFound(jinja.status())) return jinja.status();
  if (jinja.ok()) {
    config.source = *std::move(jinja);
    config.origin = jinja_path.string();
  }
  if (config.origin.empty()) return std::optional<ChatTemplateConfig>();
  return std::optional<ChatTemplateConfig>(std::move(config));
}

}  // namespace attnres
