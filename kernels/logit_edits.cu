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

// A row's ids [lo, hi) summarised by one block: its best kMaxTopLogprobs (value, id) in order,
// its maximum and its sum of exp(x - maximum) in double.
struct LogprobPartial {
  float val[kMaxTopLogprobs];
  int id[kMaxTopLogprobs];
  float max;
  double sum;
};

// Rows of few logprob requests are cut into chunks of ids over many blocks (one block per row
// streamed a 128 K row through one SM: 0.35 ms on an H100); then one block per row merges.
constexpr int kMaxLogprobChunks = 64;
constexpr int kMinLogprobChunkIds = 2048;
constexpr int kLogprobBlocksPerSm = 8;  // 2048 threads: a full SM
// From this many alternatives on, a warp keeps one list (WarpMerge) instead of one per thread:
// per-thread lists that long spend most of a row in their insertions (run 34).
constexpr int kWarpListMin = 10;

// Block-wide best (value, id) of every thread's candidate (all threads get it). Alternating
// shared buffers: one barrier a call, if calls alternate `buf`.
__device__ void BlockBest(float& bv, int& bi, float (*warp_val)[kTopThreads / 32],
                          int (*warp_id)[kTopThreads / 32], int buf) {
  constexpr int kWarps = kTopThreads / 32;
  for (int o = 16; o > 0; o >>= 1) {
    const float ov = __shfl_xor_sync(0xffffffffu, bv, o);
    const int oi = __shfl_xor_sync(0xffffffffu, bi, o);
    if (Before(ov, oi, bv, bi)) {
      bv = ov;
      bi = oi;
    }
  }
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
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
}

// A warp's sorted list of 32 (value, id) entries, one per lane, best first (Before's order):
// lane i holds the i-th. Compare-exchange with the lane `j` away, keeping the better entry where
// `better` (the lower lane of a descending pair, the upper of an ascending one).
__device__ __forceinline__ void WarpExchange(float& v, int& id, int j, bool better) {
  const float ov = __shfl_xor_sync(0xffffffffu, v, j);
  const int oi = __shfl_xor_sync(0xffffffffu, id, j);
  if (better == Before(ov, oi, v, id)) {
    v = ov;
    id = oi;
  }
}

// Sorts one entry per lane across the warp, best first (a bitonic network: 15 exchanges).
__device__ __forceinline__ void WarpSort(float& v, int& id) {
  const int lane = threadIdx.x & 31;
#pragma unroll
  for (int k = 2; k <= 32; k <<= 1) {
#pragma unroll
    for (int j = k >> 1; j > 0; j >>= 1) {
      WarpExchange(v, id, j, ((lane & k) == 0) == ((lane & j) == 0));
    }
  }
}

// The warp's list (v, id) becomes the best 32 of itself and the lanes' offers (ov, oi): the
// offers sorted, reversed against the list (the better of each pair: a bitonic sequence that
// holds the best 32 of both), then merged (5 exchanges).
__device__ __forceinline__ void WarpMerge(float& v, int& id, float ov, int oi) {
  const int lane = threadIdx.x & 31;
  WarpSort(ov, oi);
  const float rv = __shfl_sync(0xffffffffu, ov, 31 - lane);
  const int ri = __shfl_sync(0xffffffffu, oi, 31 - lane);
  if (Before(rv, ri, v, id)) {
    v = rv;
    id = ri;
  }
#pragma unroll
  for (int j = 16; j > 0; j >>= 1) WarpExchange(v, id, j, (lane & j) == 0);
}

