// AttnResService (see attnres_service.h): the ServingContext and the three small unary RPCs.
#include "server/grpc/attnres_service.h"

#include <string>
#include <utility>

#include "server/grpc/generate_reactor.h"
#include "server/grpc/generate_stream_reactor.h"
#include "server/grpc/proto_convert.h"
#include "server/grpc/status_mapping.h"
#include "server/grpc/tokenization.h"

namespace attnres {
namespace {

ServingContext MakeContext(Engine* engine, ServiceOptions options) {
  ServingContext ctx;
  ctx.engine = engine;
  ctx.tokenizer = &engine->tokenizer();
  const ModelConfig& model = engine->model_config();
  const EngineConfig& config = engine->config();
  ctx.limits.vocab_size = model.vocab_size;
  ctx.limits.max_model_len = config.max_model_len;  // resolved by Engine::Create
  ctx.default_max_tokens = config.default_max_tokens > 0 ? config.default_max_tokens : 4096;
  ctx.mix_layout = MixLayout::For(model);
  ctx.model_name = std::move(options.model_name);
  ctx.max_stream_buffer_bytes = options.max_stream_buffer_bytes;
  ctx.defaults = std::move(options.generation_config);
  ctx.chat = std::move(options.chat);
  ctx.tool_call_parser = options.tool_call_parser;
  return ctx;
}

}  // namespace

AttnResService::AttnResService(Engine* engine, ServiceOptions options)
    : ctx_(MakeContext(engine, std::move(options))) {}

grpc::ServerUnaryReactor* AttnResService::Generate(grpc::CallbackServerContext* context,
                                                   const v1::GenerateRequest* request,
                                                   v1::GenerateResponse* response) {
  return StartGenerate(ctx_, context, request, response);
}

grpc::ServerWriteReactor<v1::GenerateStreamResponse>* AttnResService::GenerateStream(
    grpc::CallbackServerContext* context, const v1::GenerateRequest* request) {
  return StartGenerateStream(ctx_, context, request);
}

grpc::ServerUnaryReactor* AttnResService::Tokenize(grpc::CallbackServerContext* context,
                                                   const v1::TokenizeRequest* request,
                                                   v1::TokenizeResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  absl::StatusOr<v1::TokenizeResponse> result = TokenizeText(*request, ctx_);
  if (result.ok()) *response = *std::move(result);
  reactor->Finish(ToGrpcStatus(result.status()));
  return reactor;
}

grpc::ServerUnaryReactor* AttnResService::Detokenize(grpc::CallbackServerContext* context,
                                                     const v1::DetokenizeRequest* request,
                                                     v1::DetokenizeResponse* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  absl::StatusOr<v1::DetokenizeResponse> result = DetokenizeIds(*request, ctx_);
  if (result.ok()) *response = *std::move(result);
  reactor->Finish(ToGrpcStatus(result.status()));
  return reactor;
}

grpc::ServerUnaryReactor* AttnResService::GetModelInfo(grpc::CallbackServerContext* context,
                                                       const v1::GetModelInfoRequest* request,
                                                       v1::ModelInfo* response) {
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  *response = BuildModelInfo(ctx_);
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

}  // namespace attnres
