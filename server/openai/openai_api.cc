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

#include "absl/random/random.h"
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

// One delta of choice `choice` (an HTTP request's n choices are n engine requests).
struct ChoiceDelta {
  int choice = 0;
  GenerationDelta delta;
};

// The engine's deltas for one HTTP request's choices, handed from the engine thread to the
// handler thread.
class DeltaQueue {
 public:
  DeltaQueue(int choices, size_t max_pending_bytes)
      : max_pending_bytes_(max_pending_bytes), finished_(choices, false), handles_(choices) {}

  // What Submit takes for choice `choice`: a sink that queues into `queue`.
  static std::shared_ptr<RequestSink> SinkFor(std::shared_ptr<DeltaQueue> queue, int choice) {
    return std::make_shared<Sink>(std::move(queue), choice);
  }

  // Engine thread: queues and returns. Past max_pending_bytes (a client reading slower than the
  // model writes) every choice is cancelled.
  void Push(int choice, GenerationDelta delta) {
    std::lock_guard<std::mutex> lock(mu_);
    pending_bytes_ += ApproxBytes(delta);
    if (!delta.finished && pending_bytes_ > max_pending_bytes_ && !overflowed_) {
      overflowed_ = true;
      for (const auto& handle : handles_) {
        if (handle) handle->Cancel();
      }
    }
    if (delta.finished) finished_[choice] = true;
    queue_.push_back({choice, std::move(delta)});
    cv_.notify_one();
  }

  void SetHandle(int choice, std::shared_ptr<RequestHandle> handle) {
    std::lock_guard<std::mutex> lock(mu_);
    if (overflowed_) handle->Cancel();
    handles_[choice] = std::move(handle);
  }

  // Waits for at least one delta and takes all queued ones, oldest first.
  std::vector<ChoiceDelta> Take() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [this] { return !queue_.empty(); });
    std::vector<ChoiceDelta> out(std::make_move_iterator(queue_.begin()),
                                 std::make_move_iterator(queue_.end()));
    queue_.clear();
    pending_bytes_ = 0;
    return out;
  }

  // The client went away, or one choice failed: cancels every submitted choice that has not
  // ended.
  void Abandon() {
    std::lock_guard<std::mutex> lock(mu_);
    for (size_t i = 0; i < handles_.size(); ++i) {
      if (handles_[i] && !finished_[i]) handles_[i]->Cancel();
    }
  }

  // A choice's status from its final delta.
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
  class Sink final : public RequestSink {
   public:
    Sink(std::shared_ptr<DeltaQueue> queue, int choice)
        : queue_(std::move(queue)), choice_(choice) {}
    void OnDelta(GenerationDelta delta) override { queue_->Push(choice_, std::move(delta)); }

   private:
    const std::shared_ptr<DeltaQueue> queue_;
    const int choice_;
  };

  const size_t max_pending_bytes_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<ChoiceDelta> queue_;
  size_t pending_bytes_ = 0;
  bool overflowed_ = false;
  std::vector<bool> finished_;                           // by choice
  std::vector<std::shared_ptr<RequestHandle>> handles_;  // by choice; null until submitted
};

// The engine requests of a call's n choices: choice 0 as converted; choice i with the request id
// "<id>-i" and the seed the request's + i when it set one, else a fresh draw.
std::vector<GenerationRequest> Choices(GenerationRequest base, int n, bool seeded) {
  thread_local absl::BitGen gen;
  std::vector<GenerationRequest> out;
  for (int i = 1; i < n; ++i) {
    GenerationRequest r = base;
    r.request_id = absl::StrCat(base.request_id, "-", i);
    r.sampling.seed =
        seeded ? base.sampling.seed + static_cast<uint64_t>(i) : absl::Uniform<uint64_t>(gen);
    out.push_back(std::move(r));
  }
  out.insert(out.begin(), std::move(base));
  return out;
}

// Submits a call's choices, n per prompt (choice p * n + j is prompt p's j-th): each prompt's
// first at once, its others once that one has answered. By then its prompt's full pages are in
// the prefix cache, so the others compute only the last partial page instead of n prefills of
// the same prompt.
class ChoiceLauncher {
 public:
  // groups[p]: prompt p's n requests.
  ChoiceLauncher(Engine* engine, std::shared_ptr<DeltaQueue> queue,
                 std::vector<std::vector<GenerationRequest>> groups)
      : engine_(engine),
        queue_(std::move(queue)),
        groups_(std::move(groups)),
        launched_(groups_.size(), false) {}

