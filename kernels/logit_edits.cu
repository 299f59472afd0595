// The GPU sampler's logit edits (penalties, logit bias, suppressed ids, token masks) and logprobs,
// the rules of models/sampler.cc (twins: models/logit_edits.cc ApplyLogitEdits and ComputeLogprob).
// Float arithmetic is written with round-to-nearest intrinsics: this library builds with
// --use_fast_math, whose division and contracted multiply-adds would differ from the host's.
#include <climits>
#include <cmath>
#include <cub/block/block_reduce.cuh>

#include "kernels/common.cuh"
#include "kernels/ops.h"

namespace attnres::kernels {
namespace {

constexpr int kEditThreads = 256;
constexpr int kMaskThreads = 256;
constexpr int kTopThreads = 256;
constexpr int kChosenThreads = 128;

__device__ float Edited(float x, const EditedRow& r, const LogitEdit& e) {
  if (e.flags & kEditBias) x = __fadd_rn(x, e.bias);
  if (e.flags & kEditSuppress) x = -INFINITY;
  if (e.flags & kEditSeen) {
    x = x > 0.0f ? __fdiv_rn(x, r.repetition) : __fmul_rn(x, r.repetition);
  }
  if (e.flags & kEditCounted) {
    x = __fsub_rn(
        x, __fadd_rn(__fmul_rn(r.frequency, static_cast<float>(e.output_count)), r.presence));
  }
  return x;
}

// One thread per edit; (row, id) pairs are unique, so no two threads touch one logit.
__global__ void __launch_bounds__(kEditThreads)
    EditKernel(float* logits, int V, const EditedRow* rows, const LogitEdit* edits, int n,
               float* raw) {
  WaitForPrevious();
  LetNextStart();
  for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) {
    const LogitEdit e = edits[i];
    const EditedRow r = rows[e.edited_row];
    float* x = logits + static_cast<size_t>(r.logit_row) * V + e.id;
    const float v = *x;
    raw[i] = v;
    *x = Edited(v, r, e);
  }
}

// Grid (blocks, masked rows): one thread per id; a warp's 32 ids share a mask word.
__global__ void __launch_bounds__(kMaskThreads)
    MaskKernel(float* logits, int V, const MaskedRow* rows, const uint64_t* words) {
  const MaskedRow m = rows[blockIdx.y];
  WaitForPrevious();
  LetNextStart();
  float* row = logits + static_cast<size_t>(m.logit_row) * V;
  const uint64_t* w = words + m.word_offset;
  for (int id = blockIdx.x * blockDim.x + threadIdx.x; id < V; id += gridDim.x * blockDim.x) {
    if (((w[id >> 6] >> (id & 63)) & 1) == 0) row[id] = -INFINITY;
  }
}

// Higher value first, then lower id (the CPU's comparator).
__device__ __forceinline__ bool Before(float a, int ia, float b, int ib) {
  return a > b || (a == b && ia < ib);
}

// One block per logprob row: each thread keeps its ids' best kMaxTopLogprobs in registers (a
// sorted list, insertion by compare-and-swap), the block merges the lists' heads top_n times
// (at least once, for the row's maximum), then sums exp(x - max) in double for the
// log-sum-exp. Writes the top list as logprobs and lse.
__global__ void __launch_bounds__(kTopThreads)
    RawLogprobKernel(const float* logits, int V, const LogprobRow* rows, LogprobOut* out,
                     double* lse) {
  constexpr int K = kMaxTopLogprobs;
  constexpr int kWarps = kTopThreads / 32;
  using Reduce = cub::BlockReduce<double, kTopThreads>;
  __shared__ typename Reduce::TempStorage tmp;
  __shared__ float warp_val[2][kWarps];
  __shared__ int warp_id[2][kWarps];
  __shared__ float top_val[K];
  __shared__ int top_id[K];
  const LogprobRow lr = rows[blockIdx.x];
  WaitForPrevious();
  LetNextStart();
  const float* x = logits + static_cast<size_t>(lr.logit_row) * V;
  float v[K];
  int id[K];
#pragma unroll
  for (int k = 0; k < K; ++k) {
    v[k] = -INFINITY;
    id[k] = INT_MAX;
  }
  for (int i = threadIdx.x; i < V; i += blockDim.x) {
    const float a = x[i];
    if (!Before(a, i, v[K - 1], id[K - 1])) continue;
    v[K - 1] = a;
    id[K - 1] = i;
#pragma unroll
    for (int k = K - 1; k > 0; --k) {
      if (Before(v[k], id[k], v[k - 1], id[k - 1])) {
        const float tv = v[k];
        const int ti = id[k];
        v[k] = v[k - 1];
        id[k] = id[k - 1];
        v[k - 1] = tv;
        id[k - 1] = ti;
      }
    }
  }
  const int rounds = min(max(lr.top_n, 1), V);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  for (int k = 0; k < rounds; ++k) {
    float bv = v[0];
    int bi = id[0];
    for (int o = 16; o > 0; o >>= 1) {
      const float ov = __shfl_xor_sync(0xffffffffu, bv, o);
      const int oi = __shfl_xor_sync(0xffffffffu, bi, o);
      if (Before(ov, oi, bv, bi)) {
        bv = ov;
        bi = oi;
      }
    }
    const int buf = k & 1;  // alternate buffers: one barrier a round
    if (lane == 0) {
      warp_val[buf][warp] = bv;
      warp_id[buf][warp] = bi;
    }
    __syncthreads();
    bv = warp_val[buf][0];
    bi = warp_id[buf][0];
    for (int w = 1; w < kWarps; ++w) {
      if (Before(warp_val[buf][w], warp_id[buf][w], bv, bi)) {
        bv = warp_val[buf][w];
        bi = warp_id[buf][w];
      }
    }
    if (id[0] == bi) {  // ids are unique: only the winner pops its head
#pragma unroll
      for (int j = 0; j < K - 1; ++j) {
        v[j] = v[j + 1];
        id[j] = id[j + 1];
      }
      v[K - 1] = -INFINITY;
      id[K - 1] = INT_MAX;
    }
    if (threadIdx.x == 0) {
      top_val[k] = bv;
      top_id[k] = bi;
    }
  }
  __syncthreads();
  const double mx = top_val[0];
  double local = 0.0;
  for (int i = threadIdx.x; i < V; i += blockDim.x) local += exp(static_cast<double>(x[i]) - mx);
  const double sum = Reduce(tmp).Sum(local);
  if (threadIdx.x == 0) {
    const double l = mx + log(sum);
    lse[blockIdx.x] = l;
    for (int k = 0; k < lr.top_n && k < V; ++k) {
      out[blockIdx.x].ids[k] = top_id[k];
      out[blockIdx.x].logprobs[k] = static_cast<float>(static_cast<double>(top_val[k]) - l);
    }
  }
}

// One block per logprob row: the sampled token's raw value (its edit's saved one when the row's
// edits touched it, else the logit, which the mask never clears for a sampled id) minus lse.
__global__ void __launch_bounds__(kChosenThreads)
    ChosenLogprobKernel(const float* logits, int V, const LogprobRow* rows,
                        const EditedRow* edited_rows, const LogitEdit* edits, const float* raw,
                        const int32_t* tokens, const double* lse, LogprobOut* out) {
  __shared__ int edit_at;
  const LogprobRow lr = rows[blockIdx.x];
  if (threadIdx.x == 0) edit_at = -1;
  WaitForPrevious();
  LetNextStart();
  __syncthreads();
  const int token = tokens[lr.logit_row];
  if (lr.edited_row >= 0) {
    const EditedRow er = edited_rows[lr.edited_row];
    for (int i = er.begin + threadIdx.x; i < er.end; i += blockDim.x) {
      if (edits[i].id == token) edit_at = i;  // one edit per id: one writer
    }
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    const float x =
        edit_at >= 0 ? raw[edit_at] : logits[static_cast<size_t>(lr.logit_row) * V + token];
    out[blockIdx.x].token = token;
    out[blockIdx.x].logprob = static_cast<float>(static_cast<double>(x) - lse[blockIdx.x]);
  }
}

}  // namespace

