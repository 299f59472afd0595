// /v1/completions and /v1/chat/completions bodies -> GenerateRequest (see openai_request.h).
#include "server/openai/openai_request.h"

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <iterator>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "models/config_json.h"
#include "models/status_macros.h"
#include "nlohmann/json.hpp"
#include "server/grpc/request_validation.h"

namespace attnres {
namespace {

using config_json::Has;
using config_json::KeyError;
using nlohmann::json;

constexpr char kOrigin[] = "request";
constexpr int kDefaultMaxTokens = 16;  // OpenAI's default for completions

using KeySet = absl::flat_hash_set<std::string>;

// The keys both generation calls take: OpenAI's, and the extensions other open servers accept
// too, named as in the gRPC API.
constexpr const char* kGenerationKeys[] = {"model",
                                           "max_tokens",
                                           "temperature",
                                           "top_p",
                                           "n",
                                           "stream",
                                           "stream_options",
                                           "logprobs",
                                           "stop",
                                           "presence_penalty",
                                           "frequency_penalty",
                                           "logit_bias",
                                           "seed",
                                           "user",
                                           "top_k",
                                           "min_p",
                                           "repetition_penalty",
                                           "min_tokens",
                                           "ignore_eos",
                                           "stop_token_ids",
                                           "skip_special_tokens",
                                           "add_special_tokens",
                                           "response_format",
                                           "guided_regex",
                                           "guided_choice"};

KeySet GenerationKeysAnd(std::initializer_list<const char*> more) {
  KeySet keys(std::begin(kGenerationKeys), std::end(kGenerationKeys));
  keys.insert(more.begin(), more.end());
  return keys;
}

const KeySet& CompletionKeys() {
  static const KeySet keys = GenerationKeysAnd({"prompt", "echo", "best_of", "suffix"});
  return keys;
}

const KeySet& ChatKeys() {
  static const KeySet keys = GenerationKeysAnd({"messages", "max_completion_tokens", "top_logprobs",
                                                "add_generation_prompt", "continue_final_message",
                                                "tools", "tool_choice", "parallel_tool_calls"});
  return keys;
}

// What OpenAI's API has and this server does not do, with the reason.
const absl::flat_hash_map<std::string, std::string>& UnsupportedKeys() {
  static const absl::flat_hash_map<std::string, std::string> keys = [] {
    absl::flat_hash_map<std::string, std::string> k;
    for (const char* key : {"tools", "tool_choice", "parallel_tool_calls"}) {
      k[key] = "is not supported here: tools are a /v1/chat/completions parameter";
    }
    for (const char* key : {"functions", "function_call"}) {
      k[key] = "is not supported: use tools and tool_choice (OpenAI's newer names)";
    }
    return k;
  }();
  return keys;
}

// The body as a JSON object with only `known` keys, whose "model" (if any) is the served one.
absl::StatusOr<json> ParseBody(const std::string& body, const KeySet& known, const char* what,
                               const std::string& served_model) {
  json j = json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return absl::InvalidArgumentError("request body is not valid JSON");
  if (!j.is_object()) return absl::InvalidArgumentError("request body must be a JSON object");
  for (const auto& [key, value] : j.items()) {
    if (known.contains(key)) continue;
    const auto unsupported = UnsupportedKeys().find(key);
    if (unsupported != UnsupportedKeys().end()) return KeyError(kOrigin, key, unsupported->second);
    return KeyError(kOrigin, key, absl::StrCat("is not a known ", what));
  }
  std::string model;
  RETURN_IF_ERROR(config_json::ReadString(j, kOrigin, "model", &model));
  if (!model.empty() && model != served_model) {
    return absl::NotFoundError(absl::StrCat(
        "model \"", model, "\" is not served here; this server serves \"", served_model, "\""));
  }
  return j;
}

absl::Status ReadFloat(const json& j, const char* key, float* out, bool* present = nullptr) {
  if (!Has(j, key)) return absl::OkStatus();
  double v = 0;
  RETURN_IF_ERROR(config_json::ReadDouble(j, kOrigin, key, &v));
  *out = static_cast<float>(v);
  if (present != nullptr) *present = true;
  return absl::OkStatus();
}

// A bool key into a proto3 `optional` field, which stays unset when the key is absent.
template <typename Setter>
absl::Status ReadOptionalBool(const json& j, const char* key, Setter set) {
  if (!Has(j, key)) return absl::OkStatus();
  bool value = false;
  RETURN_IF_ERROR(config_json::ReadBool(j, kOrigin, key, &value));
  set(value);
  return absl::OkStatus();
}

// One prompt: a string or a list of token ids. `name` is the key as the error shows it.
absl::Status ReadOnePrompt(const json& p, const std::string& name, v1::Prompt* out) {
  if (p.is_string()) {
    out->set_text(p.get<std::string>());
    return absl::OkStatus();
  }
  if (!p.is_array()) return KeyError(kOrigin, name, "must be a string or a list of token ids");
  std::vector<int32_t> ids;
  RETURN_IF_ERROR(config_json::ReadTokenIds(json{{name, p}}, kOrigin, name.c_str(), &ids));
  out->mutable_token_ids()->mutable_ids()->Add(ids.begin(), ids.end());
  return absl::OkStatus();
}

// A prompt (a string or a list of token ids), or a list of them: one request each.
absl::Status ReadPrompts(const json& j, CompletionCall* call) {
  if (!Has(j, "prompt")) return KeyError(kOrigin, "prompt", "is required");
  const json& p = j["prompt"];
  const bool many = p.is_array() && !p.empty() && (p[0].is_string() || p[0].is_array());
  if (!many) return ReadOnePrompt(p, "prompt", &call->prompts.emplace_back());
  if (p.size() > static_cast<size_t>(kMaxPrompts)) {
    return KeyError(kOrigin, "prompt",
                    absl::StrCat("must hold at most ", kMaxPrompts, " prompts, got ", p.size()));
  }
  for (size_t i = 0; i < p.size(); ++i) {
    RETURN_IF_ERROR(
        ReadOnePrompt(p[i], absl::StrCat("prompt[", i, "]"), &call->prompts.emplace_back()));
  }
  return absl::OkStatus();
}

absl::Status ReadStop(const json& j, v1::GenerateRequest* r) {
  if (!Has(j, "stop")) return absl::OkStatus();
  const json& stop = j["stop"];
  if (stop.is_string()) {
    r->add_stop(stop.get<std::string>());
    return absl::OkStatus();
  }
  if (!stop.is_array()) return KeyError(kOrigin, "stop", "must be a string or a list of strings");
  for (const json& s : stop) {
    if (!s.is_string()) return KeyError(kOrigin, "stop", "must hold strings only");
    r->add_stop(s.get<std::string>());
  }
  return absl::OkStatus();
}

// {"<token id>": bias, ...}, the ids written as strings (JSON object keys).
absl::Status ReadLogitBias(const json& j, v1::SamplingParams* s) {
  if (!Has(j, "logit_bias")) return absl::OkStatus();
  const json& bias = j["logit_bias"];
  if (!bias.is_object()) {
    return KeyError(kOrigin, "logit_bias", "must be an object from token ids to numbers");
  }
  for (const auto& [key, value] : bias.items()) {
    int32_t id = 0;
    if (!absl::SimpleAtoi(key, &id)) {
      return KeyError(kOrigin, "logit_bias",
                      absl::StrCat("keys must be token ids, got \"", key, "\""));
    }
    const std::string name = absl::StrCat("logit_bias[", key, "]");
    const json entry = {{name, value}};
    float v = 0;
    bool set = false;
    RETURN_IF_ERROR(ReadFloat(entry, name.c_str(), &v, &set));
    if (!set) return KeyError(kOrigin, name, "must be a number");
    (*s->mutable_logit_bias())[id] = v;
  }
  return absl::OkStatus();
}

// Any integer; negative ones are taken as their two's-complement 64-bit pattern.
absl::Status ReadSeed(const json& j, v1::SamplingParams* s) {
  if (!Has(j, "seed")) return absl::OkStatus();
  const json& seed = j["seed"];
  if (!seed.is_number_integer()) return KeyError(kOrigin, "seed", "must be an integer");
  s->set_seed(seed.is_number_unsigned() ? seed.get<uint64_t>()
                                        : static_cast<uint64_t>(seed.get<int64_t>()));
  return absl::OkStatus();
}

// n, and what OpenAI has that this server does not take (best_of above n, suffix).
absl::Status ReadChoices(const json& j, CompletionCall* call) {
  RETURN_IF_ERROR(config_json::ReadInt(j, kOrigin, "n", false, 1, &call->n));
  if (call->n > kMaxN) {
    return KeyError(kOrigin, "n", absl::StrCat("must be in [1, ", kMaxN, "], got ", call->n));
  }
  int best_of = call->n;
  RETURN_IF_ERROR(config_json::ReadInt(j, kOrigin, "best_of", false, 1, &best_of));
  if (best_of != call->n) {
    return KeyError(kOrigin, "best_of",
                    "must equal n: this server returns every completion it generates");
  }
  if (Has(j, "suffix")) return KeyError(kOrigin, "suffix", "is not supported");
  std::string user;  // accepted and ignored
  return config_json::ReadString(j, kOrigin, "user", &user);
}

absl::Status ReadStreamOptions(const json& j, CompletionCall* call) {
  RETURN_IF_ERROR(config_json::ReadBool(j, kOrigin, "stream", &call->stream));
  if (!Has(j, "stream_options")) return absl::OkStatus();
  const json& o = j["stream_options"];
  if (!o.is_object()) return KeyError(kOrigin, "stream_options", "must be an object");
  for (const auto& [key, value] : o.items()) {
    if (key != "include_usage") {
      return KeyError(kOrigin, absl::StrCat("stream_options.", key), "is not known");
    }
  }
  return config_json::ReadBool(o, "request: stream_options", "include_usage", &call->include_usage);
}

absl::Status ReadSampling(const json& j, v1::SamplingParams* s) {
  float v = 0;
  bool set = false;
  RETURN_IF_ERROR(ReadFloat(j, "temperature", &v, &set));
  if (set) s->set_temperature(v);
  set = false;
  RETURN_IF_ERROR(ReadFloat(j, "top_p", &v, &set));
  if (set) s->set_top_p(v);
  set = false;
  RETURN_IF_ERROR(ReadFloat(j, "repetition_penalty", &v, &set));
  if (set) s->set_repetition_penalty(v);
  float min_p = 0, presence = 0, frequency = 0;
  RETURN_IF_ERROR(ReadFloat(j, "min_p", &min_p));
  RETURN_IF_ERROR(ReadFloat(j, "presence_penalty", &presence));
  RETURN_IF_ERROR(ReadFloat(j, "frequency_penalty", &frequency));
  s->set_min_p(min_p);
  s->set_presence_penalty(presence);
  s->set_frequency_penalty(frequency);
  int top_k = 0;  // -1 (as other servers spell "off") or 0: off
  RETURN_IF_ERROR(config_json::ReadInt(j, kOrigin, "top_k", false, -1, &top_k));
  s->set_top_k(top_k < 0 ? 0 : top_k);
  RETURN_IF_ERROR(ReadSeed(j, s));
  return ReadLogitBias(j, s);
}

// What both generation calls read the same way: all but the prompt, max_tokens and logprobs.
absl::Status ReadGenerationKeys(const json& j, CompletionCall* call) {
  RETURN_IF_ERROR(ReadChoices(j, call));
  RETURN_IF_ERROR(ReadStreamOptions(j, call));
  v1::GenerateRequest& r = call->request;
  int min_tokens = 0;
  RETURN_IF_ERROR(config_json::ReadInt(j, kOrigin, "min_tokens", false, 0, &min_tokens));
  r.set_min_tokens(min_tokens);
  RETURN_IF_ERROR(ReadStop(j, &r));
  std::vector<int32_t> stop_ids;
  RETURN_IF_ERROR(config_json::ReadTokenIds(j, kOrigin, "stop_token_ids", &stop_ids));
  r.mutable_stop_token_ids()->Add(stop_ids.begin(), stop_ids.end());
  bool flag = false;
  RETURN_IF_ERROR(config_json::ReadBool(j, kOrigin, "ignore_eos", &flag));
  r.set_ignore_eos(flag);
  RETURN_IF_ERROR(
      ReadOptionalBool(j, "skip_special_tokens", [&](bool v) { r.set_skip_special_tokens(v); }));
  RETURN_IF_ERROR(
      ReadOptionalBool(j, "add_special_tokens", [&](bool v) { r.set_add_special_tokens(v); }));
  return ReadSampling(j, r.mutable_sampling());
}

// A message's content: a string, null (empty), or a list of {"type": "text", "text": ...} parts,
// joined with newlines (as other open servers join them for text-only templates).
absl::Status ReadContent(const json& content, const std::string& field, std::string* out) {
  if (content.is_null()) return absl::OkStatus();
  if (content.is_string()) {
    *out = content.get<std::string>();
    return absl::OkStatus();
  }
  if (!content.is_array()) {
    return KeyError(kOrigin, field, "must be a string or a list of text parts");
  }
  for (size_t i = 0; i < content.size(); ++i) {
    const json& part = content[i];
    const std::string name = absl::StrCat(field, "[", i, "]");
    if (!part.is_object() || !part.contains("type") || part["type"] != "text" ||
        !part.contains("text") || !part["text"].is_string()) {
      return KeyError(kOrigin, name,
                      "must be a text part {\"type\": \"text\", \"text\": \"...\"} (this "
                      "server serves text-only models)");
    }
    for (const auto& [key, value] : part.items()) {
      if (key != "type" && key != "text") {
        return KeyError(kOrigin, absl::StrCat(name, ".", key), "is not a known text part key");
      }
    }
    if (i > 0) out->push_back('\n');
    out->append(part["text"].get<std::string>());
  }
  return absl::OkStatus();
}

// Keys of `obj` (named `field`) other than `known` are refused.
absl::Status OnlyKeys(const json& obj, const std::string& field,
                      std::initializer_list<const char*> known, const char* what) {
  for (auto it = obj.begin(); it != obj.end(); ++it) {
    const std::string& key = it.key();  // (a structured binding: clang 14 cannot capture it)
    if (std::find_if(known.begin(), known.end(), [&](const char* k) { return key == k; }) ==
        known.end()) {
      return KeyError(kOrigin, absl::StrCat(field, ".", key),
                      absl::StrCat("is not a known ", what));
    }
  }
  return absl::OkStatus();
}

// A required string key of `obj` (named `field`).
absl::StatusOr<std::string> RequiredString(const json& obj, const std::string& field,
                                           const char* key) {
  const auto it = obj.find(key);
  if (it == obj.end() || !it->is_string()) {
    return KeyError(kOrigin, absl::StrCat(field, ".", key), "is required and must be a string");
  }
  return it->get<std::string>();
}

// The required "name" of `obj` (named `field`) under OpenAI's rule for a function's (and a
// response format's schema's) name.
absl::StatusOr<std::string> RequiredName(const json& obj, const std::string& field) {
  absl::StatusOr<std::string> name = RequiredString(obj, field, "name");
  if (name.ok() && !IsToolName(*name)) {
    return KeyError(
        kOrigin, absl::StrCat(field, ".name"),
        absl::StrCat("must be 1-", kMaxToolNameChars, " characters of a-z, A-Z, 0-9, _ and -"));
  }
  return name;
}

// "type", where given, is "function" (the only kind of tool OpenAI has).
absl::Status CheckFunctionType(const json& obj, const std::string& field) {
  const auto it = obj.find("type");
  if (it == obj.end() || *it == "function") return absl::OkStatus();
  return KeyError(kOrigin, absl::StrCat(field, ".type"), "must be \"function\"");
}

// An assistant message's [{"id", "type": "function", "function": {"name", "arguments"}}], the
// arguments a string holding a JSON object (as OpenAI's responses write them).
absl::Status ReadToolCalls(const json& calls, const std::string& field, v1::ChatMessage* out) {
  if (out->role() != "assistant") {
    return KeyError(kOrigin, field, "is for messages of role \"assistant\" only");
  }
  if (!calls.is_array()) return KeyError(kOrigin, field, "must be a list of tool calls");
  for (size_t k = 0; k < calls.size(); ++k) {
    const json& c = calls[k];
    const std::string name = absl::StrCat(field, "[", k, "]");
    if (!c.is_object()) {
      return KeyError(kOrigin, name,
                      "must be a tool call {\"id\", \"type\": \"function\", \"function\": "
                      "{\"name\", \"arguments\"}}");
    }
    RETURN_IF_ERROR(OnlyKeys(c, name, {"id", "type", "function"}, "tool call key"));
    RETURN_IF_ERROR(CheckFunctionType(c, name));
    v1::ToolCall* call = out->add_tool_calls();
    absl::StatusOr<std::string> id = RequiredString(c, name, "id");
    if (!id.ok()) return id.status();
    call->set_id(*std::move(id));
    const auto function = c.find("function");
    const std::string fn = absl::StrCat(name, ".function");
    if (function == c.end() || !function->is_object()) {
      return KeyError(kOrigin, fn, "is required and must be an object {name, arguments}");
    }
    RETURN_IF_ERROR(OnlyKeys(*function, fn, {"name", "arguments"}, "function key"));
    absl::StatusOr<std::string> fn_name = RequiredString(*function, fn, "name");
    if (!fn_name.ok()) return fn_name.status();
    call->set_name(*std::move(fn_name));
    const auto arguments = function->find("arguments");
    if (arguments == function->end() || !arguments->is_string() ||
        !IsJsonObject(arguments->get_ref<const std::string&>())) {
      return KeyError(kOrigin, absl::StrCat(fn, ".arguments"),
                      "must be a string holding a JSON object");
    }
    call->set_arguments_json(arguments->get<std::string>());
  }
  return absl::OkStatus();
}

absl::Status ReadMessages(const json& j, v1::Chat* chat) {
  if (!Has(j, "messages")) return KeyError(kOrigin, "messages", "is required");
  const json& messages = j["messages"];
  if (!messages.is_array() || messages.empty()) {
    return KeyError(kOrigin, "messages", "must be a non-empty list of messages");
  }
  for (size_t i = 0; i < messages.size(); ++i) {
    const json& m = messages[i];
    const std::string field = absl::StrCat("messages[", i, "]");
    if (!m.is_object()) return KeyError(kOrigin, field, "must be an object {role, content}");
    RETURN_IF_ERROR(OnlyKeys(m, field, {"role", "content", "tool_calls", "tool_call_id"},
                             "message key (role, content, tool_calls, tool_call_id)"));
    v1::ChatMessage* out = chat->add_messages();
    absl::StatusOr<std::string> role = RequiredString(m, field, "role");
    if (!role.ok()) return role.status();
    out->set_role(*std::move(role));
    if (m.contains("content")) {
      RETURN_IF_ERROR(
          ReadContent(m["content"], absl::StrCat(field, ".content"), out->mutable_content()));
    }
    if (Has(m, "tool_calls")) {
      RETURN_IF_ERROR(ReadToolCalls(m["tool_calls"], absl::StrCat(field, ".tool_calls"), out));
    }
    if (Has(m, "tool_call_id")) {
      const std::string name = absl::StrCat(field, ".tool_call_id");
      if (!m["tool_call_id"].is_string()) return KeyError(kOrigin, name, "must be a string");
      if (out->role() != "tool") {
        return KeyError(kOrigin, name, "is for messages of role \"tool\" only");
      }
      out->set_tool_call_id(m["tool_call_id"].get<std::string>());
    }
  }
  return absl::OkStatus();
}

// The body's top-level `key` read again with its keys in the client's order (the body parsed
// before, so this does too); null when absent.
nlohmann::ordered_json InOrder(const std::string& body, const char* key) {
  const nlohmann::ordered_json all =
      nlohmann::ordered_json::parse(body, nullptr, /*allow_exceptions=*/false);
  return all.is_object() && all.contains(key) ? all[key] : nlohmann::ordered_json();
}

// `value`, found at `path` under `in_order` (the same part of the body read in the client's key
// order, as InOrder gives it), as compact JSON text with its keys in the client's order.
std::string DumpInOrder(const json& value, const nlohmann::ordered_json& in_order,
                        std::initializer_list<const char*> path) {
  const nlohmann::ordered_json* at = &in_order;
  for (const char* key : path) {
    at = at->is_object() && at->contains(key) ? &(*at)[key] : nullptr;
    if (at == nullptr) break;
  }
  return at != nullptr && at->type() == value.type()
             ? at->dump(-1, ' ', false, json::error_handler_t::replace)
             : value.dump(-1, ' ', false, json::error_handler_t::replace);
}

// One of "tools": {"type": "function", "function": {"name", "description"?, "parameters"?,
// "strict"?}}. `ordered` is the same tool read with its keys in the client's order, which the
// parameters keep (templates write them out with tojson, as Python keeps a dict's order).
// `strict_ok`: no call escapes the schemas (tool_choice forces the calls, or reads none).
absl::Status ReadTool(const json& t, const nlohmann::ordered_json& ordered,
                      const std::string& field, bool strict_ok, v1::Tool* out) {
  if (!t.is_object()) {
    return KeyError(kOrigin, field,
                    "must be a tool {\"type\": \"function\", \"function\": {\"name\", "
                    "\"description\", \"parameters\"}}");
  }
  RETURN_IF_ERROR(OnlyKeys(t, field, {"type", "function"}, "tool key (type, function)"));
  RETURN_IF_ERROR(CheckFunctionType(t, field));
  const std::string fn = absl::StrCat(field, ".function");
  const auto function = t.find("function");
  if (function == t.end() || !function->is_object()) {
    return KeyError(kOrigin, fn,
                    "is required and must be an object {name, description, parameters}");
  }
  const json& f = *function;
  RETURN_IF_ERROR(OnlyKeys(f, fn, {"name", "description", "parameters", "strict"},
                           "function key (name, description, parameters)"));
  absl::StatusOr<std::string> name = RequiredName(f, fn);
  if (!name.ok()) return name.status();
  out->set_name(*std::move(name));
  if (Has(f, "description")) {
    if (!f["description"].is_string()) {
      return KeyError(kOrigin, absl::StrCat(fn, ".description"), "must be a string");
    }
    out->set_description(f["description"].get<std::string>());
  }
  if (Has(f, "parameters")) {
    if (!f["parameters"].is_object()) {
      return KeyError(kOrigin, absl::StrCat(fn, ".parameters"),
                      "must be an object (a JSON schema)");
    }
    out->set_parameters_json(DumpInOrder(f["parameters"], ordered, {"function", "parameters"}));
  }
  // strict: false (or absent) is OpenAI's default; strict: true promises arguments that follow
  // the schema, which holds where calls are forced (their decoding follows the schemas) and
  // vacuously where none are read; "auto" leaves the model's calls free.
  if (Has(f, "strict")) {
    if (!f["strict"].is_boolean()) {
      return KeyError(kOrigin, absl::StrCat(fn, ".strict"), "must be true or false");
    }
    if (f["strict"] == true && !strict_ok) {
      return KeyError(kOrigin, absl::StrCat(fn, ".strict"),
                      "must be false with tool_choice \"auto\": strict arguments need "
                      "tool_choice \"required\" or a named function, whose calls are decoded "
                      "under the tools' schemas");
    }
  }
  return absl::OkStatus();
}

// OpenAI's tool_choice: "none", "auto", "required" or {"type": "function", "function": {"name":
// NAME}} (into `function`).
absl::StatusOr<v1::Chat::ToolChoice> ReadToolChoice(const json& j, bool has_tools,
                                                    std::string* function) {
  if (!Has(j, "tool_choice")) {
    return has_tools ? v1::Chat::TOOL_CHOICE_AUTO : v1::Chat::TOOL_CHOICE_NONE;
  }
  const json& c = j["tool_choice"];
  constexpr char kShapes[] =
      R"(must be "none", "auto", "required" or {"type": "function", "function": {"name": ...}})";
  v1::Chat::ToolChoice choice = v1::Chat::TOOL_CHOICE_AUTO;
  if (c.is_object()) {
    RETURN_IF_ERROR(
        OnlyKeys(c, "tool_choice", {"type", "function"}, "tool_choice key (type, function)"));
    RETURN_IF_ERROR(CheckFunctionType(c, "tool_choice"));
    const auto f = c.find("function");
    if (f == c.end() || !f->is_object()) {
      return KeyError(kOrigin, "tool_choice.function", "is required and must be an object {name}");
    }
    RETURN_IF_ERROR(
        OnlyKeys(*f, "tool_choice.function", {"name"}, "tool_choice.function key (name)"));
    absl::StatusOr<std::string> name = RequiredName(*f, "tool_choice.function");
    if (!name.ok()) return name.status();
    *function = *std::move(name);
  } else if (c == "none") {
    choice = v1::Chat::TOOL_CHOICE_NONE;
  } else if (c == "required") {
    choice = v1::Chat::TOOL_CHOICE_REQUIRED;
  } else if (c != "auto") {
    return KeyError(kOrigin, "tool_choice", kShapes);
  }
  if (choice != v1::Chat::TOOL_CHOICE_NONE && !has_tools) {
    return KeyError(kOrigin, "tool_choice", "needs tools");
  }
  return choice;
}

// tools, tool_choice and parallel_tool_calls into prompt.chat (without tools, tool_choice "none"
// and parallel_tool_calls are accepted and change nothing). tool_choice "none" renders the tools
// but reads no calls (as vLLM does by default); "auto" reads them out of the text; "required" and
// a named function force them, decoded under the tools' schemas (proto_convert.h compiles them).
absl::Status ReadTools(const json& j, const std::string& body, std::optional<ToolCallParser> parser,
                       CompletionCall* call, v1::Chat* chat) {
  const bool has_tools = Has(j, "tools");
  std::string function;
  absl::StatusOr<v1::Chat::ToolChoice> choice = ReadToolChoice(j, has_tools, &function);
  if (!choice.ok()) return choice.status();
  bool parallel = true;
  RETURN_IF_ERROR(config_json::ReadBool(j, kOrigin, "parallel_tool_calls", &parallel));
  if (!has_tools) return absl::OkStatus();
  const nlohmann::ordered_json ordered = InOrder(body, "tools");
  const json& tools = j["tools"];
  if (!tools.is_array() || tools.empty() || tools.size() > static_cast<size_t>(kMaxTools)) {
    return KeyError(kOrigin, "tools", absl::StrCat("must be a list of 1-", kMaxTools, " tools"));
  }
  if (!parser.has_value()) {
    return KeyError(kOrigin, "tools",
                    "needs a tool-call parser: start the server with --tool-call-parser "
                    "(hermes or llama3_json)");
  }
  const bool strict_ok = *choice != v1::Chat::TOOL_CHOICE_AUTO || !function.empty();
  for (size_t i = 0; i < tools.size(); ++i) {
    const nlohmann::ordered_json& tool_in_order =
        ordered.is_array() && i < ordered.size() ? ordered[i] : nlohmann::ordered_json();
    RETURN_IF_ERROR(ReadTool(tools[i], tool_in_order, absl::StrCat("tools[", i, "]"), strict_ok,
                             chat->add_tools()));
  }
  if (!function.empty()) {
    const bool known = std::any_of(chat->tools().begin(), chat->tools().end(),
                                   [&](const v1::Tool& t) { return t.name() == function; });
    if (!known) {
      return KeyError(kOrigin, "tool_choice.function.name",
                      absl::StrCat("must name one of tools, got \"", function, "\""));
    }
    chat->set_tool_choice_function(function);
  }
  chat->set_tool_choice(*choice);
  if (Has(j, "parallel_tool_calls")) chat->set_parallel_tool_calls(parallel);
  if (*choice == v1::Chat::TOOL_CHOICE_NONE) return absl::OkStatus();
  call->tool_calls = ToolCallMode{.parser = *parser, .parallel_tool_calls = parallel};
  // The calls' tags may be special tokens (Hermes' <tool_call>, Llama's <|python_tag|>).
  if (!call->request.has_skip_special_tokens()) call->request.set_skip_special_tokens(false);
  return absl::OkStatus();
}

// OpenAI's response_format: {"type": "text"} (free text, as without it), {"type":
// "json_object"} or {"type": "json_schema", "json_schema": {"name", "description"?, "schema",
// "strict"?}}, the schema kept in the client's key order (its property order is the output's).
// The schema is compiled with the request (an error names response_format.json_schema.schema).
absl::Status ReadResponseFormat(const json& j, const std::string& body, v1::GenerateRequest* r) {
  if (!Has(j, "response_format")) return absl::OkStatus();
  const std::string field = "response_format";
  const json& format = j["response_format"];
  if (!format.is_object()) {
    return KeyError(kOrigin, field, "must be an object {\"type\", \"json_schema\"}");
  }
  RETURN_IF_ERROR(
      OnlyKeys(format, field, {"type", "json_schema"}, "response_format key (type, json_schema)"));
  const auto type = format.find("type");
  if (type == format.end() ||
      (*type != "text" && *type != "json_object" && *type != "json_schema")) {
    return KeyError(kOrigin, field + ".type", R"(must be "text", "json_object" or "json_schema")");
  }
  const std::string schema_field = field + ".json_schema";
  if (*type != "json_schema") {
    if (format.contains("json_schema")) {
      return KeyError(kOrigin, schema_field, R"(is for "type": "json_schema" only)");
    }
    if (*type == "json_object") r->mutable_response_format()->mutable_json_object();
    return absl::OkStatus();
  }
  const auto spec = format.find("json_schema");
  if (spec == format.end() || !spec->is_object()) {
    return KeyError(kOrigin, schema_field,
                    "is required and must be an object {name, description, schema, strict}");
  }
  RETURN_IF_ERROR(OnlyKeys(*spec, schema_field, {"name", "description", "schema", "strict"},
                           "json_schema key (name, description, schema, strict)"));
  absl::StatusOr<std::string> name = RequiredName(*spec, schema_field);
  if (!name.ok()) return name.status();
  if (Has(*spec, "description") && !(*spec)["description"].is_string()) {
    return KeyError(kOrigin, schema_field + ".description", "must be a string");
  }
  // strict true and false alike: the output always follows the schema.
  if (Has(*spec, "strict") && !(*spec)["strict"].is_boolean()) {
    return KeyError(kOrigin, schema_field + ".strict", "must be true or false");
  }
  if (!Has(*spec, "schema")) return KeyError(kOrigin, schema_field + ".schema", "is required");
  const json& schema = (*spec)["schema"];
  if (!schema.is_object()) {
    return KeyError(kOrigin, schema_field + ".schema", "must be an object (a JSON Schema)");
  }
  v1::ResponseFormat::JsonSchema* out = r->mutable_response_format()->mutable_json_schema();
  out->set_name(*std::move(name));
  out->set_schema_json(
      DumpInOrder(schema, InOrder(body, "response_format"), {"json_schema", "schema"}));
  return absl::OkStatus();
}

// vLLM's guided decoding keys: guided_regex (a regular expression the whole output matches) and
// guided_choice (exactly one of a list of strings); neither with the other or response_format.
absl::Status ReadGuided(const json& j, v1::GenerateRequest* r) {
  const bool regex = Has(j, "guided_regex"), choice = Has(j, "guided_choice");
  if (!regex && !choice) return absl::OkStatus();
  const std::string field = regex ? "guided_regex" : "guided_choice";
  if ((regex && choice) || r->has_response_format()) {
    return KeyError(kOrigin, field,
                    "cannot be combined with response_format or the other guided_ key: each "
                    "decides the output");
  }
  if (regex) {
    if (!j["guided_regex"].is_string()) {
      return KeyError(kOrigin, field, "must be a string (a regular expression)");
    }
    r->mutable_response_format()->mutable_regex()->set_pattern(
        j["guided_regex"].get<std::string>());
    return absl::OkStatus();
  }
  const json& choices = j["guided_choice"];
  if (!choices.is_array() || choices.empty()) {
    return KeyError(kOrigin, field, "must be a non-empty array of strings");
  }
  v1::ResponseFormat::Choice* out = r->mutable_response_format()->mutable_choice();
  for (size_t i = 0; i < choices.size(); ++i) {
    if (!choices[i].is_string()) {
      return KeyError(kOrigin, absl::StrCat(field, "[", i, "]"), "must be a string");
    }
    out->add_choices(choices[i].get<std::string>());
  }
  return absl::OkStatus();
}

// transformers refuses to continue a final message without text (content null or absent, or a
// list without text parts); once read, those are indistinguishable from the empty string.
absl::Status CheckFinalMessageHasText(const json& messages) {
  const json& last = messages.back();
  const auto content = last.find("content");
  if (content != last.end() && !content->is_null() && !(content->is_array() && content->empty())) {
    return absl::OkStatus();
  }
  return KeyError(kOrigin, absl::StrCat("messages[", messages.size() - 1, "].content"),
                  "must hold text when continue_final_message is true");
}

}  // namespace

absl::StatusOr<CompletionCall> ParseCompletionRequest(const std::string& body,
                                                      const std::string& served_model) {
  absl::StatusOr<json> parsed =
      ParseBody(body, CompletionKeys(), "completions parameter", served_model);
  if (!parsed.ok()) return parsed.status();
  const json& j = *parsed;
  CompletionCall call;
  RETURN_IF_ERROR(ReadGenerationKeys(j, &call));
  v1::GenerateRequest& r = call.request;
  RETURN_IF_ERROR(ReadPrompts(j, &call));
  RETURN_IF_ERROR(ReadResponseFormat(j, body, &r));
  RETURN_IF_ERROR(ReadGuided(j, &r));
  if (call.prompts.size() * call.n > static_cast<size_t>(kMaxChoices)) {
    return KeyError(kOrigin, "n",
                    absl::StrCat("times the number of prompts must be at most ", kMaxChoices,
                                 ", got ", call.n, " x ", call.prompts.size()));
  }
  *r.mutable_prompt() = call.prompts[0];
  int max_tokens = kDefaultMaxTokens, logprobs = -1;
  RETURN_IF_ERROR(config_json::ReadInt(j, kOrigin, "max_tokens", false, 0, &max_tokens));
  RETURN_IF_ERROR(config_json::ReadInt(j, kOrigin, "logprobs", false, 0, &logprobs));
  r.set_max_tokens(max_tokens);
  RETURN_IF_ERROR(config_json::ReadBool(j, kOrigin, "echo", &call.echo));
  if (logprobs >= 0) r.set_logprobs(logprobs);
  if (logprobs >= 0 && call.echo) r.set_prompt_logprobs(logprobs);
  return call;
}

absl::StatusOr<CompletionCall> ParseChatRequest(const std::string& body,
                                                const std::string& served_model,
                                                std::optional<ToolCallParser> tool_call_parser) {
  absl::StatusOr<json> parsed =
      ParseBody(body, ChatKeys(), "chat completions parameter", served_model);
  if (!parsed.ok()) return parsed.status();
  const json& j = *parsed;
  CompletionCall call;
  RETURN_IF_ERROR(ReadGenerationKeys(j, &call));
  v1::GenerateRequest& r = call.request;
  v1::Chat* chat = call.prompts.emplace_back().mutable_chat();
  RETURN_IF_ERROR(ReadMessages(j, chat));
  RETURN_IF_ERROR(ReadTools(j, body, tool_call_parser, &call, chat));
  RETURN_IF_ERROR(ReadResponseFormat(j, body, &r));
  RETURN_IF_ERROR(ReadGuided(j, &r));
  // Both would decide what the output is (and the calls' tags are no JSON).
  if (r.has_response_format() && call.tool_calls.has_value()) {
    return KeyError(kOrigin, "response_format",
                    "cannot be combined with tools (unless tool_choice is \"none\"): both "
                    "constrain the same output");
  }
  RETURN_IF_ERROR(ReadOptionalBool(j, "add_generation_prompt",
                                   [&](bool v) { chat->set_add_generation_prompt(v); }));
  RETURN_IF_ERROR(ReadOptionalBool(j, "continue_final_message",
                                   [&](bool v) { chat->set_continue_final_message(v); }));
  if (chat->continue_final_message()) RETURN_IF_ERROR(CheckFinalMessageHasText(j["messages"]));
  *r.mutable_prompt() = call.prompts[0];
  if (Has(j, "max_tokens") && Has(j, "max_completion_tokens")) {
    return KeyError(kOrigin, "max_tokens",
                    "must not be set with max_completion_tokens (it is the older name)");
  }
  for (const char* key : {"max_completion_tokens", "max_tokens"}) {
    if (!Has(j, key)) continue;
    int max_tokens = 0;
    RETURN_IF_ERROR(config_json::ReadInt(j, kOrigin, key, false, 0, &max_tokens));
    r.set_max_tokens(max_tokens);
  }
  bool logprobs = false;
  int top_logprobs = -1;
  RETURN_IF_ERROR(config_json::ReadBool(j, kOrigin, "logprobs", &logprobs));
  RETURN_IF_ERROR(config_json::ReadInt(j, kOrigin, "top_logprobs", false, 0, &top_logprobs));
  if (top_logprobs >= 0 && !logprobs) {
    return KeyError(kOrigin, "top_logprobs", "needs \"logprobs\": true");
  }
  if (logprobs) r.set_logprobs(std::max(top_logprobs, 0));
  return call;
}

absl::StatusOr<v1::TokenizeRequest> ParseTokenizeRequest(const std::string& body,
                                                         const std::string& served_model) {
  static const KeySet keys = {"model", "prompt", "add_special_tokens"};
  absl::StatusOr<json> j = ParseBody(body, keys, "tokenize parameter", served_model);
  if (!j.ok()) return j.status();
  if (!Has(*j, "prompt")) return KeyError(kOrigin, "prompt", "is required");
  v1::TokenizeRequest request;
  RETURN_IF_ERROR(config_json::ReadString(*j, kOrigin, "prompt", request.mutable_text()));
  RETURN_IF_ERROR(ReadOptionalBool(*j, "add_special_tokens",
                                   [&](bool v) { request.set_add_special_tokens(v); }));
  return request;
}

absl::StatusOr<v1::DetokenizeRequest> ParseDetokenizeRequest(const std::string& body,
                                                             const std::string& served_model) {
  static const KeySet keys = {"model", "tokens", "skip_special_tokens"};
  absl::StatusOr<json> j = ParseBody(body, keys, "detokenize parameter", served_model);
  if (!j.ok()) return j.status();
  if (!Has(*j, "tokens")) return KeyError(kOrigin, "tokens", "is required");
  if (!(*j)["tokens"].is_array()) return KeyError(kOrigin, "tokens", "must be a list of token ids");
  std::vector<int32_t> ids;
  RETURN_IF_ERROR(config_json::ReadTokenIds(*j, kOrigin, "tokens", &ids));
  v1::DetokenizeRequest request;
  request.mutable_token_ids()->Add(ids.begin(), ids.end());
  RETURN_IF_ERROR(ReadOptionalBool(*j, "skip_special_tokens",
                                   [&](bool v) { request.set_skip_special_tokens(v); }));
  return request;
}

}  // namespace attnres
