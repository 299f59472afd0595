// Request range checks (see request_validation.h). Comparisons are written so that NaN fails.
#include "server/grpc/request_validation.h"

#include <algorithm>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "nlohmann/json.hpp"
#include "server/structured/regex_grammar.h"

namespace attnres {
namespace {

absl::Status Invalid(std::string message) { return absl::InvalidArgumentError(std::move(message)); }

// Checks lo <= value <= hi (lo < value when !lo_inclusive); NaN is out of range.
absl::Status CheckFloat(std::string_view field, float value, float lo, float hi,
                        bool lo_inclusive = true) {
  const bool above_lo = lo_inclusive ? value >= lo : value > lo;
  if (above_lo && value <= hi) return absl::OkStatus();
  return Invalid(absl::StrFormat("%s must be in %c%g, %g], got %g", field, lo_inclusive ? '[' : '(',
                                 lo, hi, value));
}

absl::Status CheckInt(std::string_view field, int64_t value, int64_t lo, int64_t hi) {
  if (value >= lo && value <= hi) return absl::OkStatus();
  return Invalid(absl::StrFormat("%s must be in [%d, %d], got %d", field, lo, hi, value));
}

absl::Status CheckTokenIds(std::string_view field,
                           const google::protobuf::RepeatedField<int32_t>& ids,
                           int32_t vocab_size) {
  for (int i = 0; i < ids.size(); ++i) {
    if (ids[i] < 0 || ids[i] >= vocab_size) {
      return Invalid(absl::StrFormat("%s[%d] must be in [0, vocab_size=%d), got %d", field, i,
                                     vocab_size, ids[i]));
    }
  }
  return absl::OkStatus();
}

// tool_choice, tool_choice_function and parallel_tool_calls: only with tools; the function is one
// of them, and not with NONE. Whether the server can force calls is the conversion's
// (proto_convert.h): it knows the server's --tool-call-parser.
absl::Status ValidateToolChoice(const v1::Chat& chat) {
  if (!v1::Chat::ToolChoice_IsValid(chat.tool_choice())) {
    return Invalid(
        absl::StrFormat("prompt.chat.tool_choice must be TOOL_CHOICE_AUTO, TOOL_CHOICE_NONE or "
                        "TOOL_CHOICE_REQUIRED, got %d",
                        chat.tool_choice()));
  }
  const std::string& function = chat.tool_choice_function();
  if (!function.empty()) {
    if (chat.tool_choice() == v1::Chat::TOOL_CHOICE_NONE) {
      return Invalid(
          "prompt.chat.tool_choice_function must be empty with tool_choice TOOL_CHOICE_NONE: "
          "a named function forces a call");
    }
    const bool known = std::any_of(chat.tools().begin(), chat.tools().end(),
                                   [&](const v1::Tool& tool) { return tool.name() == function; });
    if (!known) {
      return Invalid(absl::StrFormat(
          "prompt.chat.tool_choice_function must name one of prompt.chat.tools, got \"%s\"",
          absl::CHexEscape(function.substr(0, 80))));
    }
  }
  if (chat.tools_size() > 0) return absl::OkStatus();
  if (chat.tool_choice() != v1::Chat::TOOL_CHOICE_AUTO) {
    return Invalid(
        absl::StrFormat("prompt.chat.tool_choice must be TOOL_CHOICE_AUTO (unset) without "
                        "prompt.chat.tools, got %s",
                        v1::Chat::ToolChoice_Name(chat.tool_choice())));
  }
  if (chat.has_parallel_tool_calls()) {
    return Invalid("prompt.chat.parallel_tool_calls must be unset without prompt.chat.tools");
  }
  return absl::OkStatus();
}

absl::Status ValidateTools(const v1::Chat& chat) {
  if (chat.tools_size() > kMaxTools) {
    return Invalid(absl::StrFormat("prompt.chat.tools must have at most %d entries, got %d",
                                   kMaxTools, chat.tools_size()));
  }
  for (int i = 0; i < chat.tools_size(); ++i) {
    const v1::Tool& tool = chat.tools(i);
    if (!IsToolName(tool.name())) {
      return Invalid(absl::StrFormat(
          "prompt.chat.tools[%d].name must be 1-%d characters of [A-Za-z0-9_-], got \"%s\"", i,
          kMaxToolNameChars, absl::CHexEscape(tool.name().substr(0, 80))));
    }
    if (!tool.parameters_json().empty() && !IsJsonObject(tool.parameters_json())) {
      return Invalid(absl::StrFormat(
          "prompt.chat.tools[%d].parameters_json must be empty or the text of a JSON object", i));
    }
  }
  return ValidateToolChoice(chat);
}

// A message's tool calls (role "assistant") or tool_call_id (role "tool").
absl::Status ValidateToolFields(const v1::ChatMessage& m, int i) {
  const std::string field = absl::StrFormat("prompt.chat.messages[%d]", i);
  if (m.tool_calls_size() > 0 && m.role() != "assistant") {
    return Invalid(absl::StrCat(field, ".tool_calls is for messages of role \"assistant\" only"));
  }
  if (m.tool_calls_size() > kMaxToolCallsPerMessage) {
    return Invalid(absl::StrFormat("%s.tool_calls must have at most %d entries, got %d", field,
                                   kMaxToolCallsPerMessage, m.tool_calls_size()));
  }
  for (int k = 0; k < m.tool_calls_size(); ++k) {
    const v1::ToolCall& call = m.tool_calls(k);
    const std::string name = absl::StrFormat("%s.tool_calls[%d]", field, k);
    if (call.id().size() > static_cast<size_t>(kMaxToolCallIdBytes)) {
      return Invalid(absl::StrFormat("%s.id must be at most %d bytes, got %d", name,
                                     kMaxToolCallIdBytes, call.id().size()));
    }
    if (call.name().empty() || call.name().size() > static_cast<size_t>(kMaxToolCallNameBytes)) {
      return Invalid(absl::StrFormat("%s.name must be 1-%d bytes, got %d", name,
                                     kMaxToolCallNameBytes, call.name().size()));
    }
    if (!IsJsonObject(call.arguments_json())) {
      return Invalid(absl::StrCat(name, ".arguments_json must be the text of a JSON object"));
    }
  }
  if (!m.tool_call_id().empty() && m.role() != "tool") {
    return Invalid(absl::StrCat(field, ".tool_call_id is for messages of role \"tool\" only"));
  }
  if (m.tool_call_id().size() > static_cast<size_t>(kMaxToolCallIdBytes)) {
    return Invalid(absl::StrFormat("%s.tool_call_id must be at most %d bytes, got %d", field,
                                   kMaxToolCallIdBytes, m.tool_call_id().size()));
  }
  return absl::OkStatus();
}

absl::Status ValidateChat(const v1::Chat& chat) {
  if (chat.messages().empty()) return Invalid("prompt.chat.messages must not be empty");
  if (chat.messages_size() > kMaxChatMessages) {
    return Invalid(absl::StrFormat("prompt.chat.messages must have at most %d entries, got %d",
                                   kMaxChatMessages, chat.messages_size()));
  }
  for (int i = 0; i < chat.messages_size(); ++i) {
    const size_t bytes = chat.messages(i).role().size();
    if (bytes < 1 || bytes > static_cast<size_t>(kMaxChatRoleBytes)) {
      return Invalid(absl::StrFormat("prompt.chat.messages[%d].role must be 1-%d bytes, got %d", i,
                                     kMaxChatRoleBytes, bytes));
    }
    if (absl::Status s = ValidateToolFields(chat.messages(i), i); !s.ok()) return s;
  }
  if (absl::Status s = ValidateTools(chat); !s.ok()) return s;
  // The generation prompt closes the final message, which is what continuing it must not do (as
  // transformers and vLLM refuse the pair).
  if (chat.continue_final_message() && chat.has_add_generation_prompt() &&
      chat.add_generation_prompt()) {
    return Invalid(
        "prompt.chat.continue_final_message and prompt.chat.add_generation_prompt must not both "
        "be true: continue the final message or start the assistant's turn");
  }
  return absl::OkStatus();
}

absl::Status ValidatePrompt(const v1::GenerateRequest& request, const ValidationLimits& limits) {
  if (!request.has_prompt())
    return Invalid("prompt is required (set prompt.text, prompt.token_ids or prompt.chat)");
  const v1::Prompt& prompt = request.prompt();
  switch (prompt.kind_case()) {
    case v1::Prompt::kText:
      if (prompt.text().empty()) return Invalid("prompt.text must not be empty");
      return absl::OkStatus();
    case v1::Prompt::kTokenIds:
      if (prompt.token_ids().ids().empty()) {
        return Invalid("prompt.token_ids.ids must not be empty");
      }
      return CheckTokenIds("prompt.token_ids.ids", prompt.token_ids().ids(), limits.vocab_size);
    case v1::Prompt::kChat:
      return ValidateChat(prompt.chat());
    default:
      return Invalid("prompt must set exactly one of text, token_ids or chat");
  }
}

// Entries in ascending id order, so that the first bad one reported does not depend on the map's.
absl::Status ValidateLogitBias(const google::protobuf::Map<int32_t, float>& bias,
                               const ValidationLimits& limits, const std::string& field) {
  if (bias.size() > static_cast<size_t>(kMaxLogitBias)) {
    return Invalid(absl::StrFormat("%s must have at most %d entries, got %d", field, kMaxLogitBias,
                                   bias.size()));
  }
  std::vector<std::pair<int32_t, float>> entries(bias.begin(), bias.end());
  std::sort(entries.begin(), entries.end());
  for (const auto& [id, value] : entries) {
    if (id < 0 || id >= limits.vocab_size) {
      return Invalid(absl::StrFormat("%s keys must be token ids in [0, vocab_size=%d), got %d",
                                     field, limits.vocab_size, id));
    }
    absl::Status status = CheckFloat(absl::StrFormat("%s[%d]", field, id), value, -kMaxAbsLogitBias,
                                     kMaxAbsLogitBias);
    if (!status.ok()) return status;
  }
  return absl::OkStatus();
}

// `prefix` names where the fields come from: "sampling." for a request, "<file>: " for defaults.
absl::Status ValidateSampling(const v1::SamplingParams& s, const ValidationLimits& limits,
                              std::string_view prefix) {
  const auto field = [&](std::string_view name) { return std::string(prefix).append(name); };
  absl::Status status;
  if (s.has_temperature()) {
    status.Update(CheckFloat(field("temperature"), s.temperature(), 0.0f, kMaxTemperature));
  }
  status.Update(CheckInt(field("top_k"), s.top_k(), 0, limits.vocab_size));
  if (s.has_top_p()) status.Update(CheckFloat(field("top_p"), s.top_p(), 0.0f, 1.0f, false));
  status.Update(CheckFloat(field("min_p"), s.min_p(), 0.0f, 1.0f));
  if (s.has_repetition_penalty()) {
    status.Update(CheckFloat(field("repetition_penalty"), s.repetition_penalty(), 0.0f,
                             kMaxRepetitionPenalty, false));
  }
  status.Update(CheckFloat(field("presence_penalty"), s.presence_penalty(),
                           -kMaxAbsPresenceFrequencyPenalty, kMaxAbsPresenceFrequencyPenalty));
  status.Update(CheckFloat(field("frequency_penalty"), s.frequency_penalty(),
                           -kMaxAbsPresenceFrequencyPenalty, kMaxAbsPresenceFrequencyPenalty));
  status.Update(ValidateLogitBias(s.logit_bias(), limits, field("logit_bias")));
  return status;  // the first failure
}

// Sizes and names only: the schema is compiled in the conversion (proto_convert.h).
absl::Status ValidateResponseFormat(const v1::GenerateRequest& request) {
  if (!request.has_response_format()) return absl::OkStatus();
  if (request.has_max_tokens() && request.max_tokens() == 0) {
    return Invalid(
        "response_format must not be set with max_tokens 0: nothing is generated when scoring "
        "the prompt");
  }
  const v1::ResponseFormat& format = request.response_format();
  switch (format.format_case()) {
    case v1::ResponseFormat::kJsonObject:
      return absl::OkStatus();
    case v1::ResponseFormat::kJsonSchema: {
      const v1::ResponseFormat::JsonSchema& schema = format.json_schema();
      const size_t bytes = schema.schema_json().size();
      if (bytes < 1 || bytes > static_cast<size_t>(kMaxResponseSchemaBytes)) {
        return Invalid(
            absl::StrFormat("response_format.json_schema.schema_json must be 1-%d bytes, got %d",
                            kMaxResponseSchemaBytes, bytes));
      }
      if (!schema.name().empty() && !IsToolName(schema.name())) {
        return Invalid(absl::StrFormat(
            "response_format.json_schema.name must be empty or 1-%d characters of [A-Za-z0-9_-], "
            "got \"%s\"",
            kMaxToolNameChars, absl::CHexEscape(schema.name().substr(0, 80))));
      }
      return absl::OkStatus();
    }
    case v1::ResponseFormat::kRegex: {
      const size_t bytes = format.regex().pattern().size();
      if (bytes < 1 || bytes > structured::kMaxRegexBytes) {
        return Invalid(absl::StrFormat("response_format.regex.pattern must be 1-%d bytes, got %d",
                                       structured::kMaxRegexBytes, bytes));
      }
      return absl::OkStatus();
    }
    case v1::ResponseFormat::kChoice:  // sizes: ChoiceGrammar, at the conversion
      return absl::OkStatus();
    default:
      return Invalid("response_format must set one of json_object, json_schema, regex or choice");
  }
}

absl::Status ValidateStops(const v1::GenerateRequest& request, const ValidationLimits& limits) {
  if (request.stop_size() > kMaxStopStrings) {
    return Invalid(absl::StrFormat("stop must have at most %d strings, got %d", kMaxStopStrings,
                                   request.stop_size()));
  }
  for (int i = 0; i < request.stop_size(); ++i) {
    const size_t n = request.stop(i).size();
    if (n < 1 || n > static_cast<size_t>(kMaxStopStringBytes)) {
      return Invalid(absl::StrFormat("stop[%d] must be 1 to %d bytes long, got %d", i,
                                     kMaxStopStringBytes, n));
    }
  }
  if (request.stop_token_ids_size() > kMaxStopTokenIds) {
    return Invalid(absl::StrFormat("stop_token_ids must have at most %d ids, got %d",
                                   kMaxStopTokenIds, request.stop_token_ids_size()));
  }
  return CheckTokenIds("stop_token_ids", request.stop_token_ids(), limits.vocab_size);
}

}  // namespace

bool IsToolName(std::string_view name) {
  if (name.empty() || name.size() > static_cast<size_t>(kMaxToolNameChars)) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-';
  });
}

