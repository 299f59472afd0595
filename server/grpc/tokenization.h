// The Tokenize and Detokenize calls, validated, as both front ends answer them (the gRPC service
// and the HTTP API's /tokenize and /detokenize).
#pragma once

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "attnres/v1/attnres.pb.h"
#include "server/grpc/serving_context.h"

namespace attnres {

// One token's own text, special tokens included (a partial character's bytes are U+FFFD): what
// Tokenize, logprobs and HTTP echo show for a token.
std::string TokenText(const Tokenizer& tokenizer, int32_t id);

// The text's token ids (with the special tokens unless add_special_tokens is false) and each
// token's text.
absl::StatusOr<v1::TokenizeResponse> TokenizeText(const v1::TokenizeRequest& request,
                                                  const ServingContext& ctx);
// INVALID_ARGUMENT naming the first id outside the vocabulary.
absl::StatusOr<v1::DetokenizeResponse> DetokenizeIds(const v1::DetokenizeRequest& request,
                                                     const ServingContext& ctx);

}  // namespace attnres
