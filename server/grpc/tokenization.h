// The Tokenize and Detokenize calls, validated, as both front ends answer them (the gRPC service
// and the HTTP API's /tokenize and /detokenize).
#pragma once

#include "absl/status/statusor.h"
#include "attnres/v1/attnres.pb.h"
#include "server/grpc/serving_context.h"

namespace attnres {

// The text's token ids (with the special tokens unless add_special_tokens is false) and each
// token's text.
absl::StatusOr<v1::TokenizeResponse> TokenizeText(const v1::TokenizeRequest& request,
                                                  const ServingContext& ctx);
// INVALID_ARGUMENT naming the first id outside the vocabulary.
absl::StatusOr<v1::DetokenizeResponse> DetokenizeIds(const v1::DetokenizeRequest& request,
                                                     const ServingContext& ctx);

}  // namespace attnres