// Grid (chunks, logprob rows), chunk c covering ids [c * chunk, ...), read once: each thread
// keeps its ids' best K in registers (a sorted list, insertion by compare-and-swap; from
// kWarpListMin on, the warp's best 32 instead, one per lane; K >= every row's top_n, since the
// block's top n holds at most n of any thread's, or warp's, ids) and its running
// maximum and sum of exp(x - maximum) (fp32 exponentials summed in double, rescaled when the
// maximum moves). The block merges the lists' heads n times (n = top_n, at least 1 for the
// maximum) and sums the threads' sums rescaled to it. One chunk: writes the row's results; else
// its LogprobPartial.
template <int K>
__global__ void __launch_bounds__(kTopThreads)
    RawLogprobKernel(const float* logits, int V, const LogprobRow* rows, int chunk, LogprobOut* out,
                     double* lse, LogprobPartial* partials) {
  static_assert(K >= 1 && K <= kMaxTopLogprobs);
  using Reduce = cub::BlockReduce<double, kTopThreads>;
  __shared__ typename Reduce::TempStorage tmp;
  __shared__ float warp_val[2][kTopThreads / 32];
  __shared__ int warp_id[2][kTopThreads / 32];
  __shared__ float top_val[K];
  __shared__ int top_id[K];
  const int j = blockIdx.y, c = blockIdx.x, chunks = gridDim.x;
  const LogprobRow lr = rows[j];
  WaitForPrevious();
  LetNextStart();
  const float* x = logits + static_cast<size_t>(lr.logit_row) * V;
  const int lo = c * chunk, hi = min(V, lo + chunk);
  // Lists of up to kWarpListMin - 1 entries are each thread's own; longer ones are the warp's
  // (WarpMerge), and each thread then holds one entry of it.
  constexpr bool kWarpList = K >= kWarpListMin;
  constexpr int L = kWarpList ? 1 : K;
  float v[L];
  int id[L];
#pragma unroll
  for (int k = 0; k < L; ++k) {
    v[k] = -INFINITY;
    id[k] = INT_MAX;
  }
  float m = -INFINITY;  // this thread's maximum, and its sum of exp(x - m)
  double s = 0.0;
  auto add_exp = [&](float a) {
    if (a > m) {
      s = s * static_cast<double>(__expf(m - a)) + 1.0;
      m = a;
    } else if (a != -INFINITY) {  // a NaN propagates, as the twin's sum does
      s += static_cast<double>(__expf(a - m));
    }
  };
  auto insert = [&](float a, int i) {  // into the thread's sorted list
    if (!Before(a, i, v[L - 1], id[L - 1])) return;
    v[L - 1] = a;
    id[L - 1] = i;
#pragma unroll
    for (int k = L - 1; k > 0; --k) {
      if (Before(v[k], id[k], v[k - 1], id[k - 1])) {
        const float tv = v[k];
        const int ti = id[k];
        v[k] = v[k - 1];
        id[k] = id[k - 1];
        v[k - 1] = tv;
        id[k - 1] = ti;
      }
    }
  };
  // The warp's list: an id behind its K-th entry (tv, ti) cannot make the block's top n; the
  // lanes' ids ahead of it are merged in together, slot by slot, when any lane has one.
  float tv = -INFINITY;
  int ti = INT_MAX;
  auto offer = [&](bool ahead, float a, int i) {  // every lane of the warp calls it
    if (!__any_sync(0xffffffffu, ahead)) return;
    WarpMerge(v[0], id[0], ahead ? a : -INFINITY, ahead ? i : INT_MAX);
    tv = __shfl_sync(0xffffffffu, v[0], K - 1);
    ti = __shfl_sync(0xffffffffu, id[0], K - 1);
  };
  // 16-byte loads where rows and chunks keep 16-byte alignment (the host's chunk rule). Four
  // loops, not one body shared through a lambda: that form ran top-20 7% slower (4096 rows 1.55
  // against 1.45 ms in one call, bench/BENCHMARKS.md run 39).
  const bool vec =
      (V & 3) == 0 && (chunk & 3) == 0 && (reinterpret_cast<uintptr_t>(logits) & 15) == 0;
  if constexpr (kWarpList) {
    // Every thread runs the same steps: a warp's lanes merge together (past the chunk's end a
    // lane loads nothing).
    if (vec) {
      const float4* x4 = reinterpret_cast<const float4*>(x);
      for (int q0 = lo / 4; q0 < hi / 4; q0 += blockDim.x) {
        const int q = q0 + threadIdx.x;
        const bool in = q < hi / 4;
        const float4 f = in ? x4[q] : make_float4(-INFINITY, -INFINITY, -INFINITY, -INFINITY);
        const float a[4] = {f.x, f.y, f.z, f.w};
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          if (in) add_exp(a[e]);
          offer(in && Before(a[e], 4 * q + e, tv, ti), a[e], 4 * q + e);
        }
      }
    } else {
      for (int i0 = lo; i0 < hi; i0 += blockDim.x) {
        const int i = i0 + threadIdx.x;
        const bool in = i < hi;
        const float a = in ? x[i] : -INFINITY;
        if (in) add_exp(a);
        offer(in && Before(a, i, tv, ti), a, i);
      }
    }
  } else if (vec) {
    const float4* x4 = reinterpret_cast<const float4*>(x);
    for (int q = lo / 4 + threadIdx.x; q < hi / 4; q += blockDim.x) {
      const float4 f = x4[q];
      const float a[4] = {f.x, f.y, f.z, f.w};
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        add_exp(a[e]);
        insert(a[e], 4 * q + e);
      }
    }
  } else {
    for (int i = lo + threadIdx.x; i < hi; i += blockDim.x) {
      add_exp(x[i]);
      insert(x[i], i);
    }
  }
  const int rounds = min(max(lr.top_n, 1), hi - lo);
  for (int k = 0; k < rounds; ++k) {
    float bv = v[0];
    int bi = id[0];
    BlockBest(bv, bi, warp_val, warp_id, k & 1);
    if (id[0] == bi) {  // ids are unique: only the winner pops its head
#pragma unroll
      for (int t = 0; t < L - 1; ++t) {
        v[t] = v[t + 1];
        id[t] = id[t + 1];
      }
      v[L - 1] = -INFINITY;
      id[L - 1] = INT_MAX;
    }
    if (threadIdx.x == 0) {
      top_val[k] = bv;
      top_id[k] = bi;
    }
  }
  __syncthreads();
  const float mx = top_val[0];
  const double local =
      m == -INFINITY ? 0.0 : s * exp(static_cast<double>(m) - static_cast<double>(mx));
  const double sum = Reduce(tmp).Sum(local);
  if (threadIdx.x != 0) return;
  if (chunks == 1) {
    const double l = static_cast<double>(mx) + log(sum);
    lse[j] = l;
    for (int k = 0; k < lr.top_n && k < V; ++k) {
      out[j].ids[k] = top_id[k];
      out[j].logprobs[k] = static_cast<float>(static_cast<double>(top_val[k]) - l);
    }
    return;
  }
  LogprobPartial& p = partials[j * chunks + c];
  for (int k = 0; k < kMaxTopLogprobs; ++k) {  // the merge reads every entry
    p.val[k] = k < rounds ? top_val[k] : -INFINITY;
    p.id[k] = k < rounds ? top_id[k] : INT_MAX;
  }
  p.max = mx;
  p.sum = sum;
}