bool IsJsonObject(std::string_view text) {
  const nlohmann::json j = nlohmann::json::parse(text.begin(), text.end(), nullptr,
                                                 /*allow_exceptions=*/false);
  return j.is_object();
}

absl::Status ValidateGenerateRequest(const v1::GenerateRequest& request,
                                     const ValidationLimits& limits) {
  if (request.request_id().size() > static_cast<size_t>(kMaxRequestIdBytes)) {
    return Invalid(absl::StrFormat("request_id must be at most %d bytes, got %d",
                                   kMaxRequestIdBytes, request.request_id().size()));
  }
  absl::Status status = ValidatePrompt(request, limits);
  if (!status.ok()) return status;
  if (request.has_max_tokens() && request.max_tokens() < 0) {
    return Invalid(absl::StrFormat("max_tokens must be >= 0, got %d", request.max_tokens()));
  }
  if (request.min_tokens() < 0) {
    return Invalid(absl::StrFormat("min_tokens must be >= 0, got %d", request.min_tokens()));
  }
  status = ValidateSampling(request.sampling(), limits, "sampling.");
  if (!status.ok()) return status;
  status = ValidateStops(request, limits);
  if (!status.ok()) return status;
  if (request.has_logprobs()) {
    status = CheckInt("logprobs", request.logprobs(), 0, kMaxLogprobs);
    if (!status.ok()) return status;
  }
  if (request.has_prompt_logprobs()) {
    status = CheckInt("prompt_logprobs", request.prompt_logprobs(), 0, kMaxLogprobs);
    if (!status.ok()) return status;
  }
  const v1::Chat& chat = request.prompt().chat();  // the default instance for other prompts
  if (request.has_max_tokens() && request.max_tokens() == 0 &&
      (chat.tool_choice() == v1::Chat::TOOL_CHOICE_REQUIRED ||
       !chat.tool_choice_function().empty())) {
    return Invalid(
        "prompt.chat.tool_choice must not force calls with max_tokens 0: nothing is generated "
        "when scoring the prompt");
  }
  return ValidateResponseFormat(request);
}

