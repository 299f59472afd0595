// Token sampling on the device, the same rules as models/sampler.cc SampleToken: greedy argmax
// (lowest id among maxima); else temperature, top-k, min-p, top-p and the counter-based uniform
// draw, in probability order. Rows that truncate read a stable descending sort of their logits
// (CUB segmented radix sort: ties keep id order, as the CPU's comparator does).
#include <cub/block/block_reduce.cuh>
#include <cub/block/block_scan.cuh>
#include <cub/device/device_segmented_radix_sort.cuh>

#include <climits>
#include <cmath>

#include "kernels/common.cuh"
#include "kernels/ops.h"

namespace attnres::kernels {
namespace {

constexpr int kThreads = 1024;
using Scan = cub::BlockScan<double, kThreads>;
using ReduceI = cub::BlockReduce<int, kThreads>;
using ReduceF = cub::BlockReduce<float, kThreads>;

union SampleTemp {
  typename Scan::TempStorage scan;
  typename ReduceI::TempStorage ri;
  typename ReduceF::TempStorage rf;
};

struct Probs {
  const float* keys;
  double mx, inv_t;
  __device__ double operator()(int k) const { return exp((static_cast<double>(keys[k]) - mx) * inv_t); }
};

// The first k in [lo, hi), in index order, whose inclusive cumulative probability base +
// sum_{lo..k} passes thr(sum over [lo, hi)) (> when strict, else >=); INT_MAX when none does.
// One pass of exp over the range: each thread sums a contiguous slice, a block scan gives every
// slice its prefix and the total, and only a thread whose slice passes the threshold walks it
// again (a walk that ends short, by rounding, names the next slice's first id, where the next
// thread would have crossed; past hi, INT_MAX).
template <typename Thr>
__device__ int CrossingIn(const Probs& pr, int lo, int hi, double base, const Thr& thr_of,
                          bool strict, SampleTemp& tmp, int* found) {
  const int per = (hi - lo + blockDim.x - 1) / blockDim.x;
  const int begin = min(hi, lo + static_cast<int>(threadIdx.x) * per), end = min(hi, begin + per);
  double local = 0.0;
#pragma unroll 8
  for (int k = begin; k < end; ++k) local += pr(k);
  double cum, total;
  if (threadIdx.x == 0) *found = INT_MAX;
  Scan(tmp.scan).ExclusiveSum(local, cum, total);
  __syncthreads();
  cum += base;
  const double thr = thr_of(total);
  auto passes = [&](double c) { return strict ? c > thr : c >= thr; };
  if (begin < end && !passes(cum) && passes(cum + local)) {
    int at = end < hi ? end : INT_MAX;
    for (int k = begin; k < end; ++k) {
      cum += pr(k);
      if (passes(cum)) {
        at = k;
        break;
      }
    }
    if (at != INT_MAX) atomicMin(found, at);
  }
  __syncthreads();
  const int f = *found;
  __syncthreads();
  return f;
}

// The first k in [0, n) whose cumulative probability passes fraction * (the sum over [0, n)).
__device__ int CrossingOfFraction(const Probs& pr, int n, double fraction, bool strict,
                                  SampleTemp& tmp, int* found) {
  return CrossingIn(pr, 0, n, 0.0, [&](double total) { return fraction * total; }, strict, tmp,
                    found);
}

// Lowest id among the maxima of x[0, V). Each thread takes its ids in ascending order, so a
// strict > keeps its first maximum, and the reductions break ties by id. A 16-byte aligned row
// is read as float4, kArgmaxUnroll of them in flight per thread: one 128K-entry row is a few
// round trips to L2 instead of V / blockDim.x dependent ones (60 us -> a few at batch 1).
constexpr int kArgmaxUnroll = 4;
__device__ int Argmax(const float* x, int V, int* sh_id, float* sh_val) {
  float best = -INFINITY;
  int id = INT_MAX;
  auto take = [&](float v, int k) {
    if (v > best) {
      best = v;
      id = k;
    }
  };
  int tail = 0;  // first id of the scalar part
  if ((reinterpret_cast<uintptr_t>(x) & 15) == 0) {
    const int n4 = V / 4, step = static_cast<int>(blockDim.x);
    const float4* x4 = reinterpret_cast<const float4*>(x);
    for (int i = threadIdx.x; i < n4; i += kArgmaxUnroll * step) {
      float4 v[kArgmaxUnroll];
#pragma unroll
      for (int u = 0; u < kArgmaxUnroll; ++u) {
        const int j = i + u * step;
        v[u] = j < n4 ? x4[j] : make_float4(-INFINITY, -INFINITY, -INFINITY, -INFINITY);
      }
#pragma unroll
      for (int u = 0; u < kArgmaxUnroll; ++u) {
        const int k = 4 * (i + u * step);
        take(v[u].x, k);
        take(v[u].y, k + 1);
        take(v[u].z, k + 2);
        take(v[u].w, k + 3);
      }
    }
    tail = 4 * n4;
  }
  for (int k = tail + threadIdx.x; k < V; k += blockDim.x) take(x[k], k);
  for (int o = 16; o > 0; o >>= 1) {
    const float ob = __shfl_xor_sync(0xffffffffu, best, o);
    const int oi = __shfl_xor_sync(0xffffffffu, id, o);
    if (ob > best || (ob == best && oi < id)) {
      best = ob;
      id = oi;
    }
  }
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  if (lane == 0) {
    sh_val[warp] = best;
    sh_id[warp] = id;
  }
  __syncthreads();
  if (threadIdx.x == 0) {
    for (int w = 1; w < static_cast<int>(blockDim.x >> 5); ++w) {
      if (sh_val[w] > sh_val[0] || (sh_val[w] == sh_val[0] && sh_id[w] < sh_id[0])) {
        sh_val[0] = sh_val[w];
        sh_id[0] = sh_id[w];
      }
    }
  }
  __syncthreads();
  return sh_id[0] == INT_MAX ? 0 : sh_id[0];  // (sh_val[0], sh_id[0]): the raw best, INT_MAX: none
}

// The wide form (few rows): each row is cut into S chunks of `chunk` ids (a multiple of 4, so
// float4 alignment carries over), one block each, and a row's rule finishes in SampleRowsKernel
// from the chunks' results. At batch 1 the one-block form streamed a 128K-entry row through one
// SM (greedy ~13 us, temperature ~55 us of double exps).
constexpr int kChunkThreads = 256;
constexpr int kMaxChunks = 64;
// Chunk lengths: short ones cost a block each for little work; long ones make the walk of the
// draw's chunk long (64 rows at a temperature: 4 chunks of 32K ids 1.504-1.514 ms per 1B step,
// 16 of 8K 1.480-1.484; bench/BENCHMARKS.md run 24).
constexpr int kMinChunkIds = 1024, kMaxChunkIds = 8192;
struct ChunkBest {
  float val;  // the chunk's maximum (-inf when it has none)
  int id;     // its lowest id (INT_MAX when none)
};
struct Wide {
  int chunks = 0;  // S; 0: the one-block form
  int chunk = 0;
  ChunkBest* best = nullptr;  // [R, S]
  double* sums = nullptr;     // [R, S]: sum of exp((x - the chunk's max) / t) over each chunk
};

// Rows' best in chunk order: the larger value, then the lower id (every thread, no barrier).
__device__ ChunkBest RowBest(const ChunkBest* b, int S) {
  ChunkBest r = b[0];
  for (int c = 1; c < S; ++c) {
    const ChunkBest o = b[c];
    if (o.val > r.val || (o.val == r.val && o.id < r.id)) r = o;
  }
  return r;
}

// Grid (S, R): chunk c of row r, for the rows that read their own logits (not sorted): its best
// and, at a temperature, its sum of exp((x - max_c) / t) in double (SampleRowsKernel rescales
// the sums to the row's max).
__global__ void __launch_bounds__(kChunkThreads) ChunkKernel(const float* logits,
                                                             const SampleParams* params, int V,
                                                             Wide w) {
  using Reduce = cub::BlockReduce<double, kChunkThreads>;
  __shared__ typename Reduce::TempStorage tmp;
  __shared__ int sh_id[32];
  __shared__ float sh_val[32];
  WaitForPrevious();
  LetNextStart();
  const int r = blockIdx.y, c = blockIdx.x, S = gridDim.x;
  const SampleParams p = params[r];
  if (NeedsSortedLogits(p, V)) return;
  const int lo = c * w.chunk, hi = min(V, lo + w.chunk);
  const float* row = logits + static_cast<size_t>(r) * V;
  Argmax(row + lo, hi - lo, sh_id, sh_val);
  const float mx = sh_val[0];
  if (threadIdx.x == 0) w.best[r * S + c] = {mx, sh_id[0] == INT_MAX ? INT_MAX : lo + sh_id[0]};
  if (p.temperature == 0.0f) return;
  const Probs pr{row, static_cast<double>(mx), 1.0 / p.temperature};
  double local = 0.0;
  for (int k = lo + threadIdx.x; k < hi; k += blockDim.x) local += pr(k);
  const double total = Reduce(tmp).Sum(local);
  if (threadIdx.x == 0) w.sums[r * S + c] = total;
}

__global__ void __launch_bounds__(kThreads) SampleRowsKernel(
    const float* logits, const float* sorted_logits, const int32_t* sorted_ids,
    const SampleParams* params, int V, int32_t* tokens, Wide w) {
  __shared__ SampleTemp tmp;
  WaitForPrevious();
  LetNextStart();
  __shared__ int sh_id[32];
  __shared__ float sh_val[32];
  __shared__ int found;
  const int r = blockIdx.x;
  const SampleParams p = params[r];
  const float* row = logits + static_cast<size_t>(r) * V;
  const bool sorted = NeedsSortedLogits(p, V);
  if (w.chunks > 0 && !sorted) {
    const int S = w.chunks;
    const ChunkBest b = RowBest(w.best + r * S, S);
    if (p.temperature == 0.0f) {
      if (threadIdx.x == 0) tokens[r] = b.id == INT_MAX ? 0 : b.id;
      return;
    }
    // The chunk where the cumulative sum passes u * total (chunk order, each chunk's sum
    // rescaled from its max to the row's), then a walk of it.
    __shared__ double base, thr;
    __shared__ int at;
    const double inv_t = 1.0 / p.temperature;
    if (threadIdx.x == 0) {
      auto scaled = [&](int c) {  // chunk c's sum relative to the row's max
        const ChunkBest cb = w.best[r * S + c];
        return cb.id == INT_MAX
                   ? 0.0
                   : w.sums[r * S + c] * exp((static_cast<double>(cb.val) - b.val) * inv_t);
      };
      double total = 0.0;
      for (int c = 0; c < S; ++c) total += scaled(c);
      thr = SampleUniformBits(p.seed, p.index) * total;
      double cum = 0.0;
      at = S;
      for (int c = 0; c < S; ++c) {
        const double sc = scaled(c);
        if (cum + sc > thr) {
          at = c;
          break;
        }
        cum += sc;
      }
      base = cum;
    }
    __syncthreads();
    int c = V - 1;  // none passes (rounding): the last id, as the one-block form
    if (at < S) {
      const Probs pr{row, static_cast<double>(b.val), inv_t};
      const int lo = at * w.chunk, hi = min(V, lo + w.chunk);
      const double t = thr;
      c = CrossingIn(pr, lo, hi, base, [&](double) { return t; }, true, tmp, &found);
      if (c == INT_MAX) c = hi < V ? hi : V - 1;  // the walk ended short, by rounding
    }
    if (threadIdx.x == 0) tokens[r] = c;
    return;
  }
  if (p.temperature == 0.0f) {
    const int id = Argmax(row, V, sh_id, sh_val);
    if (threadIdx.x == 0) tokens[r] = id;
    return;
  }
  Probs pr;
  pr.inv_t = 1.0 / p.temperature;
  int n = V;
  if (sorted) {
    pr.keys = sorted_logits + static_cast<size_t>(r) * V;
    pr.mx = pr.keys[0];
    if (p.top_k > 0 && p.top_k < V) n = p.top_k;
    int keep = n;
    if (p.min_p > 0.0f) {  // prob(0) == 1, so the floor is min_p itself
      int c = 0;
      for (int k = threadIdx.x; k < n; k += blockDim.x) c += pr(k) >= p.min_p ? 1 : 0;
      c = ReduceI(tmp.ri).Sum(c);
      if (threadIdx.x == 0) found = max(1, c);
      __syncthreads();
      keep = found;
      __syncthreads();
    }
    if (p.top_p < 1.0f) {
      const int c = CrossingOfFraction(pr, keep, p.top_p, false, tmp, &found);
      if (c != INT_MAX) keep = c + 1;
    }
    n = keep;
  } else {
    pr.keys = row;
    const int id = Argmax(row, V, sh_id, sh_val);
    pr.mx = row[id];
  }
  int c = CrossingOfFraction(pr, n, SampleUniformBits(p.seed, p.index), true, tmp, &found);
  if (c == INT_MAX) c = n - 1;
  if (threadIdx.x == 0) tokens[r] = sorted ? sorted_ids[static_cast<size_t>(r) * V + c] : c;
}

__global__ void IotaRowsKernel(int32_t* ids, int R, int V) {
  const size_t n = static_cast<size_t>(R) * V;
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    ids[i] = static_cast<int32_t>(i % V);
  }
}

size_t CubBytes(int rows, int V) {
  size_t bytes = 0;
  cub::DeviceSegmentedRadixSort::SortPairsDescending(
      nullptr, bytes, static_cast<const float*>(nullptr), static_cast<float*>(nullptr),
      static_cast<const int32_t*>(nullptr), static_cast<int32_t*>(nullptr),
      static_cast<int64_t>(rows) * V, rows, static_cast<const int32_t*>(nullptr),
      static_cast<const int32_t*>(nullptr));
  return (bytes + 255) / 256 * 256;
}

}  // namespace

