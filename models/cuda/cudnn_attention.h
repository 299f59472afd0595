// Prefill attention through cuDNN's fused flash-attention engine (the backend API of cuDNN 9,
// no frontend): causal attention of one sequence's chunk of s_q query rows over its s_kv keys
// (bottom-right aligned: chunk row i sees keys [0, s_kv - s_q + i], the rows before the chunk
// being a cached prefix), bf16 in and out, fp32 scores and softmax, P rounded to bf16 before P*V
// (as kernels/paged_attention.cu does). K and V are contiguous: the caller gathers them from the
// pages (kernels::GatherKv) because cuDNN 9.14 runs paged K/V only on its slower pre-Hopper
// engine.
//
// cuDNN plans have fixed shapes (its SDPA engines refuse dynamic ones), so a call runs the plan
// of (QueryBucket(s_q), KeyBucket(s_kv)), with a padding mask for the true lengths. A plan takes
// ~45 ms to build, ~0.5-1 s for the process's first (cuDNN compiles its kernels at run time),
// and is cached. Run builds a missing plan on the spot; a caller that must not stall asks
// ReadyOrQueue first, which hands missing plans to a background thread (with its own cuDNN
// handle) and takes another path until they are ready. Without cuDNN at build time Create
// returns Unavailable.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <thread>
#include <utility>

#include "absl/status/statusor.h"

namespace attnres::cuda {

class CudnnAttention {
 public:
  // Query rows round up to 256; keys too up to 4096, then to 1024 (a long prompt's chunks meet
  // a third of the plans, for at most 1023 masked keys on top of over 4096).
  static constexpr int kBucket = 256;
  static int QueryBucket(int n) { return (n + kBucket - 1) / kBucket * kBucket; }
  static int KeyBucket(int n) {
    const int step = n <= 4096 ? kBucket : 1024;
    return (n + step - 1) / step * step;
  }
  // Whether this build links cuDNN (else Create is always Unavailable).
  static bool Built();

  // H query heads and KV heads of head_dim hd (H % KV == 0), scores scaled by `scale`.
  static absl::StatusOr<std::unique_ptr<CudnnAttention>> Create(int H, int KV, int hd,
                                                                float scale);
  ~CudnnAttention();

  struct Chunk {
    const __nv_bfloat16* q = nullptr;  // [QueryBucket(s_q), H*hd]: rows past s_q read, masked
    const __nv_bfloat16* k = nullptr;  // [KeyBucket(s_kv), KV*hd]: rows past s_kv are masked
    const __nv_bfloat16* v = nullptr;  // [KeyBucket(s_kv), KV*hd]
    __nv_bfloat16* out = nullptr;      // [QueryBucket(s_q), H*hd]: rows past s_q may be written
    // Device int32: s_q at lens[0], s_kv at lens[4] (16-byte aligned scalars).
    const int32_t* lens = nullptr;
    int s_q = 0, s_kv = 0;  // 1 <= s_q <= s_kv
  };
  // Runs the chunk through its plan, building the plan first (blocking) if it is not cached.
  absl::Status Run(const Chunk& chunk, cudaStream_t stream);
  // Builds (and caches) the plan Run uses for these lengths now, e.g. at start-up.
  absl::Status Prepare(int s_q, int s_kv);
  // Whether Run finds the plan for these lengths cached. If not, it is queued for the
  // background builder (once; a plan that fails to build there stays not ready, after one line
  // on stderr).
  bool ReadyOrQueue(int s_q, int s_kv);
  // Blocks until the background builder has nothing queued or in progress.
  void WaitForQueued();
  size_t cached_plans() const;

 private:
  struct Plan;
  using Key = std::pair<int, int>;  // (QueryBucket(s_q), KeyBucket(s_kv))
  CudnnAttention() = default;
  static Key KeyFor(int s_q, int s_kv) { return {QueryBucket(s_q), KeyBucket(s_kv)}; }
  // The plan of a key, built with `handle` (a cudnnHandle_t no other thread uses meanwhile).
  absl::StatusOr<std::shared_ptr<Plan>> Build(void* handle, Key key) const;
  // The cached plan of a key, building it with handle_ first if it is missing.
  absl::StatusOr<std::shared_ptr<Plan>> PlanFor(Key key);
  void Insert(Key key, std::shared_ptr<Plan> plan);  // under mu_; evicts past the cap
  absl::Status EnsureWorkspace(int64_t bytes);        // calling thread only
  void BuilderLoop();

  void* handle_ = nullptr;  // cudnnHandle_t of the calling thread (Run, Prepare)
  int device_ = 0;
  int H_ = 0, KV_ = 0, hd_ = 0;
  float scale_ = 1.0f;
  void* workspace_ = nullptr;  // grown by Run to the largest plan's need
  size_t workspace_bytes_ = 0;

  // Shared with the builder thread. Plans are shared_ptr so that one evicted while Run
  // executes it stays alive until Run is done.
  mutable std::mutex mu_;
  std::condition_variable wake_;  // builder: queue_ non-empty or stop_; waiters: idle
  std::map<Key, std::shared_ptr<Plan>> plans_;
  std::deque<Key> queue_;
  std::set<Key> pending_or_failed_;  // queued, building, or failed: not queued again
  bool building_ = false, stop_ = false;
  void* builder_handle_ = nullptr;  // cudnnHandle_t used only by builder_
  std::thread builder_;             // started by the first ReadyOrQueue miss
};

}  // namespace attnres::cuda