  absl::Status SubmitFirsts() {
    for (size_t p = 0; p < groups_.size(); ++p) {
      if (absl::Status s = Submit(p, 0); !s.ok()) return s;
    }
    return absl::OkStatus();
  }

  // After the handler took `taken`: submits the other choices of each prompt whose first choice
  // has answered. An error is the request's (the submitted choices are cancelled).
  absl::Status OnTaken(const std::vector<ChoiceDelta>& taken) {
    for (const ChoiceDelta& d : taken) {
      const size_t p = static_cast<size_t>(d.choice) / groups_[0].size();
      if (launched_[p]) continue;
      launched_[p] = true;
      for (size_t j = 1; j < groups_[p].size(); ++j) {
        if (absl::Status s = Submit(p, j); !s.ok()) return s;
      }
    }
    return absl::OkStatus();
  }

 private:
  absl::Status Submit(size_t p, size_t j) {
    const int choice = static_cast<int>(p * groups_[p].size() + j);
    absl::StatusOr<std::shared_ptr<RequestHandle>> handle =
        engine_->Submit(std::move(groups_[p][j]), DeltaQueue::SinkFor(queue_, choice));
    if (!handle.ok()) {
      queue_->Abandon();
      return handle.status();
    }
    queue_->SetHandle(choice, *std::move(handle));
    return absl::OkStatus();
  }

  Engine* const engine_;
  const std::shared_ptr<DeltaQueue> queue_;
  std::vector<std::vector<GenerationRequest>> groups_;
  std::vector<bool> launched_;  // by prompt: its other choices are submitted
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

// How one endpoint writes the engine's output: whole, or chunk by chunk (each choice's in order,
// from one thread at a time), and the usage chunk. Choice c completes prompt c / n.
class OutputWriter {
 public:
  virtual ~OutputWriter() = default;
  virtual json Whole(const std::vector<v1::GenerateResponse>& choices) = 0;
  // The events for one chunk of `choice`, in order (none when it has nothing to say).
  virtual std::vector<json> Chunks(const v1::GenerateStreamResponse& chunk, int choice) = 0;
  json Usage(const std::vector<v1::Usage>& choices) const {
    return UsageChunkJson(TotalUsage(choices, n_), meta_);
  }

 protected:
  OutputWriter(CompletionMeta meta, int n) : meta_(std::move(meta)), n_(n) {}
  const CompletionMeta meta_;
  const int n_;
};

// /v1/completions: text_completion objects; with echo, its prompt leads each choice's text.
class TextWriter final : public OutputWriter {
 public:
  // echoes: by prompt, each set when the request asked for echo.
  TextWriter(CompletionMeta meta, int n, std::vector<std::optional<EchoedPrompt>> echoes)
      : OutputWriter(std::move(meta), n), echoes_(std::move(echoes)) {
    for (size_t c = 0; c < echoes_.size() * n; ++c) {
      const std::optional<EchoedPrompt>& e = echoes_[c / n];
      echo_of_.push_back(e.has_value() ? &*e : nullptr);
    }
    echo_pending_.assign(echo_of_.size(), true);
    offsets_.resize(echo_of_.size());
  }
  json Whole(const std::vector<v1::GenerateResponse>& choices) override {
    return CompletionJson(choices, meta_, n_, echo_of_);
  }
  std::vector<json> Chunks(const v1::GenerateStreamResponse& chunk, int choice) override {
    json j = CompletionChunkJson(chunk, choice, meta_, &offsets_[choice],
                                 echo_pending_[choice] ? echo_of_[choice] : nullptr);
    echo_pending_[choice] = false;
    return {std::move(j)};
  }

 private:
  const std::vector<std::optional<EchoedPrompt>> echoes_;
  std::vector<const EchoedPrompt*> echo_of_;  // by choice, into echoes_; null without echo
  std::vector<bool> echo_pending_;            // by choice: its first chunk is still to come
  std::vector<TextOffset> offsets_;
};

// /v1/chat/completions: chat.completion objects; each choice's first chunk carries the role.
// With `tool_calls`, each choice's text is read for tool calls: whole, or in a stream through
// its own ToolCallStream (content goes out until the text may be a call; the rest is held to
// the end, then sent as calls or as content).
class ChatWriter final : public OutputWriter {
 public:
  ChatWriter(CompletionMeta meta, int n, int choices, const Tokenizer* tokenizer,
             std::optional<ToolCallMode> tool_calls)
      : OutputWriter(std::move(meta), n),
        tokenizer_(tokenizer),
        tool_calls_(tool_calls),
        first_(choices, true) {
    if (tool_calls_.has_value()) streams_.assign(choices, ToolCallStream(*tool_calls_));
  }
  json Whole(const std::vector<v1::GenerateResponse>& choices) override {
    std::vector<std::optional<ParsedToolCalls>> calls;
    if (tool_calls_.has_value()) {
      for (const v1::GenerateResponse& c : choices) {
        calls.push_back(ChoiceToolCalls(c, *tool_calls_));
      }
    }
    return ChatCompletionJson(choices, meta_, *tokenizer_, calls);
  }
  std::vector<json> Chunks(const v1::GenerateStreamResponse& chunk, int choice) override {
    if (!tool_calls_.has_value()) return {Next(chunk, choice)};
    bool first = first_[choice];
    std::vector<json> events =
        ChatChunksReadingToolCalls(chunk, choice, meta_, &first, &streams_[choice], *tokenizer_);
    first_[choice] = first;
    return events;
  }