// One block per logprob row over its chunks' partials: the row's maximum and log-sum-exp (each
// chunk's sum rescaled to the row's maximum), and its top n from the chunks' lists.
__global__ void __launch_bounds__(kTopThreads)
    MergeLogprobKernel(const LogprobRow* rows, int chunks, int V, const LogprobPartial* partials,
                       LogprobOut* out, double* lse) {
  constexpr int K = kMaxTopLogprobs;
  constexpr int kPerThread = (kMaxLogprobChunks * K + kTopThreads - 1) / kTopThreads;
  __shared__ float warp_val[2][kTopThreads / 32];
  __shared__ int warp_id[2][kTopThreads / 32];
  __shared__ double row_lse;
  const int j = blockIdx.x;
  const LogprobRow lr = rows[j];
  WaitForPrevious();
  LetNextStart();
  const LogprobPartial* p = partials + j * chunks;
  if (threadIdx.x == 0) {
    float mx = -INFINITY;
    for (int c = 0; c < chunks; ++c) mx = fmaxf(mx, p[c].max);
    double sum = 0.0;
    for (int c = 0; c < chunks; ++c) {
      if (p[c].max != -INFINITY) {
        sum += p[c].sum * exp(static_cast<double>(p[c].max) - static_cast<double>(mx));
      }
    }
    row_lse = static_cast<double>(mx) + log(sum);
    lse[j] = row_lse;
  }
  // Candidate t of the row: chunk t / K's t % K-th best; thread i holds i, i + 256, ...
  bool taken[kPerThread];
#pragma unroll
  for (int u = 0; u < kPerThread; ++u) taken[u] = false;
  const int n = chunks * K;
  __syncthreads();
  const double l = row_lse;
  const int rounds = min(lr.top_n, V);
  for (int k = 0; k < rounds; ++k) {
    float bv = -INFINITY;
    int bi = INT_MAX, bu = -1;
#pragma unroll
    for (int u = 0; u < kPerThread; ++u) {
      const int t = threadIdx.x + u * kTopThreads;
      if (t >= n || taken[u]) continue;
      const float cv = p[t / K].val[t % K];
      const int ci = p[t / K].id[t % K];
      if (Before(cv, ci, bv, bi)) {
        bv = cv;
        bi = ci;
        bu = u;
      }
    }
    const int mine = bi;
    BlockBest(bv, bi, warp_val, warp_id, k & 1);
    if (bu >= 0 && mine == bi) {
#pragma unroll
      for (int u = 0; u < kPerThread; ++u) taken[u] |= u == bu;
    }
    if (threadIdx.x == 0) {
      out[j].ids[k] = bi;
      out[j].logprobs[k] = static_cast<float>(static_cast<double>(bv) - l);
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

size_t RawLogprobsTempBytes(int L) {
  return static_cast<size_t>(std::max(L, 0)) * kMaxLogprobChunks * sizeof(LogprobPartial);
}

cudaError_t RawLogprobs(const float* logits, int V, const LogprobRow* rows, int L, int max_top_n,
                        LogprobOut* out, double* lse, void* temp, size_t temp_bytes,
                        cudaStream_t stream) {
  if (L == 0) return cudaSuccess;
  if (V < 1 || max_top_n < 0 || max_top_n > kMaxTopLogprobs) return cudaErrorInvalidValue;
  // Chunks enough for kLogprobBlocksPerSm blocks per SM over all rows, of at least
  // kMinLogprobChunkIds ids, a multiple of 4 (16-byte loads).
  const int want = std::min({kMaxLogprobChunks, std::max(1, kLogprobBlocksPerSm * NumSms() / L),
                             (V + kMinLogprobChunkIds - 1) / kMinLogprobChunkIds});
  const int chunks = temp != nullptr && temp_bytes >= RawLogprobsTempBytes(L) ? want : 1;
  const int chunk = ((V + chunks - 1) / chunks + 3) / 4 * 4;
  const int used = (V + chunk - 1) / chunk;  // none empty
  auto* partials = static_cast<LogprobPartial*>(temp);
  // The smallest list that holds every row's top n.
  const int n = std::max(max_top_n, 1);
  auto* kernel = n <= 1    ? RawLogprobKernel<1>
                 : n <= 2  ? RawLogprobKernel<2>
                 : n <= 5  ? RawLogprobKernel<5>
                 : n <= 10 ? RawLogprobKernel<10>
                           : RawLogprobKernel<kMaxTopLogprobs>;
  if (cudaError_t e = LaunchPdl(kernel, dim3(used, L), kTopThreads, 0, stream, logits, V, rows,
                                chunk, out, lse, partials);
      e != cudaSuccess || used == 1) {
    return e;
  }
  return LaunchPdl(MergeLogprobKernel, L, kTopThreads, 0, stream, rows, used, V, partials, out,
                   lse);
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