size_t SortRowsTempBytes(int max_rows, int V) {
  return CubBytes(max_rows, V) + static_cast<size_t>(max_rows) * V * sizeof(int32_t);
}

cudaError_t SortRowsDescending(const float* logits, int R, int V, const int32_t* row_offsets,
                               float* sorted_logits, int32_t* sorted_ids, void* temp,
                               size_t temp_bytes, cudaStream_t stream) {
  if (R == 0) return cudaSuccess;
  size_t cub_bytes = CubBytes(R, V);
  if (temp_bytes < cub_bytes + static_cast<size_t>(R) * V * sizeof(int32_t)) {
    return cudaErrorInvalidValue;
  }
  int32_t* iota = reinterpret_cast<int32_t*>(static_cast<char*>(temp) + cub_bytes);
  IotaRowsKernel<<<264, 256, 0, stream>>>(iota, R, V);
  if (auto e = cudaGetLastError(); e != cudaSuccess) return e;
  return cub::DeviceSegmentedRadixSort::SortPairsDescending(
      temp, cub_bytes, logits, sorted_logits, iota, sorted_ids, static_cast<int64_t>(R) * V, R,
      row_offsets, row_offsets + 1, 0, sizeof(float) * 8, stream);
}

size_t SampleRowsTempBytes(int max_rows) {
  return static_cast<size_t>(std::max(max_rows, 0)) * kMaxChunks *
         (sizeof(ChunkBest) + sizeof(double));
}

