// EngineObserver: what the engine reports for metrics, as plain numbers. The engine calls it;
// implementations (server/metrics: Prometheus) turn it into exposition. It keeps metrics out
// of the engine's logic: the engine runs and is tested with no observer at all.
#pragma once

#include <cstdint>

#include "absl/status/status.h"
#include "server/engine/request.h"

namespace attnres {

// One engine step (schedule -> execute -> update).
struct StepStats {
  int num_seqs = 0;              // sequences in the batch
  int num_tokens = 0;            // tokens in the batch (prefill chunks + decodes)
  int num_prefill_tokens = 0;    // of those, prompt (or recompute) tokens
  int num_generated_tokens = 0;  // tokens sampled
  int num_preempted = 0;         // sequences preempted while scheduling it
  int prefix_query_tokens = 0;   // prompt tokens of sequences admitted in it
  int prefix_hit_tokens = 0;     // of those, served from the prefix cache
  double duration_s = 0;         // schedule + execute + update + emit
};

// The engine's state after each loop iteration (also when no step ran, e.g. after a sweep of
// cancelled requests), so gauges return to idle values.
struct EngineState {
  int num_running = 0;
  int num_waiting = 0;        // in the scheduler's queue plus not yet picked up
  int64_t kv_pages_used = 0;  // referenced by a sequence (free cached pages not counted)
  int64_t kv_pages_total = 0;
  int64_t kv_pages_cached = 0;  // published in the prefix cache (referenced or not)
};

// One finished request (any reason, also failures).
struct RequestStats {
  FinishReason finish_reason = FinishReason::kNone;
  absl::StatusCode code = absl::StatusCode::kOk;
  int prompt_tokens = 0;
  int completion_tokens = 0;
  int cached_prompt_tokens = 0;
  int num_preemptions = 0;
  double queue_s = -1;  // arrival -> first scheduled; -1 if never scheduled
  double ttft_s = -1;   // arrival -> first token; -1 if none
  double e2e_s = 0;     // arrival -> finish
};

// Calls come from the engine thread, except OnRejected (the submitting thread):
// implementations must be thread-safe and must not block.
class EngineObserver {
 public:
  virtual ~EngineObserver() = default;
  virtual void OnStep(const StepStats& step) {}
  virtual void OnState(const EngineState& state) {}
  virtual void OnFirstToken(double ttft_s) {}
  virtual void OnInterTokenLatency(double seconds) {}
  virtual void OnRequestFinished(const RequestStats& request) {}
  // Submit refused a request (INVALID_ARGUMENT, RESOURCE_EXHAUSTED, UNAVAILABLE).
  virtual void OnRejected(absl::StatusCode code) {}
};

}  // namespace attnres
