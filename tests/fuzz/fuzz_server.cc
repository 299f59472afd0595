// The fuzz targets' in-process server (see fuzz_server.h).
#include "tests/fuzz/fuzz_server.h"

#include <string>

#include "absl/time/time.h"
#include "models/file_text.h"
#include "models/model_runner.h"
#include "models/utf8.h"
#include "server/grpc/proto_convert.h"
#include "server/grpc/request_validation.h"
#include "server/structured/token_constraint.h"
#include "spdlog/spdlog.h"
#include "tests/fuzz/fuzz_check.h"

namespace attnres::fuzz {
namespace {

void CheckRefusal(const absl::Status& status, const char* what) {
  FUZZ_CHECK(status.code() == absl::StatusCode::kInvalidArgument, what);
  FUZZ_CHECK(!status.message().empty(), "a refusal says why");
}

}  // namespace

std::unique_ptr<FuzzServer> StartFuzzServer(int64_t kv_cache_bytes) {
  const std::string dir = std::string(ATTNRES_SOURCE_DIR) + "/tests/data/models/tiny_block";
  spdlog::set_level(spdlog::level::warn);  // not one log line per request
  auto server = std::make_unique<FuzzServer>();
  auto tokenizer = Tokenizer::FromFile(dir + "/tokenizer.json");
  FUZZ_CHECK(tokenizer.ok(), "the tiny model's tokenizer loads");
  server->tokenizer = std::move(*tokenizer);
  RunnerOptions runner_options;
  runner_options.device = DeviceKind::kCpu;
  runner_options.kv_page_size = 4;
  runner_options.kv_cache_bytes = kv_cache_bytes;
  auto runner = CreateModelRunner(dir, runner_options);
  FUZZ_CHECK(runner.ok(), "the tiny model loads on the CPU");
  EngineConfig engine_config;
  engine_config.kv_page_size = 4;
  engine_config.max_num_batched_tokens = 64;
  auto engine = Engine::Create(engine_config, std::move(*runner), server->tokenizer.get());
  FUZZ_CHECK(engine.ok(), "the engine starts");
  server->engine = std::move(*engine);
  ServiceOptions options;
  options.model_name = "tiny_block";
  // Chat prompts are written out by a ChatML template that refuses unknown roles.
  auto source = ReadFileText(std::string(ATTNRES_SOURCE_DIR) + "/tests/e2e/data/chatml.jinja");
  FUZZ_CHECK(source.ok(), "the ChatML template reads");
  auto chat_template = ChatTemplate::Compile(*source);
  FUZZ_CHECK(chat_template.ok(), "the ChatML template compiles");
  options.chat = ChatFormat{
      .chat_template = *std::move(chat_template), .bos_token = "<s>", .eos_token = "</s>"};
  server->service = std::make_unique<AttnResService>(server->engine.get(), options);
  return server;
}

absl::StatusOr<GenerationRequest> PrepareRequest(const uint8_t* data, size_t size,
                                                 const ServingContext& ctx) {
  v1::GenerateRequest request;
  if (!request.ParseFromArray(data, static_cast<int>(size))) {
    return absl::FailedPreconditionError("not a GenerateRequest");
  }
  if (!request.has_max_tokens() || request.max_tokens() > kMaxFuzzTokens) {
    request.set_max_tokens(kMaxFuzzTokens);
  }
  if (!request.sampling().has_seed()) request.mutable_sampling()->set_seed(0);
  if (absl::Status s = ValidateGenerateRequest(request, ctx.limits); !s.ok()) {
    CheckRefusal(s, "validation refuses as INVALID_ARGUMENT");
    return s;
  }
  auto native = ToGenerationRequest(request, ctx, absl::InfiniteFuture());
  if (!native.ok()) CheckRefusal(native.status(), "conversion refuses as INVALID_ARGUMENT");
  return native;
}

void ResponseSink::OnDelta(GenerationDelta delta) {
  std::lock_guard<std::mutex> lock(mu_);
  FUZZ_CHECK(!done_, "no delta after the final one");
  FUZZ_CHECK(utf8::IsValid(delta.text), "each delta's text is valid UTF-8");
  MergeDelta(delta, ctx_, &response_);
  if (delta.finished) {
    status_ = delta.status;
    done_ = true;
    cv_.notify_all();
  }
}

absl::StatusOr<v1::GenerateResponse> ResponseSink::Wait() {
  std::unique_lock<std::mutex> lock(mu_);
  cv_.wait(lock, [&] { return done_; });
  if (!status_.ok()) return status_;
  return response_;
}

void CheckOutcome(const absl::StatusOr<v1::GenerateResponse>& outcome,
                  const GenerationRequest& request) {
  if (outcome.ok()) {
    CheckResponse(*outcome, request);
    return;
  }
  const absl::Status& s = outcome.status();
  FUZZ_CHECK(request.grammar != nullptr && (s.code() == absl::StatusCode::kFailedPrecondition ||
                                            s.code() == absl::StatusCode::kResourceExhausted),
             "only a structured output fails once running, as FAILED_PRECONDITION or "
             "RESOURCE_EXHAUSTED");
  FUZZ_CHECK(s.message().rfind("structured output: ", 0) == 0, "the failure says why");
}

void CheckResponse(const v1::GenerateResponse& response, const GenerationRequest& request) {
  const StopCriteria& stop = request.stop;
  FUZZ_CHECK(response.finish_reason() != v1::FINISH_REASON_UNSPECIFIED, "a finish reason is set");
  FUZZ_CHECK(response.token_ids_size() <= stop.max_tokens, "at most max_tokens tokens");
  FUZZ_CHECK(response.finish_reason() != v1::FINISH_REASON_STOP ||
                 response.token_ids_size() >= stop.min_tokens || request.grammar != nullptr,
             "no stop before min_tokens (a finished structured output aside)");
  // The text of a structured output is its tokens' bytes (no special token is ever drawn inside
  // the grammar; a terminator is special or a stop id, whose stop_reason is set). A stop string
  // cuts it, which keeps it a prefix.
  if (request.grammar != nullptr && request.output.skip_special_tokens &&
      response.finish_reason() != v1::FINISH_REASON_CANCELLED &&
      response.stop_reason().rfind("token:", 0) != 0) {
    structured::GrammarAutomaton automaton(request.grammar);
    const absl::StatusOr<structured::GrammarAutomaton::State> state =
        automaton.AdvanceBytes(automaton.initial(), response.text());
    FUZZ_CHECK(state.ok() && *state != structured::GrammarAutomaton::kDead,
               "a structured output is a prefix of its grammar's language");
    FUZZ_CHECK(response.finish_reason() != v1::FINISH_REASON_STOP ||
                   !response.stop_reason().empty() || automaton.IsComplete(*state),
               "a structured output that stopped by itself is whole");
  }
  FUZZ_CHECK(response.usage().completion_tokens() == response.token_ids_size(),
             "usage counts the tokens returned");
  FUZZ_CHECK(response.logprobs_size() == 0 || response.logprobs_size() == response.token_ids_size(),
             "one logprob record per token when asked");
  std::string wire;
  FUZZ_CHECK(response.SerializeToString(&wire), "the response serializes");
  v1::GenerateResponse parsed;
  FUZZ_CHECK(parsed.ParseFromString(wire), "the response parses back (strings are valid UTF-8)");
}

}  // namespace attnres::fuzz