absl::Status ValidateGenerationDefaults(const GenerationConfig& defaults,
                                        const ValidationLimits& limits, std::string_view origin) {
  // The defaults fill a request's unset sampling fields, so they obey the request's rules.
  v1::SamplingParams s;
  if (defaults.temperature) s.set_temperature(*defaults.temperature);
  if (defaults.top_k) s.set_top_k(*defaults.top_k);
  if (defaults.top_p) s.set_top_p(*defaults.top_p);
  if (defaults.min_p) s.set_min_p(*defaults.min_p);
  if (defaults.repetition_penalty) s.set_repetition_penalty(*defaults.repetition_penalty);
  const std::string prefix = std::string(origin) + ": ";
  absl::Status status = ValidateSampling(s, limits, prefix);
  if (!status.ok()) return status;
  if (defaults.max_new_tokens) {
    status = CheckInt(prefix + "max_new_tokens", *defaults.max_new_tokens, 1, INT32_MAX);
    if (!status.ok()) return status;
  }
  google::protobuf::RepeatedField<int32_t> eos(defaults.eos_token_ids.begin(),
                                               defaults.eos_token_ids.end());
  return CheckTokenIds(prefix + "eos_token_id", eos, limits.vocab_size);
}

absl::Status ValidatePromptLength(int prompt_len, std::optional<int> max_tokens,
                                  const ValidationLimits& limits) {
  if (prompt_len < 1) return Invalid("prompt must not tokenize to zero tokens");
  if (max_tokens == 0) {  // scoring only: the prompt may fill the context
    if (prompt_len <= limits.max_model_len) return absl::OkStatus();
    return Invalid(absl::StrFormat("prompt has %d tokens; it must be at most max_model_len=%d",
                                   prompt_len, limits.max_model_len));
  }
  if (prompt_len >= limits.max_model_len) {
    return Invalid(absl::StrFormat(
        "prompt has %d tokens; it must be shorter than max_model_len=%d to leave room for output",
        prompt_len, limits.max_model_len));
  }
  const int room = limits.max_model_len - prompt_len;
  if (max_tokens.has_value() && *max_tokens > room) {
    return Invalid(absl::StrFormat(
        "max_tokens must be in [0, max_model_len - prompt length = %d - %d = %d], got %d",
        limits.max_model_len, prompt_len, room, *max_tokens));
  }
  return absl::OkStatus();
}

absl::Status ValidateMinTokens(int min_tokens, int max_tokens) {
  if (min_tokens <= max_tokens) return absl::OkStatus();
  return Invalid(
      absl::StrFormat("min_tokens must be in [0, max_tokens=%d], got %d", max_tokens, min_tokens));
}

absl::Status ValidateTokenizeRequest(const v1::TokenizeRequest& request) {
  return absl::OkStatus();  // any UTF-8 text (invalid bytes become U+FFFD), empty included
}

absl::Status ValidateDetokenizeRequest(const v1::DetokenizeRequest& request,
                                       const ValidationLimits& limits) {
  return CheckTokenIds("token_ids", request.token_ids(), limits.vocab_size);
}

}  // namespace attnres
