// The bodies of the HTTP API's calls, read into the gRPC API's requests, so that both front ends
// share one set of range rules (request_validation.h) and one conversion (proto_convert.h). This
// file checks only the JSON: types, known keys, the shapes OpenAI allows (prompt as text, token
// ids or a list of either; chat message content as text or a list of text parts;
// stop as a string or a list; chat tools, tool calls and tool results; response_format text,
// json_object or json_schema, the schema kept in the client's key order; tool_choice none, auto,
// required or a named function) and what this server does not take (best_of other than n,
// suffix, tools without --tool-call-parser, a tool's strict: true with tool_choice "auto",
// response_format together with tools that are read for calls).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "attnres/v1/attnres.pb.h"
#include "server/grpc/tool_call_parser.h"

namespace attnres {

inline constexpr int kMaxN = 16;        // n
inline constexpr int kMaxPrompts = 64;  // prompts in one /v1/completions request
inline constexpr int kMaxChoices = 64;  // prompts x n

struct CompletionCall {
  v1::GenerateRequest request;  // max_tokens defaults to OpenAI's 16; other unset fields stay
                                // unset, so generation_config.json's defaults apply; its prompt
                                // is prompts[0]
  // What the request's choices complete, in order: one prompt, or OpenAI's list of prompts
  // (/v1/completions only), each as its own engine requests.
  std::vector<v1::Prompt> prompts;
  // Completions of each prompt, each its own engine request with its own seed (the request's
  // seed + i when set); their prompt pages are shared through the prefix cache.
  int n = 1;
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage: a last chunk carrying usage
  // echo: the prompt is written before the completion; with logprobs the request also asks for
  // prompt_logprobs (max_tokens 0 then scores a text).
  bool echo = false;
  // Chat: set when the request gave tools with a tool_choice other than "none" ("auto", its
  // default, "required" or a named function) and the server has a tool-call parser: each
  // choice's text is read for tool calls (with parallel_tool_calls false, the first only).
  std::optional<ToolCallMode> tool_calls;
};

// INVALID_ARGUMENT naming the key and the rule for a malformed body; NOT_FOUND when "model" names
// another model than `served_model`.
absl::StatusOr<CompletionCall> ParseCompletionRequest(const std::string& body,
                                                      const std::string& served_model);

// POST /v1/chat/completions: "messages" become prompt.chat (rendered by the model's chat template
// in the shared conversion); "max_completion_tokens" (or the older "max_tokens") is unset by
// default, so generation_config.json's or the server's default applies; "logprobs" is a bool and
// "top_logprobs" the number of alternatives. "tools" become prompt.chat.tools and need
// `tool_call_parser` (the server's --tool-call-parser); with tools in use, skip_special_tokens
// defaults to false, as vLLM sets it, since the calls' tags may be special tokens.
// "tool_choice" ("none", "auto", "required" or {"type": "function", "function": {"name"}}) and
// "parallel_tool_calls" go into prompt.chat.tool_choice, tool_choice_function and
// parallel_tool_calls: "required" and a named function have the output constrained to calls
// (proto_convert.h), and only they take tools with "strict": true. A JSON response_format is
// refused with tools read for calls (tool_choice other than "none"). Same errors as
// ParseCompletionRequest.
absl::StatusOr<CompletionCall> ParseChatRequest(
    const std::string& body, const std::string& served_model,
    std::optional<ToolCallParser> tool_call_parser = std::nullopt);

// POST /tokenize: {"prompt": text, "add_special_tokens"?, "model"?} (as other open servers).
absl::StatusOr<v1::TokenizeRequest> ParseTokenizeRequest(const std::string& body,
                                                         const std::string& served_model);
// POST /detokenize: {"tokens": [ids], "skip_special_tokens"?, "model"?}.
absl::StatusOr<v1::DetokenizeRequest> ParseDetokenizeRequest(const std::string& body,
                                                             const std::string& served_model);

}  // namespace attnres
