// Fuzz target: continuous batching must not change what any request gets. Input: up to 8
// length-prefixed serialized GenerateRequests (a length byte, then that many bytes). Each valid
// request first runs alone; then all run at once on the same engine, whose KV pool of 48 pages of
// 4 tokens is small enough that they share steps, hit the prefix cache and preempt each other.
// Every request must be refused both times or neither, fail the same way both times or neither,
// and get the same tokens, text, finish and stop reason and logprobs both times (the CPU forward is
// batch-invariant and sampling is keyed by seed and token index).
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "google/protobuf/util/message_differencer.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/fuzz/fuzz_server.h"

namespace {

constexpr size_t kMaxRequests = 8;
// 48 pages x 4 tokens x 5 layers x (K + V) x kv_dim 32 x fp32.
constexpr int64_t kPoolBytes = int64_t{48} * 4 * 5 * 2 * 32 * 4;

// Submits every request at once; nullopt for those the engine refuses.
using Outcome = absl::StatusOr<attnres::v1::GenerateResponse>;

std::vector<std::optional<Outcome>> RunTogether(
    const attnres::fuzz::FuzzServer& server,
    const std::vector<attnres::GenerationRequest>& requests) {
  std::vector<std::shared_ptr<attnres::fuzz::ResponseSink>> sinks;
  for (const attnres::GenerationRequest& r : requests) {
    auto sink = std::make_shared<attnres::fuzz::ResponseSink>(server.ctx());
    auto handle = server.engine->Submit(r, sink);
    if (!handle.ok()) {
      FUZZ_CHECK(handle.status().code() == absl::StatusCode::kInvalidArgument,
                 "a refusal of a request that could never fit is INVALID_ARGUMENT");
      sink = nullptr;
    }
    sinks.push_back(std::move(sink));
  }
  std::vector<std::optional<Outcome>> out;
  for (const auto& sink : sinks) {
    out.push_back(sink ? std::optional(sink->Wait()) : std::nullopt);
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace attnres;
  // Never destroyed: the engine thread lives for the whole fuzzing process.
  static const fuzz::FuzzServer* server = fuzz::StartFuzzServer(kPoolBytes).release();
  std::vector<GenerationRequest> requests;
  while (size > 0 && requests.size() < kMaxRequests) {
    const size_t n = std::min<size_t>(data[0], size - 1);
    auto request = fuzz::PrepareRequest(data + 1, n, server->ctx());
    data += 1 + n;
    size -= 1 + n;
    if (request.ok()) requests.push_back(std::move(*request));
  }
  if (requests.empty()) return 0;

  std::vector<std::optional<Outcome>> solo;
  for (const GenerationRequest& r : requests) solo.push_back(RunTogether(*server, {r})[0]);
  const auto together = RunTogether(*server, requests);
  for (size_t i = 0; i < requests.size(); ++i) {
    FUZZ_CHECK(solo[i].has_value() == together[i].has_value(),
               "a request is refused alone exactly when it is refused beside others");
    if (!solo[i]) continue;
    fuzz::CheckOutcome(*together[i], requests[i]);
    FUZZ_CHECK(solo[i]->status() == together[i]->status(),
               "a request fails alone exactly as it fails beside others");
    if (!solo[i]->ok()) continue;
    v1::GenerateResponse a = **solo[i], b = **together[i];
    // Prefix cache hits differ between the runs by design; everything else must not.
    a.mutable_usage()->clear_cached_prompt_tokens();
    b.mutable_usage()->clear_cached_prompt_tokens();
    FUZZ_CHECK(google::protobuf::util::MessageDifferencer::Equals(a, b),
               "a request's response is the same alone and batched with others");
  }
  FUZZ_CHECK(server->engine->healthy(), "the engine stays healthy");
  return 0;
}
