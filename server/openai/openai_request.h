// The bodies of the HTTP API's calls, read into the gRPC API's requests, so that both front ends
// share one set of range rules (request_validation.h) and one conversion (proto_convert.h). This
// file checks only the JSON: types, known keys, the shapes OpenAI allows (prompt as text, token
// ids or a one-element list of either; stop as a string or a list) and the parameters this server
// fixes (n = best_of = 1, no suffix).
#pragma once

#include <string>

#include "absl/status/statusor.h"
#include "attnres/v1/attnres.pb.h"

namespace attnres {

struct CompletionCall {
  v1::GenerateRequest request;  // max_tokens defaults to OpenAI's 16; other unset fields stay
                                // unset, so generation_config.json's defaults apply
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage: a last chunk carrying usage
  // echo: the prompt is written before the completion; with logprobs the request also asks for
  // prompt_logprobs (max_tokens 0 then scores a text).
  bool echo = false;
};

// INVALID_ARGUMENT naming the key and the rule for a malformed body; NOT_FOUND when "model" names
// another model than `served_model`.
absl::StatusOr<CompletionCall> ParseCompletionRequest(const std::string& body,
                                                      const std::string& served_model);

// POST /tokenize: {"prompt": text, "add_special_tokens"?, "model"?} (as other open servers).
absl::StatusOr<v1::TokenizeRequest> ParseTokenizeRequest(const std::string& body,
                                                         const std::string& served_model);
// POST /detokenize: {"tokens": [ids], "skip_special_tokens"?, "model"?}.
absl::StatusOr<v1::DetokenizeRequest> ParseDetokenizeRequest(const std::string& body,
                                                             const std::string& served_model);

}  // namespace attnres
