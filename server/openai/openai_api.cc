// The OpenAI-compatible HTTP API (see openai_api.h). Each request holds one handler thread: a
// unary completion waits for the engine's final delta; a streamed one writes its deltas as they
// arrive, from a queue the engine thread fills without ever blocking on the client.
#include "server/openai/openai_api.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "httplib.h"
#include "server/engine/request.h"
#include "server/grpc/call_common.h"
#include "server/grpc/proto_convert.h"
#include "server/grpc/request_validation.h"
#include "server/grpc/tokenization.h"
#include "server/openai/openai_request.h"
#include "server/openai/openai_response.h"

namespace attnres {
namespace {

using json = nlohmann::ordered_json;

constexpr size_t kMaxBodyBytes = size_t{64} << 20;  // as the gRPC API's largest message

std::string Dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

void SendError(const absl::Status& status, httplib::Response& res) {
  res.status = HttpStatusCode(status.code());
  res.set_content(Dump(ErrorJson(status)), "application/json");
}

size_t ApproxBytes(const GenerationDelta& d) {
  size_t bytes = d.text.size() + 4 * d.token_ids.size();
  for (const TokenLogprob& lp : d.logprobs) bytes += 32 + 32 * lp.top.size();
  return bytes;
}

// The engine's deltas for one request, handed from the engine thread to the handler thread.
class DeltaQueue final : public RequestSink {
 public:
  explicit DeltaQueue(size_t max_pending_bytes) : max_pending_bytes_(max_pending_bytes) {}

  // Engine thread: queues and returns. Past max_pending_bytes (a client reading slower than the
  // model writes) the request is cancelled.
  void OnDelta(GenerationDelta delta) override {
    std::lock_guard<std::mutex> lock(mu_);
    pending_bytes_ += ApproxBytes(delta);
    if (!delta.finished && pending_bytes_ > max_pending_bytes_ && !overflowed_) {
      overflowed_ = true;
      if (handle_) handle_->Cancel();
    }
    finished_ = finished_ || delta.finished;
    queue_.push_back(std::move(delta));
    cv_.notify_one();
  }

  void SetHandle(std::shared_ptr<RequestHandle> handle) {
    std::lock_guard<std::mutex> lock(mu_);
    handle_ = std::move(handle);
    if (overflowed_) handle_->Cancel();
  }

  // Waits for at least one delta and takes all queued ones, oldest first.
  std::vector<GenerationDelta> Take() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return !queue_.empty(); });
    std::vector<GenerationDelta> out(std::make_move_iterator(queue_.begin()),
                                     std::make_move_iterator(queue_.end()));
    queue_.clear();
    pending_bytes_ = 0;
    return out;
  }

  // The client went away: cancels the request unless it already ended.
  void Abandon() {
    std::lock_guard<std::mutex> lock(mu_);
    if (handle_ && !finished_) handle_->Cancel();
  }

  // The request's status from its final delta.
  absl::Status FinalStatus(const GenerationDelta& last) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (overflowed_) {
        return absl::ResourceExhaustedError(
            absl::StrCat("the client read the stream slower than the server wrote it; more than ",
                         max_pending_bytes_, " bytes were pending"));
      }
    }
    return attnres::FinalStatus(last, /*client_cancelled=*/false, absl::InfiniteFuture());
  }

 private:
  const size_t max_pending_bytes_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<GenerationDelta> queue_;
  size_t pending_bytes_ = 0;
  bool overflowed_ = false;
  bool finished_ = false;
  std::shared_ptr<RequestHandle> handle_;
};

// What echo writes first: the prompt as sent (a token-id prompt decoded as the output is), and its
// first token, which no logprob covers.
EchoedPrompt Echo(const ServingContext& ctx, const v1::GenerateRequest& request,
                  const std::vector<int32_t>& prompt_ids, const OutputOptions& output) {
  EchoedPrompt echo;
  echo.text = request.prompt().kind_case() == v1::Prompt::kText
                  ? request.prompt().text()
                  : ctx.tokenizer->Decode(prompt_ids, output.skip_special_tokens);
  echo.first_token = TokenText(*ctx.tokenizer, prompt_ids[0]);
  return echo;
}

