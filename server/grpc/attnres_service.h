// AttnResService: the attnres.v1.AttnRes callback service. Generation RPCs get their own
// reactors (generate_reactor.h, generate_stream_reactor.h); Tokenize, Detokenize and
// GetModelInfo finish inline on the default unary reactor. Owns the ServingContext.
#pragma once

#include "attnres/v1/attnres.grpc.pb.h"
#include "server/engine/engine.h"
#include "server/grpc/serving_context.h"

namespace attnres {

class AttnResService final : public v1::AttnRes::CallbackService {
 public:
  // `engine` must outlive the service.
  AttnResService(Engine* engine, ServiceOptions options);

  grpc::ServerUnaryReactor* Generate(grpc::CallbackServerContext* context,
                                     const v1::GenerateRequest* request,
                                     v1::GenerateResponse* response) override;
  grpc::ServerWriteReactor<v1::GenerateStreamResponse>* GenerateStream(
      grpc::CallbackServerContext* context, const v1::GenerateRequest* request) override;
  grpc::ServerUnaryReactor* Tokenize(grpc::CallbackServerContext* context,
                                     const v1::TokenizeRequest* request,
                                     v1::TokenizeResponse* response) override;
  grpc::ServerUnaryReactor* Detokenize(grpc::CallbackServerContext* context,
                                       const v1::DetokenizeRequest* request,
                                       v1::DetokenizeResponse* response) override;
  grpc::ServerUnaryReactor* GetModelInfo(grpc::CallbackServerContext* context,
                                         const v1::GetModelInfoRequest* request,
                                         v1::ModelInfo* response) override;

  const ServingContext& context() const { return ctx_; }

 private:
  ServingContext ctx_;
};

}  // namespace attnres
