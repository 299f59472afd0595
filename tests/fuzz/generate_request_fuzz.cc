// Fuzz target: one serialized attnres.v1.GenerateRequest through everything a Generate call does
// after gRPC hands it over: ValidateGenerateRequest, ToGenerationRequest (tokenizing, defaults),
// Engine::Submit on the real CPU engine with the tiny Block AttnRes test model, and MergeDelta
// into the response. Generation is capped at 8 tokens and an unset seed fixed, so inputs replay
// the same way. A bad request must end in INVALID_ARGUMENT with a message; a good one in a final
// delta, a response whose strings survive the wire (serialize, parse) and whose counts agree.
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include "absl/time/time.h"
#include "attnres/v1/attnres.pb.h"
#include "models/model_runner.h"
#include "models/tokenizer.h"
#include "models/utf8.h"
#include "server/engine/engine.h"
#include "server/grpc/attnres_service.h"
#include "server/grpc/proto_convert.h"
#include "server/grpc/request_validation.h"
#include "spdlog/spdlog.h"
#include "tests/fuzz/fuzz_check.h"

namespace attnres {
namespace {

constexpr int kMaxFuzzTokens = 8;

struct Server {
  std::unique_ptr<Tokenizer> tokenizer;
  std::unique_ptr<Engine> engine;
  std::unique_ptr<AttnResService> service;
};

// Built once and never destroyed: the engine thread lives for the whole fuzzing process.
const Server& TheServer() {
  static const Server* server = [] {
    const std::string dir = std::string(ATTNRES_SOURCE_DIR) + "/tests/data/models/tiny_block";
    auto* s = new Server;
    spdlog::set_level(spdlog::level::warn);  // not one log line per request
    auto tokenizer = Tokenizer::FromFile(dir + "/tokenizer.json");
    FUZZ_CHECK(tokenizer.ok(), "the tiny model's tokenizer loads");
    s->tokenizer = std::move(*tokenizer);
    RunnerOptions runner_options;
    runner_options.device = DeviceKind::kCpu;
    runner_options.kv_page_size = 4;
    runner_options.kv_cache_bytes = int64_t{8} << 20;
    auto runner = CreateModelRunner(dir, runner_options);
    FUZZ_CHECK(runner.ok(), "the tiny model loads on the CPU");
    EngineConfig engine_config;
    engine_config.kv_page_size = 4;
    engine_config.max_num_batched_tokens = 64;
    auto engine = Engine::Create(engine_config, std::move(*runner), s->tokenizer.get());
    FUZZ_CHECK(engine.ok(), "the engine starts");
    s->engine = std::move(*engine);
    ServiceOptions options;
    options.model_name = "tiny_block";
    s->service = std::make_unique<AttnResService>(s->engine.get(), options);
    return s;
  }();
  return *server;
}

// Merges deltas into one response as the unary Generate reactor does; Wait() returns it.
class ResponseSink : public RequestSink {
 public:
  explicit ResponseSink(const ServingContext& ctx) : ctx_(ctx) {}
  void OnDelta(GenerationDelta delta) override {
    std::lock_guard<std::mutex> lock(mu_);
    FUZZ_CHECK(!done_, "no delta after the final one");
    FUZZ_CHECK(utf8::IsValid(delta.text), "each delta's text is valid UTF-8");
    MergeDelta(delta, ctx_, &response_);
    if (delta.finished) {
      done_ = true;
      cv_.notify_all();
    }
  }
  v1::GenerateResponse Wait() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return done_; });
    return response_;
  }

 private:
  const ServingContext& ctx_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  v1::GenerateResponse response_;
};

void CheckRefusal(const absl::Status& status, absl::StatusCode expected, const char* what) {
  FUZZ_CHECK(status.code() == expected, what);
  FUZZ_CHECK(!status.message().empty(), "a refusal says why");
}

}  // namespace
}  // namespace attnres

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace attnres;
  const Server& server = TheServer();
  const ServingContext& ctx = server.service->context();
  v1::GenerateRequest request;
  if (!request.ParseFromArray(data, static_cast<int>(size))) return 0;
  if (!request.has_max_tokens() || request.max_tokens() > kMaxFuzzTokens) {
    request.set_max_tokens(kMaxFuzzTokens);
  }
  if (!request.sampling().has_seed()) request.mutable_sampling()->set_seed(0);

  if (absl::Status s = ValidateGenerateRequest(request, ctx.limits); !s.ok()) {
    CheckRefusal(s, absl::StatusCode::kInvalidArgument, "validation refuses as INVALID_ARGUMENT");
    return 0;
  }
  auto native = ToGenerationRequest(request, ctx, absl::InfiniteFuture());
  if (!native.ok()) {
    CheckRefusal(native.status(), absl::StatusCode::kInvalidArgument,
                 "conversion refuses as INVALID_ARGUMENT");
    return 0;
  }
  auto sink = std::make_shared<ResponseSink>(ctx);
  auto handle = server.engine->Submit(std::move(*native), sink);
  if (!handle.ok()) {
    CheckRefusal(handle.status(), absl::StatusCode::kInvalidArgument,
                 "the engine refuses a lone request only as INVALID_ARGUMENT");
    return 0;
  }
  const v1::GenerateResponse response = sink->Wait();
  FUZZ_CHECK(server.engine->healthy(), "the engine stays healthy");
  FUZZ_CHECK(response.finish_reason() != v1::FINISH_REASON_UNSPECIFIED, "a finish reason is set");
  FUZZ_CHECK(response.token_ids_size() <= request.max_tokens(), "at most max_tokens tokens");
  FUZZ_CHECK(response.usage().completion_tokens() == response.token_ids_size(),
             "usage counts the tokens returned");
  FUZZ_CHECK(response.logprobs_size() == 0 || response.logprobs_size() == response.token_ids_size(),
             "one logprob record per token when asked");
  std::string wire;
  FUZZ_CHECK(response.SerializeToString(&wire), "the response serializes");
  v1::GenerateResponse parsed;
  FUZZ_CHECK(parsed.ParseFromString(wire), "the response parses back (strings are valid UTF-8)");
  return 0;
}
