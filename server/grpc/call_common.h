// Helpers shared by the generation reactors: request preparation (validate, convert, read the
// gRPC deadline), the retry hint of a refused request, and the final status of a request from
// its last delta. Internal to server/grpc.
#pragma once

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "attnres/v1/attnres.pb.h"
#include "grpcpp/server_context.h"
#include "server/engine/request.h"
#include "server/grpc/serving_context.h"

namespace attnres {

// Validates `request`, converts it, and carries the RPC's deadline into the engine request.
absl::StatusOr<GenerationRequest> PrepareGeneration(const ServingContext& ctx,
                                                    grpc::CallbackServerContext* context,
                                                    const v1::GenerateRequest& request);

// Metadata key of the retry hint: milliseconds a client refused with RESOURCE_EXHAUSTED (queue
// full) should wait before retrying. Trailing metadata; the status message repeats it.
inline constexpr char kRetryAfterMsKey[] = "retry-after-ms";
// For a submission the engine refused with RESOURCE_EXHAUSTED, adds kRetryAfterMsKey.
void AddRetryHint(const ServingContext& ctx, const absl::Status& refusal,
                  grpc::CallbackServerContext* context);

// The RPC status for a request whose final delta is `last`: the engine's error if any; for a
// cancelled request, CANCELLED when the client went away, DEADLINE_EXCEEDED when its deadline
// passed, otherwise OK (the response then carries FINISH_REASON_CANCELLED).
absl::Status FinalStatus(const GenerationDelta& last, bool client_cancelled, absl::Time deadline);

}  // namespace attnres
