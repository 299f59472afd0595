// GenerateStream (see generate_stream_reactor.h). StreamSink is the state machine shared by the
// engine thread (OnDelta) and gRPC threads (OnWriteDone, OnCancel): decisions are taken under
// its mutex, gRPC operations are started after releasing it.
#include "server/grpc/generate_stream_reactor.h"

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>

#include "server/grpc/call_common.h"
#include "server/grpc/proto_convert.h"
#include "server/grpc/status_mapping.h"
#include "server/grpc/tool_call_response.h"
#include "spdlog/spdlog.h"

namespace attnres {
namespace {

using StreamReactor = grpc::ServerWriteReactor<v1::GenerateStreamResponse>;

class StreamSink : public RequestSink {
 public:
  StreamSink(const ServingContext& ctx, StreamReactor* reactor, std::string request_id,
             absl::Time deadline, std::optional<ToolCallMode> tool_calls)
      : ctx_(ctx),
        reactor_(reactor),
        request_id_(std::move(request_id)),
        deadline_(deadline),
        tool_calls_(tool_calls) {}

  void SetHandle(std::shared_ptr<RequestHandle> handle) {
    std::lock_guard<std::mutex> lock(mu_);
    handle_ = std::move(handle);
    if (client_cancelled_ || abort_) handle_->Cancel();
  }

  void Cancel() {
    std::lock_guard<std::mutex> lock(mu_);
    client_cancelled_ = true;
    if (handle_ != nullptr) handle_->Cancel();
  }

  void OnDelta(GenerationDelta delta) override {
    Action action;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (delta.finished) {
        spdlog::debug("stream {} finished: {} ({} tokens)", request_id_,
                      FinishReasonName(delta.finish_reason), delta.usage.completion_tokens);
      }
      if (finish_started_) return;  // the RPC already ended (client gone or buffer full)
      if (tool_calls_.has_value()) text_.append(delta.text);
      pending_bytes_ += MergeDelta(delta, ctx_, &pending_);
      pending_has_data_ = pending_has_data_ || !delta.token_ids.empty() || !delta.text.empty() ||
                          !delta.prompt_logprobs.empty() || delta.finished;
      if (delta.finished) {
        final_received_ = true;
        final_status_ = FinalStatus(delta, client_cancelled_, deadline_);
        // The calls go on the final response only; the deltas before it went out unchanged.
        if (tool_calls_.has_value()) AddToolCalls(*tool_calls_, text_, &pending_);
      } else if (pending_bytes_ > ctx_.max_stream_buffer_bytes && !abort_) {
        // The client reads slower than we generate: stop generating rather than buffer more.
        abort_ = true;
        final_status_ = absl::ResourceExhaustedError(
            "stream buffer full: the client reads the stream too slowly");
        if (handle_ != nullptr) handle_->Cancel();
      }
      action = NextActionLocked();
    }
    Perform(action);
  }

  void OnWriteDone(bool ok) {
    Action action;
    {
      std::lock_guard<std::mutex> lock(mu_);
      write_in_flight_ = false;
      if (!ok && !abort_) {  // the stream broke (client gone): stop the request, finish now
        abort_ = true;
        final_status_ = absl::CancelledError("stream write failed: client disconnected");
        if (handle_ != nullptr) handle_->Cancel();
      }
      action = NextActionLocked();
    }
    Perform(action);
  }

 private:
  enum class Op { kNone, kWrite, kWriteAndFinish, kFinish };
  struct Action {
    Op op = Op::kNone;
    StreamReactor* reactor = nullptr;
    grpc::Status status;
  };

  // Decides the next gRPC operation; at most one write is ever in flight, and nothing is
  // started after Finish.
  Action NextActionLocked() {
    Action action;
    if (finish_started_ || write_in_flight_) return action;
    action.reactor = reactor_;
    if (abort_) {
      action.op = Op::kFinish;
    } else if (pending_has_data_) {
      in_flight_.Clear();
      in_flight_.Swap(&pending_);
      in_flight_.set_request_id(request_id_);
      pending_has_data_ = false;
      pending_bytes_ = 0;
      action.op = final_received_ && final_status_.ok() ? Op::kWriteAndFinish : Op::kWrite;
      write_in_flight_ = action.op == Op::kWrite;
    } else if (final_received_) {
      action.op = Op::kFinish;
    } else {
      return Action{};
    }
    if (action.op != Op::kWrite) {
      finish_started_ = true;
      action.status = ToGrpcStatus(final_status_);
    }
    return action;
  }

  void Perform(const Action& action) {
    switch (action.op) {
      case Op::kNone:
        return;
      case Op::kWrite:
        action.reactor->StartWrite(&in_flight_);
        return;
      case Op::kWriteAndFinish:
        action.reactor->StartWriteAndFinish(&in_flight_, grpc::WriteOptions(), action.status);
        return;
      case Op::kFinish:
        action.reactor->Finish(action.status);
        return;
    }
  }

  const ServingContext& ctx_;
  std::mutex mu_;
  StreamReactor* const reactor_;  // used only until finish_started_
  const std::string request_id_;
  const absl::Time deadline_;
  const std::optional<ToolCallMode> tool_calls_;  // set: the whole text is read at the end
  std::string text_;                              // the whole text so far, with tool_calls_
  std::shared_ptr<RequestHandle> handle_;
  v1::GenerateStreamResponse pending_;    // coalesced deltas not yet written
  v1::GenerateStreamResponse in_flight_;  // the message gRPC is writing; untouched meanwhile
  size_t pending_bytes_ = 0;
  bool pending_has_data_ = false;
  bool write_in_flight_ = false;
  bool final_received_ = false;
  bool abort_ = false;  // finish with final_status_ without writing more
  bool finish_started_ = false;
  bool client_cancelled_ = false;
  absl::Status final_status_;
};

class GenerateStreamReactor : public StreamReactor {
 public:
  GenerateStreamReactor(const ServingContext& ctx, grpc::CallbackServerContext* context,
                        const v1::GenerateRequest& request) {
    absl::StatusOr<GenerationRequest> native = PrepareGeneration(ctx, context, request);
    if (!native.ok()) {
      Finish(ToGrpcStatus(native.status()));
      return;
    }
    sink_ = std::make_shared<StreamSink>(ctx, this, native->request_id, native->deadline,
                                         RequestToolCallMode(ctx, request));
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

  void OnWriteDone(bool ok) override { sink_->OnWriteDone(ok); }
  void OnCancel() override {
    if (sink_ != nullptr) sink_->Cancel();
  }
  void OnDone() override { delete this; }

 private:
  // The reactor keeps the sink (and the message being written) alive until OnDone.
  std::shared_ptr<StreamSink> sink_;
};

}  // namespace

grpc::ServerWriteReactor<v1::GenerateStreamResponse>* StartGenerateStream(
    const ServingContext& ctx, grpc::CallbackServerContext* context,
    const v1::GenerateRequest* request) {
  return new GenerateStreamReactor(ctx, context, *request);
}

}  // namespace attnres
