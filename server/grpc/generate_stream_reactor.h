// The GenerateStream reactor: one chunk per engine delta, with exactly one write in flight;
// deltas that arrive while a write is pending are coalesced into the next chunk (bounded by
// ServingContext::max_stream_buffer_bytes). Cancel and disconnect reach the engine through
// RequestHandle::Cancel; the deadline travels in the GenerationRequest.
#pragma once

#include "attnres/v1/attnres.pb.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/server_callback.h"
#include "server/grpc/serving_context.h"

namespace attnres {

// Returns a self-deleting reactor (OnDone) for one GenerateStream call.
grpc::ServerWriteReactor<v1::GenerateStreamResponse>* StartGenerateStream(
    const ServingContext& ctx, grpc::CallbackServerContext* context,
    const v1::GenerateRequest* request);

}  // namespace attnres
