// Tool calls out of generated text (see tool_call_parser.h). A hand scan: both formats are fixed
// tags around JSON, and nlohmann reads the JSON.
#include "server/grpc/tool_call_parser.h"

#include <algorithm>
#include <initializer_list>
#include <utility>

#include "absl/random/random.h"
#include "nlohmann/json.hpp"

namespace attnres {
namespace {

using json = nlohmann::ordered_json;  // arguments keep the model's key order

constexpr std::string_view kToolCallOpen = "<tool_call>";
constexpr std::string_view kToolCallClose = "</tool_call>";
constexpr std::string_view kPythonTag = "<|python_tag|>";

bool IsSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

size_t SkipSpace(std::string_view text, size_t at) {
  while (at < text.size() && IsSpace(text[at])) ++at;
  return at;
}

// {"name": string, <args_key>: object} -> a call; absent (or null) arguments are "{}" (a call of
// a function without parameters); anything else is not a call.
std::optional<ParsedToolCall> ReadCall(std::string_view body,
                                       std::initializer_list<const char*> args_keys) {
  const json j = json::parse(body.begin(), body.end(), nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return std::nullopt;
  const auto name = j.find("name");
  if (name == j.end() || !name->is_string()) return std::nullopt;
  json arguments = json::object();
  for (const char* key : args_keys) {
    const auto it = j.find(key);
    if (it == j.end() || it->is_null()) continue;
    if (!it->is_object()) return std::nullopt;
    arguments = *it;
    break;
  }
  // The text was valid UTF-8 for the parser; replace keeps dump() from throwing regardless.
  return ParsedToolCall{name->get<std::string>(),
                        arguments.dump(-1, ' ', false, json::error_handler_t::replace)};
}

std::optional<ParsedToolCalls> ParseHermes(std::string_view text) {
  const size_t first = text.find(kToolCallOpen);
  if (first == std::string_view::npos) return std::nullopt;
  ParsedToolCalls out;
  for (size_t open = first; open != std::string_view::npos;) {
    const size_t body = open + kToolCallOpen.size();
    const size_t close = text.find(kToolCallClose, body);
    std::optional<ParsedToolCall> call = ReadCall(
        text.substr(body, close == std::string_view::npos ? std::string_view::npos : close - body),
        {"arguments"});
    if (!call.has_value()) return std::nullopt;
    out.calls.push_back(*std::move(call));
    if (close == std::string_view::npos) break;  // a final unclosed call ran to the end
    open = text.find(kToolCallOpen, close + kToolCallClose.size());
  }
  const std::string_view content = text.substr(0, first);
  if (SkipSpace(content, 0) < content.size()) out.content = std::string(content);
  return out;
}

// The index of the '}' closing the object that opens at text[open] ('{'), npos when it does not
// close: brackets counted outside strings (nlohmann checks the rest).
size_t ObjectEnd(std::string_view text, size_t open) {
  int depth = 0;
  bool in_string = false;
  for (size_t i = open; i < text.size(); ++i) {
    const char c = text[i];
    if (in_string) {
      if (c == '\\') {
        ++i;  // the escaped character
      } else if (c == '"') {
        in_string = false;
      }
    } else if (c == '"') {
      in_string = true;
    } else if (c == '{' || c == '[') {
      ++depth;
    } else if (c == '}' || c == ']') {
      if (--depth == 0) return i;
    }
  }
  return std::string_view::npos;
}

std::optional<ParsedToolCalls> ParseLlama3Json(std::string_view text) {
  size_t at = SkipSpace(text, 0);
  if (text.substr(at, kPythonTag.size()) == kPythonTag) at += kPythonTag.size();
  ParsedToolCalls out;
  while (true) {
    at = SkipSpace(text, at);
    if (at == text.size()) break;  // after a trailing ';'
    if (text[at] != '{') return std::nullopt;
    const size_t end = ObjectEnd(text, at);
    if (end == std::string_view::npos) return std::nullopt;
    // vLLM reads "arguments" first, then Llama 3's own "parameters".
    std::optional<ParsedToolCall> call =
        ReadCall(text.substr(at, end + 1 - at), {"arguments", "parameters"});
    if (!call.has_value()) return std::nullopt;
    out.calls.push_back(*std::move(call));
    at = SkipSpace(text, end + 1);
    if (at == text.size()) break;
    if (text[at] != ';') return std::nullopt;
    ++at;
  }
  if (out.calls.empty()) return std::nullopt;
  return out;
}

// Whether `tail` (non-empty) could be the start of `tag`.
bool IsPrefixOf(std::string_view tail, std::string_view tag) {
  return tail.size() <= tag.size() && tag.substr(0, tail.size()) == tail;
}

}  // namespace

std::optional<ToolCallParser> ToolCallParserFromName(std::string_view name) {
  if (name == "hermes") return ToolCallParser::kHermes;
  if (name == "llama3_json") return ToolCallParser::kLlama3Json;
  return std::nullopt;
}

const char* ToolCallParserName(ToolCallParser parser) {
  return parser == ToolCallParser::kHermes ? "hermes" : "llama3_json";
}

std::optional<ParsedToolCalls> ParseToolCalls(std::string_view text, const ToolCallMode& mode) {
  std::optional<ParsedToolCalls> out =
      mode.parser == ToolCallParser::kHermes ? ParseHermes(text) : ParseLlama3Json(text);
  if (out.has_value() && !mode.parallel_tool_calls) out->calls.resize(1);
  return out;
}

size_t ToolCallStream::Releasable() const {
  if (mode_.parser == ToolCallParser::kHermes) {
    // Any "<tool_call>" starts at or after sent_: a trailing prefix of it is never released.
    const size_t open = text_.find(kToolCallOpen, sent_);
    if (open != std::string::npos) return open;
    const std::string_view unsent = std::string_view(text_).substr(sent_);
    for (size_t len = std::min(unsent.size(), kToolCallOpen.size() - 1); len > 0; --len) {
      if (IsPrefixOf(unsent.substr(unsent.size() - len), kToolCallOpen)) {
        return text_.size() - len;
      }
    }
    return text_.size();
  }
  // llama3_json: nothing is released before the first non-whitespace text decides.
  const size_t start = SkipSpace(text_, 0);
  if (start == text_.size()) return sent_;
  const std::string_view rest = std::string_view(text_).substr(start);
  if (rest[0] == '{' || IsPrefixOf(rest.substr(0, kPythonTag.size()), kPythonTag)) return sent_;
  return text_.size();
}

std::string ToolCallStream::Push(std::string_view delta) {
  text_.append(delta);
  if (holding_) return "";
  if (plain_) {
    sent_ = text_.size();
    return std::string(delta);
  }
  const size_t end = Releasable();
  if (mode_.parser == ToolCallParser::kHermes) {
    holding_ = text_.compare(end, kToolCallOpen.size(), kToolCallOpen) == 0;
  } else if (end == text_.size() && SkipSpace(text_, 0) < text_.size()) {
    plain_ = true;  // started with something else: never calls
  } else {
    // Held: "{", or the whole tag; a part of the tag (or only whitespace) is still undecided.
    const size_t start = SkipSpace(text_, 0);
    holding_ = start < text_.size() &&
               (text_[start] == '{' || text_.compare(start, kPythonTag.size(), kPythonTag) == 0);
  }
  std::string out = text_.substr(sent_, end - sent_);
  sent_ = end;
  return out;
}

ToolCallStream::End ToolCallStream::Finish(bool parse) {
  End end;
  if (parse && holding_) {
    if (std::optional<ParsedToolCalls> parsed = ParseToolCalls(text_, mode_)) {
      end.calls = std::move(parsed->calls);
      sent_ = text_.size();
      return end;
    }
  }
  end.content = text_.substr(sent_);
  sent_ = text_.size();
  return end;
}

std::string NewToolCallId() {
  static constexpr char kChars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  thread_local absl::BitGen gen;
  std::string id = "call_";
  for (int i = 0; i < 24; ++i) id.push_back(kChars[absl::Uniform<size_t>(gen, 0, 62)]);
  return id;
}

}  // namespace attnres
