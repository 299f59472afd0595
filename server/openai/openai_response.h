// OpenAI-style JSON for what the engine produced: a text_completion or chat.completion object
// (from the merged GenerateResponse), their streamed chunks (from GenerateStreamResponses, with
// OpenAI's legacy logprobs lists or the chat form's per-token entries), the final usage chunk,
// the model list, and error bodies with their HTTP status codes.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "attnres/v1/attnres.pb.h"
#include "models/tokenizer.h"
#include "nlohmann/json.hpp"
#include "server/grpc/tool_call_parser.h"
#include "server/grpc/tool_call_response.h"

namespace attnres {

// What every object of one completion repeats.
struct CompletionMeta {
  bool chat = false;      // a chat completion ("chat.completion" objects) or a text one
  std::string id;         // "cmpl-<request id>" or "chatcmpl-<request id>"
  std::string model;      // the served model's name
  int64_t created = 0;    // Unix seconds
  bool logprobs = false;  // the request asked for logprobs
  bool echo = false;      // ... and echo: its prompt logprobs lead the lists
};

// What echo writes before the completion, in the first (or only) choice: the prompt's text and
// its first token, whose logprob is null (nothing predicts it).
struct EchoedPrompt {
  std::string text;
  std::string first_token;
};

// Running state of the logprobs' text_offset across a stream's chunks.
struct TextOffset {
  int64_t chars = 0;  // Unicode code points of the token texts so far
};

// The usage of the choices of one request, n per prompt (choice c completes prompt c / n): each
// prompt's tokens once, every completion's tokens.
v1::Usage TotalUsage(const std::vector<v1::Usage>& choices, int n);

// A text_completion with one choice per response (index i: choices[i], n per prompt). `echoes`
// is empty, or holds each choice's echoed prompt (null where none): that choice's text and
// logprobs then start with the prompt's.
nlohmann::ordered_json CompletionJson(const std::vector<v1::GenerateResponse>& choices,
                                      const CompletionMeta& meta, int n,
                                      const std::vector<const EchoedPrompt*>& echoes);
// One chunk of choice `index`: its text delta, its tokens' logprobs (offsets running on in
// `offset`, one per choice), and on the last one the finish reason; `echo` for the first chunk
// of an echoing choice, else null.
nlohmann::ordered_json CompletionChunkJson(const v1::GenerateStreamResponse& chunk, int index,
                                           const CompletionMeta& meta, TextOffset* offset,
                                           const EchoedPrompt* echo);
// A chat.completion: each text as the assistant's message; logprobs as {"content": [{token,
// logprob, bytes, top_logprobs}]} (bytes: the token's own bytes, from `tokenizer`).
// (One prompt: the usage counts choice 0's prompt tokens.) `tool_calls` is empty, or holds each
// choice's calls (ChoiceToolCalls): a choice with calls has the message {"role", "content" (text
// before the calls, or null), "tool_calls": [{"id", "type": "function", "function": {"name",
// "arguments"}}]} and finish_reason "tool_calls".
nlohmann::ordered_json ChatCompletionJson(
    const std::vector<v1::GenerateResponse>& choices, const CompletionMeta& meta,
    const Tokenizer& tokenizer, const std::vector<std::optional<ParsedToolCalls>>& tool_calls = {});
// A choice's tool calls (FinishedToolCalls, the gRPC API's rule): only an output that ended on
// its own (EOS, a stop string or id) is read; one cut by max_tokens stays text with
// finish_reason "length". The ids come from NewToolCallId (tool_call_parser.h).
std::optional<ParsedToolCalls> ChoiceToolCalls(const v1::GenerateResponse& choice,
                                               const ToolCallMode& mode);
// A chat.completion.chunk of choice `index`: its text as delta.content (a choice's first chunk
// also carries the role).
nlohmann::ordered_json ChatChunkJson(const v1::GenerateStreamResponse& chunk, int index,
                                     const CompletionMeta& meta, bool first,
                                     const Tokenizer& tokenizer);

// The end of a streamed choice whose text held tool calls: a chunk with delta {"tool_calls":
// [{"index": k, "id", "type": "function", "function": {"name", "arguments"}}]} (and the role,
// when `first`), then one with finish_reason "tool_calls" (and `stop_reason` when not empty).
std::vector<nlohmann::ordered_json> ToolCallChunksJson(const std::vector<ParsedToolCall>& calls,
                                                       int index, const CompletionMeta& meta,
                                                       bool first, const std::string& stop_reason);

// The chunks of choice `index` for one of its stream's responses when its text is read for tool
// calls through `stream`: a content chunk while there is content to pass on (none while the text
// is held, unless it has logprobs or is the choice's `first`); on the last response, either the
// held text as content with the finish reason, or ToolCallChunksJson. `first` is cleared once a
// chunk is written.
std::vector<nlohmann::ordered_json> ChatChunksReadingToolCalls(
    const v1::GenerateStreamResponse& chunk, int index, const CompletionMeta& meta, bool* first,
    ToolCallStream* stream, const Tokenizer& tokenizer);

// stream_options.include_usage: a chunk with no choices and the request's usage.
nlohmann::ordered_json UsageChunkJson(const v1::Usage& usage, const CompletionMeta& meta);

nlohmann::ordered_json ModelListJson(std::string_view model, int64_t created, int max_model_len);

// /tokenize: {"count", "max_model_len", "tokens"}; /detokenize: {"prompt"}.
nlohmann::ordered_json TokenizeJson(const v1::TokenizeResponse& response, int max_model_len);
nlohmann::ordered_json DetokenizeJson(const v1::DetokenizeResponse& response);

// The gRPC API's field names in a status message, as the HTTP API spells them
// ("sampling.top_p" -> "top_p", "prompt.token_ids.ids[3]" -> "prompt[3]",
// "prompt.chat.messages[1].role" -> "messages[1].role").
absl::Status WithHttpFieldNames(const absl::Status& status);
int HttpStatusCode(absl::StatusCode code);
// {"error": {"message", "type", "param": null, "code"}}
nlohmann::ordered_json ErrorJson(const absl::Status& status);

}  // namespace attnres
