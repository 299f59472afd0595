// Tokenize / Detokenize (see tokenization.h).
#include "server/grpc/tokenization.h"

#include <span>
#include <vector>

#include "server/grpc/request_validation.h"

namespace attnres {

std::string TokenText(const Tokenizer& tokenizer, int32_t id) {
  return tokenizer.Decode(std::span<const int32_t>(&id, 1), /*skip_special_tokens=*/false);
}

absl::StatusOr<v1::TokenizeResponse> TokenizeText(const v1::TokenizeRequest& request,
                                                  const ServingContext& ctx) {
  if (absl::Status status = ValidateTokenizeRequest(request); !status.ok()) return status;
  const bool add_special = request.has_add_special_tokens() ? request.add_special_tokens() : true;
  const std::vector<int32_t> ids = ctx.tokenizer->Encode(request.text(), add_special);
  v1::TokenizeResponse response;
  response.mutable_token_ids()->Add(ids.begin(), ids.end());
  for (int32_t id : ids) {
    response.add_tokens(TokenText(*ctx.tokenizer, id));
  }
  return response;
}

absl::StatusOr<v1::DetokenizeResponse> DetokenizeIds(const v1::DetokenizeRequest& request,
                                                     const ServingContext& ctx) {
  if (absl::Status status = ValidateDetokenizeRequest(request, ctx.limits); !status.ok()) {
    return status;
  }
  const std::vector<int32_t> ids(request.token_ids().begin(), request.token_ids().end());
  const bool skip = request.has_skip_special_tokens() ? request.skip_special_tokens() : true;
  v1::DetokenizeResponse response;
  response.set_text(ctx.tokenizer->Decode(ids, skip));
  return response;
}

}  // namespace attnres
