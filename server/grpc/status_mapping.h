// The one place where absl::Status becomes grpc::Status. Every reactor finishes through
// ToGrpcStatus; nothing else in the server builds a grpc::Status from an error.
#pragma once

#include "absl/status/status.h"
#include "grpcpp/support/status.h"

namespace attnres {

// Same code (absl and gRPC share the canonical numbering) and message; payloads are dropped.
grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace attnres
