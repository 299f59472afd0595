// OpenAI-style JSON for what the engine produced: a text_completion object (from the merged
// GenerateResponse), its streamed chunks (from GenerateStreamResponses, OpenAI's legacy logprobs
// object included), the final usage chunk, the model list, and error bodies with their HTTP
// status codes.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "attnres/v1/attnres.pb.h"
#include "nlohmann/json.hpp"

namespace attnres {

// What every object of one completion repeats.
struct CompletionMeta {
  std::string id;         // "cmpl-<request id>"
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

// `echo` is null unless the request asked for it.
nlohmann::ordered_json CompletionJson(const v1::GenerateResponse& response,
                                      const CompletionMeta& meta, const EchoedPrompt* echo);
// One chunk: its text delta, its tokens' logprobs, and on the last one the finish reason; `echo`
// for the first chunk of an echoing stream, else null.
nlohmann::ordered_json CompletionChunkJson(const v1::GenerateStreamResponse& chunk,
                                           const CompletionMeta& meta, TextOffset* offset,
                                           const EchoedPrompt* echo);
// stream_options.include_usage: a chunk with no choices and the request's usage.
nlohmann::ordered_json UsageChunkJson(const v1::Usage& usage, const CompletionMeta& meta);

nlohmann::ordered_json ModelListJson(std::string_view model, int64_t created, int max_model_len);

// /tokenize: {"count", "max_model_len", "tokens"}; /detokenize: {"prompt"}.
nlohmann::ordered_json TokenizeJson(const v1::TokenizeResponse& response, int max_model_len);
nlohmann::ordered_json DetokenizeJson(const v1::DetokenizeResponse& response);

// The gRPC API's field names in a status message, as the HTTP API spells them
// ("sampling.top_p" -> "top_p", "prompt.token_ids.ids[3]" -> "prompt[3]").
absl::Status WithHttpFieldNames(const absl::Status& status);
int HttpStatusCode(absl::StatusCode code);
// {"error": {"message", "type", "param": null, "code"}}
nlohmann::ordered_json ErrorJson(const absl::Status& status);

}  // namespace attnres
