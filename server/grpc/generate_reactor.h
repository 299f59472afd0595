// The unary Generate reactor: validates and converts the request, submits it to the engine and
// finishes from the engine's final delta with the whole completion. Client cancel reaches the
// engine through RequestHandle::Cancel; the deadline travels in the GenerationRequest.
#pragma once

#include "attnres/v1/attnres.pb.h"
#include "grpcpp/server_context.h"
#include "grpcpp/support/server_callback.h"
#include "server/grpc/serving_context.h"

namespace attnres {

// Returns a self-deleting reactor (OnDone) for one Generate call.
grpc::ServerUnaryReactor* StartGenerate(const ServingContext& ctx,
                                        grpc::CallbackServerContext* context,
                                        const v1::GenerateRequest* request,
                                        v1::GenerateResponse* response);

}  // namespace attnres