cudaError_t SampleRows(const float* logits, const float* sorted_logits, const int32_t* sorted_ids,
                       const SampleParams* params, int R, int V, int32_t* tokens, void* temp,
                       size_t temp_bytes, cudaStream_t stream) {
  if (R == 0) return cudaSuccess;
  // Up to one row per SM: chunks enough for two blocks per SM over all rows, of at least
  // kMinChunkIds and at most kMaxChunkIds ids (the walk covers one chunk).
  Wide w;
  const int by_sms = 2 * NumSms() / R;
  const int want = by_sms < 2 ? 1
                              : std::min({kMaxChunks,
                                          std::max(by_sms, (V + kMaxChunkIds - 1) / kMaxChunkIds),
                                          (V + kMinChunkIds - 1) / kMinChunkIds});
  if (temp && want > 1 && temp_bytes >= SampleRowsTempBytes(R)) {
    w.chunk = ((V + want - 1) / want + 3) / 4 * 4;
    w.chunks = (V + w.chunk - 1) / w.chunk;
    w.best = static_cast<ChunkBest*>(temp);
    w.sums = reinterpret_cast<double*>(w.best + static_cast<size_t>(R) * kMaxChunks);
    if (cudaError_t e = LaunchPdl(ChunkKernel, dim3(w.chunks, R), kChunkThreads, 0, stream,
                                  logits, params, V, w);
        e != cudaSuccess) {
      return e;
    }
  }
  return LaunchPdl(SampleRowsKernel, R, kThreads, 0, stream, logits, sorted_logits, sorted_ids,
                   params, V, tokens, w);
}

}  // namespace attnres::kernels
