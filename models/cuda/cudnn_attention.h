// Prefill attention through cuDNN's fused flash-attention engine (the backend API of cuDNN 9,
// no frontend): causal attention of one sequence's chunk of s_q query rows over its s_kv keys
// (bottom-right aligned: chunk row i sees keys [0, s_kv - s_q + i], the rows before the chunk
// being a cached prefix), bf16 in and out, fp32 scores and softmax, P rounded to bf16 before P*V
// (as kernels/paged_attention.cu does). K and V are contiguous: the caller gathers them from the
// pages (kernels::GatherKv) because cuDNN 9.14 runs paged K/V only on its slower pre-Hopper
// engine.
//
// cuDNN plans have fixed shapes (its SDPA engines refuse dynamic ones), so a call runs the plan
// of (QueryBucket(s_q), KeyBucket(s_kv)), with a padding mask for the true lengths. A plan is
// built on first use and cached: ~45 ms, and ~0.5-1 s for the process's first (cuDNN compiles
// its kernels at run time). Without cuDNN at build time Create returns Unavailable.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>
#include <map>
#include <memory>
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
  absl::Status Run(const Chunk& chunk, cudaStream_t stream);
  // Builds (and caches) the plan Run uses for these lengths, e.g. at start-up.
  absl::Status Prepare(int s_q, int s_kv);
  size_t cached_plans() const { return plans_.size(); }

 private:
  struct Plan;
  CudnnAttention() = default;
  absl::StatusOr<Plan*> PlanFor(int s_q, int s_kv);

  void* handle_ = nullptr;  // cudnnHandle_t
  int H_ = 0, KV_ = 0, hd_ = 0;
  float scale_ = 1.0f;
  std::map<std::pair<int, int>, std::unique_ptr<Plan>> plans_;  // by (bucketed s_q, s_kv)
  void* workspace_ = nullptr;
  size_t workspace_bytes_ = 0;
};

}  // namespace attnres::cuda