bool WriteEvent(httplib::DataSink& sink, const std::string& data) {
  const std::string event = absl::StrCat("data: ", data, "\n\n");
  return sink.write(event.data(), event.size());
}

}  // namespace

// Counts requests from arrival until their response is written, so the API can wait for
// streams to flush before it stops.
class OpenAiApi::InFlight {
 public:
  explicit InFlight(OpenAiApi* api) : api_(api) { api_->in_flight_.fetch_add(1); }
  ~InFlight() { api_->in_flight_.fetch_sub(1); }

 private:
  OpenAiApi* api_;
};

absl::StatusOr<std::unique_ptr<OpenAiApi>> OpenAiApi::Start(const std::string& host, int port,
                                                            int threads,
                                                            const ServingContext* ctx) {
  std::unique_ptr<OpenAiApi> api(new OpenAiApi(ctx));
  OpenAiApi* self = api.get();
  auto http = HttpServer::Start(host, port, threads, [self](httplib::Server& s) {
    s.set_payload_max_length(kMaxBodyBytes);
    s.Post("/v1/completions", [self](const httplib::Request& req, httplib::Response& res) {
      self->Completions(req, res);
    });
    s.Post("/tokenize", [self](const httplib::Request& req, httplib::Response& res) {
      self->Tokenize(req, res);
    });
    s.Post("/detokenize", [self](const httplib::Request& req, httplib::Response& res) {
      self->Detokenize(req, res);
    });
    s.Get("/v1/models", [self](const httplib::Request&, httplib::Response& res) {
      res.set_content(Dump(ModelListJson(self->ctx_->model_name, self->started_,
                                         self->ctx_->limits.max_model_len)),
                      "application/json");
    });
    s.Get("/health", [self](const httplib::Request&, httplib::Response& res) {
      const bool ok = self->serving_.load() && self->ctx_->engine->healthy();
      res.status = ok ? 200 : 503;
      res.set_content(ok ? R"({"status":"serving"})" : R"({"status":"not serving"})",
                      "application/json");
    });
  });
  if (!http.ok()) return http.status();
  api->http_ = *std::move(http);
  return api;
}

OpenAiApi::~OpenAiApi() {
  // Streams still writing (the engine has finished them when a drain came first) get up to 10 s.
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (in_flight_.load() > 0 && std::chrono::steady_clock::now() < end) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  http_.reset();
}

void OpenAiApi::Tokenize(const httplib::Request& req, httplib::Response& res) {
  absl::StatusOr<v1::TokenizeRequest> request = ParseTokenizeRequest(req.body, ctx_->model_name);
  if (!request.ok()) return SendError(request.status(), res);
  absl::StatusOr<v1::TokenizeResponse> response = TokenizeText(*request, *ctx_);
  if (!response.ok()) return SendError(response.status(), res);
  res.set_content(Dump(TokenizeJson(*response, ctx_->limits.max_model_len)), "application/json");
}

void OpenAiApi::Detokenize(const httplib::Request& req, httplib::Response& res) {
  absl::StatusOr<v1::DetokenizeRequest> request =
      ParseDetokenizeRequest(req.body, ctx_->model_name);
  if (!request.ok()) return SendError(request.status(), res);
  absl::StatusOr<v1::DetokenizeResponse> response = DetokenizeIds(*request, *ctx_);
  if (!response.ok()) {
    // The gRPC field is token_ids; here it is tokens.
    const absl::Status& s = response.status();
    return SendError(
        absl::Status(s.code(), absl::StrReplaceAll(s.message(), {{"token_ids", "tokens"}})), res);
  }
  res.set_content(Dump(DetokenizeJson(*response)), "application/json");
}