cudaError_t RawLogprobs(const float* logits, int V, const LogprobRow* rows, int L, LogprobOut* out,
                        double* lse, cudaStream_t stream) {
  if (L == 0) return cudaSuccess;
  if (V < 1) return cudaErrorInvalidValue;
  return LaunchPdl(RawLogprobKernel, L, kTopThreads, 0, stream, logits, V, rows, out, lse);
}

cudaError_t EditLogits(float* logits, int V, const EditedRow* rows, const LogitEdit* edits,
                       int num_edits, float* raw, const MaskedRow* masked, int num_masked,
                       const uint64_t* mask_words, cudaStream_t stream) {
  if (num_edits > 0) {
    const int blocks = std::min((num_edits + kEditThreads - 1) / kEditThreads, 4 * NumSms());
    if (cudaError_t e = LaunchPdl(EditKernel, blocks, kEditThreads, 0, stream, logits, V, rows,
                                  edits, num_edits, raw);
        e != cudaSuccess) {
      return e;
    }
  }
  if (num_masked > 0 && V > 0) {
    const int blocks =
        std::min((V + kMaskThreads - 1) / kMaskThreads, std::max(1, 4 * NumSms() / num_masked));
    return LaunchPdl(MaskKernel, dim3(blocks, num_masked), kMaskThreads, 0, stream, logits, V,
                     masked, mask_words);
  }
  return cudaSuccess;
}

cudaError_t ChosenLogprobs(const float* logits, int V, const LogprobRow* rows, int L,
                           const EditedRow* edited_rows, const LogitEdit* edits, const float* raw,
                           const int32_t* tokens, const double* lse, LogprobOut* out,
                           cudaStream_t stream) {
  if (L == 0) return cudaSuccess;
  return LaunchPdl(ChosenLogprobKernel, L, kChosenThreads, 0, stream, logits, V, rows, edited_rows,
                   edits, raw, tokens, lse, out);
}

}  // namespace attnres::kernels
