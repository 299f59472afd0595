// Request preparation and final status of the generation reactors (see call_common.h).
#include "server/grpc/call_common.h"

#include <chrono>
#include <string>

#include "server/grpc/proto_convert.h"
#include "server/grpc/request_validation.h"

namespace attnres {
namespace {

absl::Time RpcDeadline(const grpc::CallbackServerContext& context) {
  const auto deadline = context.deadline();
  if (deadline == std::chrono::system_clock::time_point::max()) return absl::InfiniteFuture();
  return absl::FromChrono(deadline);
}

}  // namespace

absl::StatusOr<GenerationRequest> PrepareGeneration(const ServingContext& ctx,
                                                    grpc::CallbackServerContext* context,
                                                    const v1::GenerateRequest& request) {
  absl::Status status = ValidateGenerateRequest(request, ctx.limits);
  if (!status.ok()) return status;
  return ToGenerationRequest(request, ctx, RpcDeadline(*context));
}

void AddRetryHint(const ServingContext& ctx, const absl::Status& refusal,
                  grpc::CallbackServerContext* context) {
  if (refusal.code() != absl::StatusCode::kResourceExhausted) return;
  context->AddTrailingMetadata(
      kRetryAfterMsKey, std::to_string(absl::ToInt64Milliseconds(ctx.engine->retry_after())));
}

absl::Status FinalStatus(const GenerationDelta& last, bool client_cancelled, absl::Time deadline) {
  if (!last.status.ok()) return last.status;
  if (last.finish_reason != FinishReason::kCancelled) return absl::OkStatus();
  if (absl::Now() >= deadline) return absl::DeadlineExceededError("request deadline exceeded");
  if (client_cancelled) return absl::CancelledError("request cancelled by the client");
  return absl::OkStatus();
}

}  // namespace attnres
