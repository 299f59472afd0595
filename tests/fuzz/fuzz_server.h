// The in-process server that the request fuzz targets drive: the tiny Block AttnRes test model
// (tests/data/models/tiny_block) on the real CPU engine, the ServingContext an AttnResService
// builds over it, and the steps a Generate call takes before and after the engine.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>

#include "absl/status/statusor.h"
#include "attnres/v1/attnres.pb.h"
#include "models/tokenizer.h"
#include "server/engine/engine.h"
#include "server/engine/request.h"
#include "server/grpc/attnres_service.h"
#include "server/grpc/serving_context.h"

namespace attnres::fuzz {

// Generation is capped so that every input runs in milliseconds.
inline constexpr int kMaxFuzzTokens = 8;

struct FuzzServer {
  std::unique_ptr<Tokenizer> tokenizer;
  std::unique_ptr<Engine> engine;
  std::unique_ptr<AttnResService> service;
  const ServingContext& ctx() const { return service->context(); }
};

// Loads the model and starts the engine with a KV pool of `kv_cache_bytes` (pages of 4 tokens,
// up to 64 batched tokens per step). Aborts if the test model does not load.
std::unique_ptr<FuzzServer> StartFuzzServer(int64_t kv_cache_bytes);

// What a Generate call does with a serialized request before the engine: parse, then (after
// capping max_tokens at kMaxFuzzTokens and fixing an unset seed, so inputs replay the same way)
// ValidateGenerateRequest and ToGenerationRequest. Returns FAILED_PRECONDITION for bytes that are
// not a GenerateRequest; checks that every refusal is INVALID_ARGUMENT with a message.
absl::StatusOr<GenerationRequest> PrepareRequest(const uint8_t* data, size_t size,
                                                 const ServingContext& ctx);

// Merges deltas into one response as the unary Generate reactor does; checks each delta's text
// is valid UTF-8 and nothing follows the final delta. Wait() returns the response, or the final
// delta's status where the request failed (the RPC's status then).
class ResponseSink : public RequestSink {
 public:
  explicit ResponseSink(const ServingContext& ctx) : ctx_(ctx) {}
  void OnDelta(GenerationDelta delta) override;
  absl::StatusOr<v1::GenerateResponse> Wait();

 private:
  const ServingContext& ctx_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  absl::Status status_;
  v1::GenerateResponse response_;
};

// Checks a finished response to `request`: a finish reason, at most max_tokens tokens, at least
// min_tokens when a stop ended it (unless a structured output ended there), usage and logprob
// counts that agree, strings that survive the wire (serialize, parse back), and for a structured
// output a text its grammar leads to (a whole sentence when it stopped by itself).
void CheckResponse(const v1::GenerateResponse& response, const GenerationRequest& request);

// Checks what a submitted request came to: a response that CheckResponse passes, or a failure
// only a structured output may meet once running (no token of the vocabulary can continue it,
// FAILED_PRECONDITION, e.g. where its stop ids are every token the grammar allows; or its
// automaton's limits, RESOURCE_EXHAUSTED), which says why.
void CheckOutcome(const absl::StatusOr<v1::GenerateResponse>& outcome,
                  const GenerationRequest& request);

}  // namespace attnres::fuzz
