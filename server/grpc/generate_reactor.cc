// Unary Generate (see generate_reactor.h). The engine thread accumulates deltas into the
// response through GenerateSink; the final delta finishes the RPC.
#include "server/grpc/generate_reactor.h"

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/grpc/call_common.h"
#include "server/grpc/proto_convert.h"
#include "server/grpc/status_mapping.h"
#include "server/grpc/tool_call_response.h"
#include "spdlog/spdlog.h"

namespace attnres {
namespace {

// Shared by the reactor (gRPC threads) and the engine (engine thread). Touches the reactor and
// the response only until it has called Finish; the engine may hold it longer.
class GenerateSink : public RequestSink {
 public:
  GenerateSink(const ServingContext& ctx, grpc::ServerUnaryReactor* reactor,
               v1::GenerateResponse* response, std::string request_id, absl::Time deadline,
               std::optional<ToolCallMode> tool_calls)
      : ctx_(ctx),
        reactor_(reactor),
        response_(response),
        request_id_(std::move(request_id)),
        deadline_(deadline),
        tool_calls_(tool_calls) {}

  void SetHandle(std::shared_ptr<RequestHandle> handle) {
    std::lock_guard<std::mutex> lock(mu_);
    handle_ = std::move(handle);
    if (client_cancelled_) handle_->Cancel();
  }

  void Cancel() {
    std::lock_guard<std::mutex> lock(mu_);
    client_cancelled_ = true;
    if (handle_ != nullptr) handle_->Cancel();
  }

  void OnDelta(GenerationDelta delta) override {
    grpc::ServerUnaryReactor* reactor = nullptr;
    absl::Status status;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (finished_) return;
      MergeDelta(delta, ctx_, response_);
      if (!delta.finished) return;
      finished_ = true;
      status = FinalStatus(delta, client_cancelled_, deadline_);
      response_->set_request_id(request_id_);
      // The response holds the whole text now; AddToolCalls reads it only after a STOP.
      if (tool_calls_.has_value()) AddToolCalls(*tool_calls_, response_->text(), response_);
      reactor = reactor_;
    }
    spdlog::debug("request {} finished: {} ({} tokens){}", request_id_,
                  FinishReasonName(delta.finish_reason), delta.usage.completion_tokens,
                  status.ok() ? std::string() : absl::StrCat(" ", status.ToString()));
    reactor->Finish(ToGrpcStatus(status));
  }

 private:
  const ServingContext& ctx_;
  std::mutex mu_;
  grpc::ServerUnaryReactor* reactor_;
  v1::GenerateResponse* response_;  // owned by gRPC, valid until Finish
  const std::string request_id_;
  const absl::Time deadline_;
  const std::optional<ToolCallMode> tool_calls_;  // set: the final text is read for tool calls
  std::shared_ptr<RequestHandle> handle_;
  bool client_cancelled_ = false;
  bool finished_ = false;
};

class GenerateReactor : public grpc::ServerUnaryReactor {
 public:
  GenerateReactor(const ServingContext& ctx, grpc::CallbackServerContext* context,
                  const v1::GenerateRequest& request, v1::GenerateResponse* response) {
    absl::StatusOr<GenerationRequest> native = PrepareGeneration(ctx, context, request);
    if (!native.ok()) {
      Finish(ToGrpcStatus(native.status()));
      return;
    }
    sink_ = std::make_shared<GenerateSink>(ctx, this, response, native->request_id,
                                           native->deadline, RequestToolCallMode(ctx, request));
    absl::StatusOr<std::shared_ptr<RequestHandle>> handle =
        ctx.engine->Submit(*std::move(native), sink_);
    if (!handle.ok()) {
      sink_.reset();
      AddRetryHint(ctx, handle.status(), context);
      Finish(ToGrpcStatus(handle.status()));
      return;
    }
    sink_->SetHandle(*std::move(handle));
  }

  void OnCancel() override {
    if (sink_ != nullptr) sink_->Cancel();
  }
  void OnDone() override { delete this; }

 private:
  std::shared_ptr<GenerateSink> sink_;
};

}  // namespace

grpc::ServerUnaryReactor* StartGenerate(const ServingContext& ctx,
                                        grpc::CallbackServerContext* context,
                                        const v1::GenerateRequest* request,
                                        v1::GenerateResponse* response) {
  return new GenerateReactor(ctx, context, *request, response);
}

}  // namespace attnres