void OpenAiApi::Completions(const httplib::Request& req, httplib::Response& res) {
  auto in_flight = std::make_shared<InFlight>(this);
  const ServingContext& ctx = *ctx_;
  absl::StatusOr<CompletionCall> call = ParseCompletionRequest(req.body, ctx.model_name);
  if (!call.ok()) return SendError(call.status(), res);
  absl::StatusOr<GenerationRequest> gen = [&]() -> absl::StatusOr<GenerationRequest> {
    absl::Status status = ValidateGenerateRequest(call->request, ctx.limits);
    if (!status.ok()) return status;
    return ToGenerationRequest(call->request, ctx, absl::InfiniteFuture());
  }();
  if (!gen.ok()) return SendError(WithHttpFieldNames(gen.status()), res);
  const CompletionMeta meta{.id = absl::StrCat("cmpl-", gen->request_id),
                            .model = ctx.model_name,
                            .created = absl::ToUnixSeconds(absl::Now()),
                            .logprobs = call->request.has_logprobs(),
                            .echo = call->echo && call->request.has_logprobs()};
  // Written before the first chunk's text when echoing; null afterwards.
  auto echo = std::make_shared<std::optional<EchoedPrompt>>();
  if (call->echo) *echo = Echo(ctx, call->request, gen->prompt_ids, gen->output);
  auto queue = std::make_shared<DeltaQueue>(ctx.max_stream_buffer_bytes);
  absl::StatusOr<std::shared_ptr<RequestHandle>> handle =
      ctx.engine->Submit(*std::move(gen), queue);
  if (!handle.ok()) {
    if (handle.status().code() == absl::StatusCode::kResourceExhausted) {
      const int64_t ms = absl::ToInt64Milliseconds(ctx.engine->retry_after());
      res.set_header("Retry-After", std::to_string(std::max<int64_t>(1, (ms + 999) / 1000)));
    }
    return SendError(WithHttpFieldNames(handle.status()), res);
  }
  queue->SetHandle(*std::move(handle));

  if (!call->stream) {
    v1::GenerateResponse response;
    GenerationDelta last;
    while (!last.finished) {
      for (GenerationDelta& d : queue->Take()) {
        MergeDelta(d, ctx, &response);
        if (d.finished) last = std::move(d);
      }
    }
    const absl::Status status = queue->FinalStatus(last);
    if (!status.ok()) return SendError(status, res);
    res.set_content(Dump(CompletionJson(response, meta, echo->has_value() ? &**echo : nullptr)),
                    "application/json");
    return;
  }

  res.set_header("Cache-Control", "no-cache");
  auto offset = std::make_shared<TextOffset>();
  const bool include_usage = call->include_usage;
  res.set_chunked_content_provider(
      "text/event-stream",
      [&ctx, meta, include_usage, queue, offset, echo](size_t, httplib::DataSink& sink) {
        // The chunk's JSON; the first one of an echoing stream starts with the prompt.
        auto render = [&](const v1::GenerateStreamResponse& chunk) {
          const std::string out = Dump(CompletionChunkJson(chunk, meta, offset.get(),
                                                           echo->has_value() ? &**echo : nullptr));
          echo->reset();
          return out;
        };
        for (GenerationDelta& d : queue->Take()) {
          v1::GenerateStreamResponse chunk;
          MergeDelta(d, ctx, &chunk);
          if (!d.finished) {
            if (!WriteEvent(sink, render(chunk))) return false;
            continue;
          }
          const absl::Status status = queue->FinalStatus(d);
          if (!status.ok()) chunk.clear_finish_reason();
          bool ok = true;
          if (status.ok() || !chunk.text().empty() || chunk.token_ids_size() > 0) {
            ok = WriteEvent(sink, render(chunk));
          }
          if (ok && !status.ok()) ok = WriteEvent(sink, Dump(ErrorJson(status)));
          if (ok && status.ok() && include_usage) {
            ok = WriteEvent(sink, Dump(UsageChunkJson(chunk.usage(), meta)));
          }
          if (!ok || !WriteEvent(sink, "[DONE]")) return false;
          sink.done();
          return true;
        }
        return true;
      },
      // Runs when the response is destroyed: after [DONE], or when the client went away.
      [queue, in_flight](bool) { queue->Abandon(); });
}

}  // namespace attnres