 private:
  json Next(const v1::GenerateStreamResponse& chunk, int choice) {
    json j = ChatChunkJson(chunk, choice, meta_, first_[choice], *tokenizer_);
    first_[choice] = false;
    return j;
  }

  const Tokenizer* tokenizer_;
  const std::optional<ToolCallMode> tool_calls_;
  std::vector<bool> first_;              // by choice: no chunk of it was written yet
  std::vector<ToolCallStream> streams_;  // by choice, with tool_calls_
};

// A call's engine requests, n per prompt, checked and converted as the gRPC API does them, and
// each prompt's echo when the call asked for it. Of several prompts, a refused one is named
// ("prompt[1]: ...").
struct PreparedCall {
  std::vector<std::vector<GenerationRequest>> groups;  // by prompt: its n choices
  std::vector<std::optional<EchoedPrompt>> echoes;     // by prompt
};

absl::StatusOr<PreparedCall> Prepare(const CompletionCall& call, const ServingContext& ctx) {
  const size_t num_prompts = call.prompts.size();
  PreparedCall out;
  for (size_t p = 0; p < num_prompts; ++p) {
    v1::GenerateRequest request = call.request;
    *request.mutable_prompt() = call.prompts[p];
    absl::Status status = ValidateGenerateRequest(request, ctx.limits);
    absl::StatusOr<GenerationRequest> gen =
        status.ok() ? ToGenerationRequest(request, ctx, absl::InfiniteFuture())
                    : absl::StatusOr<GenerationRequest>(status);
    if (!gen.ok()) {
      const absl::Status& s = gen.status();
      if (num_prompts == 1) return s;
      return absl::Status(s.code(), absl::StrCat("prompt[", p, "]: ", s.message()));
    }
    out.echoes.push_back(call.echo ? std::optional(Echo(ctx, request, gen->prompt_ids, gen->output))
                                   : std::nullopt);
    out.groups.push_back(Choices(*std::move(gen), call.n, call.request.sampling().has_seed()));
  }
  return out;
}

// A unary call: every choice's deltas merged into its response, the other choices submitted as
// their first answers. The first failure is the call's (the other choices are cancelled).
absl::StatusOr<std::vector<v1::GenerateResponse>> AwaitAll(DeltaQueue& queue,
                                                           ChoiceLauncher& launcher,
                                                           const ServingContext& ctx, int choices) {
  std::vector<v1::GenerateResponse> responses(choices);
  for (int done = 0; done < choices;) {
    std::vector<ChoiceDelta> taken = queue.Take();
    if (absl::Status status = launcher.OnTaken(taken); !status.ok()) return status;
    for (ChoiceDelta& d : taken) {
      MergeDelta(d.delta, ctx, &responses[d.choice]);
      if (!d.delta.finished) continue;
      ++done;
      if (absl::Status status = queue.FinalStatus(d.delta); !status.ok()) {
        queue.Abandon();
        return status;
      }
    }
  }
  return responses;
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

absl::StatusOr<std::unique_ptr<OpenAiApi>> OpenAiApi::Start(
    const std::string& host, int port, int threads, const ServingContext* ctx,
    std::optional<ToolCallParser> tool_call_parser) {
  std::unique_ptr<OpenAiApi> api(new OpenAiApi(ctx, tool_call_parser));
  OpenAiApi* self = api.get();
  auto http = HttpServer::Start(host, port, threads, [self](httplib::Server& s) {
    s.set_payload_max_length(kMaxBodyBytes);
    s.Post("/v1/completions", [self](const httplib::Request& req, httplib::Response& res) {
      self->Generate(ParseCompletionRequest(req.body, self->ctx_->model_name), false, res);
    });
    s.Post("/v1/chat/completions", [self](const httplib::Request& req, httplib::Response& res) {
      self->Generate(ParseChatRequest(req.body, self->ctx_->model_name, self->tool_call_parser_),
                     true, res);
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

void OpenAiApi::Generate(absl::StatusOr<CompletionCall> call, bool chat, httplib::Response& res) {
  auto in_flight = std::make_shared<InFlight>(this);
  const ServingContext& ctx = *ctx_;
  if (!call.ok()) return SendError(call.status(), res);
  absl::StatusOr<PreparedCall> prepared = Prepare(*call, ctx);
  if (!prepared.ok()) return SendError(WithHttpFieldNames(prepared.status()), res);
  const int n = call->n, choices = static_cast<int>(call->prompts.size()) * n;
  const CompletionMeta meta{
      .chat = chat,
      .id = absl::StrCat(chat ? "chatcmpl-" : "cmpl-", prepared->groups[0][0].request_id),
      .model = ctx.model_name,
      .created = absl::ToUnixSeconds(absl::Now()),
      .logprobs = call->request.has_logprobs(),
      .echo = call->echo && call->request.has_logprobs()};
  std::shared_ptr<OutputWriter> writer;
  if (chat) {
    writer = std::make_shared<ChatWriter>(meta, n, choices, ctx.tokenizer, call->tool_calls);
  } else {
    writer = std::make_shared<TextWriter>(meta, n, std::move(prepared->echoes));
  }
  auto queue = std::make_shared<DeltaQueue>(choices, ctx.max_stream_buffer_bytes);
  auto launcher = std::make_shared<ChoiceLauncher>(ctx.engine, queue, std::move(prepared->groups));
  // Errors before the response starts; a full queue adds Retry-After (whole seconds).
  auto send_error = [&](const absl::Status& status) {
    if (status.code() == absl::StatusCode::kResourceExhausted) {
      const int64_t ms = absl::ToInt64Milliseconds(ctx.engine->retry_after());
      res.set_header("Retry-After", std::to_string(std::max<int64_t>(1, (ms + 999) / 1000)));
    }
    SendError(WithHttpFieldNames(status), res);
  };
  if (absl::Status status = launcher->SubmitFirsts(); !status.ok()) return send_error(status);

  if (!call->stream) {
    absl::StatusOr<std::vector<v1::GenerateResponse>> responses =
        AwaitAll(*queue, *launcher, ctx, choices);
    if (!responses.ok()) return send_error(responses.status());
    res.set_content(Dump(writer->Whole(*responses)), "application/json");
    return;
  }

  res.set_header("Cache-Control", "no-cache");
  const bool include_usage = call->include_usage;
  // Each choice's usage, filled as it finishes; the stream ends when all have.
  auto usages = std::make_shared<std::vector<v1::Usage>>(choices);
  auto unfinished = std::make_shared<int>(choices);
  res.set_chunked_content_provider(
      "text/event-stream",
      [&ctx, include_usage, queue, launcher, writer, usages, unfinished](size_t,
                                                                         httplib::DataSink& sink) {
        std::vector<ChoiceDelta> taken = queue->Take();
        if (absl::Status status = launcher->OnTaken(taken); !status.ok()) {
          if (!WriteEvent(sink, Dump(ErrorJson(WithHttpFieldNames(status)))) ||
              !WriteEvent(sink, "[DONE]")) {
            return false;
          }
          sink.done();
          return true;
        }
        for (ChoiceDelta& d : taken) {
          v1::GenerateStreamResponse chunk;
          MergeDelta(d.delta, ctx, &chunk);
          if (!d.delta.finished) {
            for (const json& event : writer->Chunks(chunk, d.choice)) {
              if (!WriteEvent(sink, Dump(event))) return false;
            }
            continue;
          }
          const absl::Status status = queue->FinalStatus(d.delta);
          if (!status.ok()) chunk.clear_finish_reason();
          bool ok = true;
          if (status.ok() || !chunk.text().empty() || chunk.token_ids_size() > 0) {
            for (const json& event : writer->Chunks(chunk, d.choice)) {
              if (ok) ok = WriteEvent(sink, Dump(event));
            }
          }
          if (ok && status.ok()) {
            (*usages)[d.choice] = chunk.usage();
            if (--*unfinished > 0) continue;
            if (include_usage) ok = WriteEvent(sink, Dump(writer->Usage(*usages)));
          } else if (ok) {
            queue->Abandon();  // one choice failed: the request did
            ok = WriteEvent(sink, Dump(ErrorJson(status)));
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
