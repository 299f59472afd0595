// Tool calls read out of a chat completion's generated text, as vLLM's --tool-call-parser reads
// them, for both APIs (--tool-call-parser): pure functions of the text, no engine. It lives in
// server/grpc, below the HTTP API, so the gRPC responses (tool_call_response.h) read the same.
//   hermes       every <tool_call>{"name": ..., "arguments": {...}}</tool_call> (a final unclosed
//                <tool_call>BODY too); the content is the text before the first <tool_call>.
//   llama3_json  the whole text (after an optional leading <|python_tag|>, surrounding
//                whitespace allowed) is one or more {"name": ..., "parameters" or "arguments":
//                {...}} objects separated by ';'; no content.
// Anything else, or any call that does not read (not JSON, no string name, arguments not an
// object), leaves the whole text plain content. Names are returned whether or not the request's
// tools hold them (as vLLM returns them): the client decides what an unknown name means.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace attnres {

enum class ToolCallParser { kHermes, kLlama3Json };

// "hermes" or "llama3_json"; nullopt for another name.
std::optional<ToolCallParser> ToolCallParserFromName(std::string_view name);
const char* ToolCallParserName(ToolCallParser parser);

// How a chat completion's output is read: set when the server has a parser and the request gave
// tools (HTTP: with tool_choice other than "none"; gRPC: RequestToolCallMode).
struct ToolCallMode {
  ToolCallParser parser = ToolCallParser::kHermes;
  bool parallel_tool_calls = true;  // false: only the first call is returned
};

struct ParsedToolCall {
  std::string name;
  std::string arguments_json;  // a JSON object, written compactly (nlohmann's dump()); "{}" when
                               // the model gave no arguments
};

struct ParsedToolCalls {
  std::optional<std::string> content;  // text before the calls; unset when empty or whitespace
  std::vector<ParsedToolCall> calls;   // at least one
};

// nullopt: no tool call (the whole text is content). With mode.parallel_tool_calls false, only
// the first call is kept.
std::optional<ParsedToolCalls> ParseToolCalls(std::string_view text, const ToolCallMode& mode);

// A fresh call id: "call_" and 24 random letters and digits (vLLM's shape), for both APIs.
std::string NewToolCallId();

// One streamed choice's text while it may turn into tool calls: content is passed on as it comes
// until the text may be a call (hermes: from "<tool_call>", holding back a trailing prefix of
// it; llama3_json: when its first non-whitespace text is "{" or "<|python_tag|>", and while only
// whitespace has come), then everything is held to the end, where it is either calls or flushed
// as content.
class ToolCallStream {
 public:
  explicit ToolCallStream(ToolCallMode mode) : mode_(mode) {}

  // Appends the next delta; returns the text that can be sent as content now (possibly empty).
  std::string Push(std::string_view delta);

  struct End {
    std::string content;                // the rest to send as content (empty with calls)
    std::vector<ParsedToolCall> calls;  // empty: no tool call
  };
  // After the last delta. `parse` false (the output was cut by length or cancelled): no calls,
  // everything held is content.
  End Finish(bool parse);

 private:
  // How much of text_ from sent_ on can be released now.
  size_t Releasable() const;

  ToolCallMode mode_;
  std::string text_;      // all text so far
  size_t sent_ = 0;       // bytes of text_ released as content
  bool holding_ = false;  // the text may be tool calls: nothing more is released
  bool plain_ = false;    // llama3_json: the text cannot be calls (it started otherwise)
};

}  // namespace attnres
