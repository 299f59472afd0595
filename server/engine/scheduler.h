// Scheduler: the continuous-batching policy. Each step it gives every running sequence its
// next tokens (one for decodes, a chunk for prefills still catching up), then admits waiting
// sequences in arrival order while the token budget, the sequence cap and the KV pages allow.
// When pages run out it preempts the most recently admitted sequence (frees its pages; it is
// recomputed later from prompt + generated tokens). Admission first takes the longest cached
// prompt prefix from the block manager. CPU-only policy; no model, no gRPC.
#pragma once

#include <deque>
#include <memory>
#include <vector>

#include "models/model_runner.h"
#include "server/engine/block_manager.h"
#include "server/engine/engine_config.h"
#include "server/engine/sequence.h"

namespace attnres {

struct ScheduledSeq {
  Sequence* seq;
  int num_tokens;  // tokens fed this step, from seq->num_computed
  bool sample;     // this chunk reaches the end of the known tokens: sample the next one
};

struct ScheduleResult {
  std::vector<ScheduledSeq> seqs;
  std::vector<Sequence*> preempted;  // moved back to waiting this step
  int num_tokens = 0;
  int num_prefill_tokens = 0;   // of num_tokens, those recomputing known tokens (not decodes)
  int prefix_query_tokens = 0;  // prompt tokens of admitted sequences looked up in the cache
  int prefix_hit_tokens = 0;    // of those, tokens whose K/V came from the cache
};

class Scheduler {
 public:
  Scheduler(const EngineConfig& config, BlockManager* blocks);

  void AddWaiting(std::unique_ptr<Sequence> seq);
  ScheduleResult Schedule();
  // Call after a step advanced seq->num_computed: publishes its newly completed full prompt
  // pages to the prefix cache.
  void OnComputed(Sequence* seq);
  // Removes a sequence (finished or cancelled) and frees its pages; returns ownership.
  std::unique_ptr<Sequence> Remove(Sequence* seq);

  int num_running() const { return static_cast<int>(running_.size()); }
  int num_waiting() const { return static_cast<int>(waiting_.size()); }
  bool idle() const { return running_.empty() && waiting_.empty(); }
  // Every live sequence, running first then waiting (for cancellation sweeps).
  std::vector<Sequence*> All() const;

 private:
  bool Preempt(ScheduleResult* result, const Sequence* keep);
  // Gives a waiting sequence its cached prefix and the pages for its first chunk under
  // `budget`; false (nothing held) when the pool is short.
  bool TryAdmit(Sequence* s, int budget, ScheduleResult* result);
  void AddToBatch(ScheduleResult* result, Sequence* s, int num_tokens);

  EngineConfig config_;
  BlockManager* blocks_;
  std::vector<std::unique_ptr<Sequence>> running_;  // in admission order
  std::deque<std::unique_ptr<Sequence>> waiting_;   // preempted ones at the front
};

// Builds the runner's batch for a schedule (page tables in CSR form, sampling entries).
StepBatch BuildStepBatch(const ScheduleResult& schedule, int page_size);

}  // namespace attnres
