// The staged residual boundary for prefill-sized row counts: ops.h ResidualBoundary in one-phase
// form (prefix += delta, the AttnRes mix over bank + x in fp32, the snapshot or the new prefix,
// the RMSNorm; or, without a mix, the standard add + norm) with one block per row whose sources
// (bank slots, prefix, delta) are bulk-copied into shared memory at the start, each on its own
// mbarrier.
//
// Why: the register form (attn_res.cu, 4 chunks per thread, bank groups of 2) holds at most one
// group per row in registers, so each group is a round trip and the bank streams at 67-76% of
// copy (bench/BENCHMARKS.md run 23). Here a row's whole bank is in flight at once, bounded by
// shared memory, and the dots of slot j run as soon as slot j lands. All scores are known after
// one block reduction, so the mix is a plain softmax (no online rescaling) and the row takes two
// reductions whatever the bank size, against one per group. At T = 4096, d = 4096 (ncu): the
// standard add + norm 35.5 -> 32.8 us (96% of copy), 8 slots 116.1 -> 109.0 us (86%), faster at
// every bank size but 2 (bench/BENCHMARKS.md run 26).
//
// Prefill's two-phase mixing runs here by default (ATTNRES.md section 5; ops.h): a snapshot
// boundary that also summarizes the completed bank for the block's later mixes (phase 1) has the
// bank's rows staged already, so it scores every later query against them and x in one more
// reduction round per 4 queries and writes each query's online-softmax state from shared memory:
// no bank row is read twice. (Its later mixes then read one fp32 summary instead of the bank:
// attn_res.cu's many-row forms.)
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "kernels/attn_res_staged.h"
#include "kernels/boundary_row.cuh"
#include "kernels/bulk_copy.cuh"
#include "kernels/common.cuh"

namespace attnres::kernels {
namespace {

constexpr int kMaxStagedSlots = 8;          // bank slots mixed (instances 0..8; 0: no mix)
constexpr int kStagedThreads = 256;         // at most; d <= 4096: 2 chunks of 8 per thread
constexpr int kStagedMaxSmem = 112 * 1024;  // a row's staged sources: two blocks per SM at least
constexpr int kMaxStagedQueries = 8;        // phase 1: the later mixes of a block (8B: 7)
constexpr int kPhase1MaxVpt = 2;            // phase 1: 2 chunks a thread, so d <= 4096
constexpr int kPhase1Batch = 4;             // phase 1: queries scored per reduction round

static_assert(kMaxStagedSlots + 2 <= kRowSumPad);  // the dots, x's dot and sum(x^2) in one RowSum

// Phase 1 over the staged row: for each later mix q (summary_u row q), the online-softmax state
// over the kNb slots, then x (the slot this boundary completes the bank with), unnormalized as
// phase 2 merges it: max m, sum l, and sum_j exp(s_j - m) v_j into summary_h[q, t]. src_s:
// [kNb + 1][d] bf16 in shared memory, the slots then x (each thread's chunks of x stored before
// the boundary's RowSum, whose barriers publish them to the threads that read them here).
// Scores of kPhase1Batch queries per round: per-warp sums into part ([warps + 1][kPhase1Batch *
// (kNb + 1)] floats, the last row the totals), one barrier, totals, one barrier; then the
// round's weighted sums in one pass over the sources. Each thread takes 4 columns at a time, so
// a warp's fp32 query loads and summary stores are 512 contiguous bytes (with 8 columns a thread
// each access covered 1 KiB at half density: ncu put an H200's L1 at 78% busy and its DRAM at
// 43%; an H100 now at 60% and 65%, bench/BENCHMARKS.md run 42). The chunk loops are not unrolled:
// nothing indexed by chunk lives in registers, so phase 1 adds few of them to the boundary it
// follows.
template <int kNb>
__device__ __forceinline__ void StagedSummaries(const ResidualBoundaryArgs& a, int t, int record,
                                                const bf16* src_s,
                                                const float (&inv)[kNb > 0 ? kNb : 1], float sq_x,
                                                float* part) {
  constexpr int kSrc = kNb + 1, kVals = kPhase1Batch * kSrc;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, warps = blockDim.x >> 5;
  const int d = a.d;
  const float r_x = rsqrtf(sq_x / d + a.eps);
  float* totals = part + warps * kVals;
  for (int q0 = 0; q0 < a.summary_queries; q0 += kPhase1Batch) {
    const int nq = min(kPhase1Batch, a.summary_queries - q0);
    const float* u = a.summary_u + static_cast<size_t>(q0) * d;
    float red[kPhase1Batch][kSrc];
#pragma unroll
    for (int i = 0; i < kPhase1Batch; ++i)
#pragma unroll
      for (int j = 0; j < kSrc; ++j) red[i][j] = 0.0f;
#pragma unroll 1
    for (int col = threadIdx.x * 4; col < d; col += blockDim.x * 4) {
      float uq[kPhase1Batch][4], f[4];
#pragma unroll
      for (int i = 0; i < kPhase1Batch; ++i) {
        const float4 q = i < nq ? __ldg(reinterpret_cast<const float4*>(u + i * d + col))
                                : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
        uq[i][0] = q.x;
        uq[i][1] = q.y;
        uq[i][2] = q.z;
        uq[i][3] = q.w;
      }
#pragma unroll
      for (int j = 0; j < kSrc; ++j) {
        Bf16x4ToF32(*reinterpret_cast<const uint2*>(src_s + static_cast<size_t>(j) * d + col), f);
#pragma unroll
        for (int i = 0; i < kPhase1Batch; ++i)
#pragma unroll
          for (int e = 0; e < 4; ++e) red[i][j] += uq[i][e] * f[e];
      }
    }
#pragma unroll
    for (int i = 0; i < kPhase1Batch; ++i) {
#pragma unroll
      for (int j = 0; j < kSrc; ++j) {
        const float s = WarpSum(red[i][j]);
        if (lane == 0) part[warp * kVals + i * kSrc + j] = s;
      }
    }
    __syncthreads();  // also: the previous round's totals are read (they precede this barrier)
    for (int i = threadIdx.x; i < kVals; i += blockDim.x) {
      float s = 0.0f;
      for (int w = 0; w < warps; ++w) s += part[w * kVals + i];
      totals[i] = s;
    }
    __syncthreads();
    // Each query's softmax over the sources (every thread, from the totals).
    float p[kPhase1Batch][kSrc];
#pragma unroll
    for (int i = 0; i < kPhase1Batch; ++i) {
      float sc[kSrc], m = -INFINITY, l = 0.0f;
#pragma unroll
      for (int j = 0; j < kSrc; ++j) {
        sc[j] = totals[i * kSrc + j] * (j < kNb ? inv[j < kNb ? j : 0] : r_x);
        m = fmaxf(m, sc[j]);
      }
#pragma unroll
      for (int j = 0; j < kSrc; ++j) {
        p[i][j] = __expf(sc[j] - m);
        l += p[i][j];
      }
      if (threadIdx.x == 0 && i < nq) {
        const size_t at = static_cast<size_t>(q0 + i) * a.T + t;
        a.summary_ml[at] = make_float2(m, l);
        if (record >= 0) {
          float* scores = a.summary_scores + at * a.summary_stride;
#pragma unroll
          for (int j = 0; j < kSrc; ++j) scores[j] = sc[j];
        }
      }
    }
    float* dst = a.summary_h + (static_cast<size_t>(q0) * a.T + t) * d;
    const size_t query_stride = static_cast<size_t>(a.T) * d;
#pragma unroll 1
    for (int col = threadIdx.x * 4; col < d; col += blockDim.x * 4) {
      float h[kPhase1Batch][4], f[4];
#pragma unroll
      for (int i = 0; i < kPhase1Batch; ++i)
#pragma unroll
        for (int e = 0; e < 4; ++e) h[i][e] = 0.0f;
#pragma unroll
      for (int j = 0; j < kSrc; ++j) {
        Bf16x4ToF32(*reinterpret_cast<const uint2*>(src_s + static_cast<size_t>(j) * d + col), f);
#pragma unroll
        for (int i = 0; i < kPhase1Batch; ++i)
#pragma unroll
          for (int e = 0; e < 4; ++e) h[i][e] += p[i][j] * f[e];
      }
      // Streaming stores: T rows of summaries pass through L2 long before phase 2 reads them,
      // and should not evict the queries every row reads.
#pragma unroll
      for (int i = 0; i < kPhase1Batch; ++i) {
        if (i >= nq) break;
        __stcs(reinterpret_cast<float4*>(dst + i * query_stride + col),
               make_float4(h[i][0], h[i][1], h[i][2], h[i][3]));
      }
    }
  }
}

// kNb bank slots mixed (0: no mix, h = x); VPT chunks of 8 values per thread. Dynamic shared
// memory: [kNb + 2][d] bf16, the slots, then prefix and delta (each present one). With
// summary_queries, phase 1 follows (StagedSummaries); phase1_only: phase 1 alone, x read from
// `prefix` (the slot the snapshot wrote), nothing else written. Three blocks per SM where shared
// memory allows (up to 7 slots at d = 4096): 80 registers, no spills; the phase-1 boundary ran
// as fast as with two (bench/BENCHMARKS.md run 42).
template <int kNb, int VPT>
__global__ void __launch_bounds__(kStagedThreads, 3)
    StagedBoundaryKernel(const ResidualBoundaryArgs a) {
  constexpr bool kMix = kNb > 0;
  constexpr int kSlots = kMix ? kNb : 1;  // array extents
  extern __shared__ __align__(128) uint8_t staged[];
  __shared__ uint64_t bars[kNb + 2];  // slot j, then prefix, delta
  __shared__ __align__(16) float scratch[(kStagedThreads / 32 + 1) * kRowSumPad];
  __shared__ float
      part[VPT <= kPhase1MaxVpt ? (kStagedThreads / 32 + 1) * kPhase1Batch * (kNb + 1) : 1];
  const int k = blockIdx.x;
  const int t = a.rows ? __ldg(a.rows + k) : k;
  const int d = a.d;
  const size_t row = static_cast<size_t>(t) * d;
  const bf16* slot_s = reinterpret_cast<const bf16*>(staged);  // [kNb][d]
  const bf16* prefix_s = slot_s + static_cast<size_t>(kNb) * d;
  const bf16* delta_s = prefix_s + d;
  const bool has_delta = a.delta != nullptr;
  const bool has_prefix = !has_delta || !a.prefix_empty;
  const uint32_t row_bytes = static_cast<uint32_t>(d) * sizeof(bf16);

  WaitForPrevious();  // every source may be a recent kernel's output (prefill: after cuBLASLt)
  LetNextStart();
  if (threadIdx.x == 0) {
#pragma unroll
    for (int j = 0; j < kNb + 2; ++j) BarrierInit(&bars[j]);
    FenceBarrierInit();
    // x's sources first: the first pass needs them with slot 0.
    if (has_prefix) {
      BulkCopyToShared(const_cast<bf16*>(prefix_s), a.prefix + row, row_bytes, &bars[kNb]);
    }
    if (has_delta) {
      BulkCopyToShared(const_cast<bf16*>(delta_s), a.delta + row, row_bytes, &bars[kNb + 1]);
    }
#pragma unroll
    for (int j = 0; j < kNb; ++j) {
      BulkCopyToShared(const_cast<bf16*>(slot_s) + static_cast<size_t>(j) * d,
                       a.bank + (static_cast<size_t>(j) * a.T + t) * d, row_bytes, &bars[j]);
    }
  }
  // The query and the slots' cached inverse RMS while the copies fly.
  int col[VPT];
  bool valid[VPT];
  float uq[VPT][kMix ? 8 : 1];
#pragma unroll
  for (int v = 0; v < VPT; ++v) {
    col[v] = (threadIdx.x + v * blockDim.x) * 8;
    valid[v] = col[v] < d;
    if constexpr (kMix) {
#pragma unroll
      for (int i = 0; i < 8; ++i) uq[v][i] = 0.0f;
      if (valid[v]) LoadF32x8(a.u + col[v], uq[v]);
    }
  }
  float inv[kSlots];
#pragma unroll
  for (int j = 0; j < kNb; ++j) {
    inv[j] = LoadProduced(a.bank_inv_rms + static_cast<size_t>(j) * a.T + t);
  }
  __syncthreads();  // the barriers are initialized

  // x = bf16(prefix + delta) (or the one present), packed in xr; its square sum and dot.
  if (has_prefix) BarrierWaitPhase0(&bars[kNb]);
  if (has_delta) BarrierWaitPhase0(&bars[kNb + 1]);
  float red[kNb + 2];  // the slots' dots, x's dot, sum(x^2)
#pragma unroll
  for (int j = 0; j < kNb + 2; ++j) red[j] = 0.0f;
  uint4 xr[VPT];
#pragma unroll
  for (int v = 0; v < VPT; ++v) {
    xr[v] = make_uint4(0, 0, 0, 0);
    if (!valid[v]) continue;
    xr[v] = *reinterpret_cast<const uint4*>((has_delta ? delta_s : prefix_s) + col[v]);
    float x[8];
    Bf16x8ToF32(xr[v], x);
    if (has_delta && has_prefix) {
      float p[8];
      Bf16x8ToF32(*reinterpret_cast<const uint4*>(prefix_s + col[v]), p);
#pragma unroll
      for (int i = 0; i < 8; ++i) x[i] = p[i] + x[i];
      StoreBf16x8(reinterpret_cast<bf16*>(&xr[v]), x);  // rounds to bf16
      Bf16x8ToF32(xr[v], x);
    }
    // Phase 1 reads x after the slots: this thread's chunk, where the prefix was staged.
    if (a.summary_queries > 0 && has_delta) {
      *reinterpret_cast<uint4*>(const_cast<bf16*>(prefix_s) + col[v]) = xr[v];
    }
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      red[kNb + 1] += x[i] * x[i];
      if constexpr (kMix) red[kNb] += uq[v][i] * x[i];
    }
  }
  // Each slot's dot as soon as it has landed.
#pragma unroll
  for (int j = 0; j < kNb; ++j) {
    BarrierWaitPhase0(&bars[j]);
#pragma unroll
    for (int v = 0; v < VPT; ++v) {
      if (!valid[v]) continue;
      float f[8];
      Bf16x8ToF32(*reinterpret_cast<const uint4*>(slot_s + static_cast<size_t>(j) * d + col[v]), f);
#pragma unroll
      for (int i = 0; i < 8; ++i) red[j] += uq[v][i] * f[i];
    }
  }
  if constexpr (kMix) {
    RowSum<kNb + 2>(red, scratch);
  } else {
    RowSum<1>(*reinterpret_cast<float(*)[1]>(&red[kNb + 1]), scratch);
  }
  const float sq_x = red[kNb + 1];
  const int record = a.mix_weights && a.u ? __ldg(a.record_row + t) : -1;
  constexpr bool kPhase1 = VPT <= kPhase1MaxVpt;
  if constexpr (kPhase1) {
    if (a.phase1_only) {
      StagedSummaries<kNb>(a, t, record, slot_s, inv, sq_x, part);
      return;
    }
  }

  // The softmax over the slots, then x (ATTNRES.md's candidate order), and the weighted sum.
  float p[kSlots], px = 1.0f, inv_l = 1.0f;
  float h[VPT][8];
  float hs[1] = {0.0f};
  if constexpr (kMix) {
    const float s_x = red[kNb] * rsqrtf(sq_x / d + a.eps);
    float m = s_x;
#pragma unroll
    for (int j = 0; j < kNb; ++j) {
      p[j] = red[j] * inv[j];
      m = fmaxf(m, p[j]);
    }
    float l = 0.0f;
#pragma unroll
    for (int j = 0; j < kNb; ++j) {
      p[j] = __expf(p[j] - m);
      l += p[j];
    }
    px = __expf(s_x - m);
    l += px;
    inv_l = 1.0f / l;
  }
#pragma unroll
  for (int v = 0; v < VPT; ++v) {
    float x[8];
    Bf16x8ToF32(xr[v], x);
#pragma unroll
    for (int i = 0; i < 8; ++i) h[v][i] = 0.0f;
#pragma unroll
    for (int j = 0; j < kNb; ++j) {
      float f[8];
      Bf16x8ToF32(
          valid[v] ? *reinterpret_cast<const uint4*>(slot_s + static_cast<size_t>(j) * d + col[v])
                   : make_uint4(0, 0, 0, 0),
          f);
#pragma unroll
      for (int i = 0; i < 8; ++i) h[v][i] += p[j] * f[i];
    }
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      h[v][i] = kMix ? (h[v][i] + px * x[i]) * inv_l : x[i];
      hs[0] += h[v][i] * h[v][i];
    }
  }

  // The new prefix lands in the snapshot slot (a fresh one) or back in the prefix.
  if (has_delta || a.snapshot) {
    bf16* dst =
        a.snapshot ? a.bank + (static_cast<size_t>(a.bank_count) * a.T + t) * d : a.prefix + row;
#pragma unroll
    for (int v = 0; v < VPT; ++v) {
      if (valid[v]) *reinterpret_cast<uint4*>(dst + col[v]) = xr[v];
    }
  }
  if (a.snapshot && threadIdx.x == 0) {
    a.bank_inv_rms[static_cast<size_t>(a.bank_count) * a.T + t] = rsqrtf(sq_x / d + a.eps);
  }

  // RMSNorm of h with gamma -> out (without a mix, h = x: its square sum is known).
  if constexpr (kMix) {
    RowSum<1>(hs, scratch);
  } else {
    hs[0] = sq_x;
  }
  const float r = rsqrtf(hs[0] / d + a.eps);
  bf16* out = a.out + static_cast<size_t>(k) * d;
#pragma unroll
  for (int v = 0; v < VPT; ++v) {
    if (!valid[v]) continue;
    float g[8], y[8];
    LoadF32x8(a.gamma + col[v], g);
#pragma unroll
    for (int i = 0; i < 8; ++i) y[i] = (h[v][i] * r) * g[i];
    StoreBf16x8(out + col[v], y);
  }

  // Mix weights of recorded rows (a lone source weighs 1).
  if (record >= 0 && threadIdx.x == 0) {
    float* alpha = a.mix_weights + static_cast<size_t>(record) * a.mix_stride + a.mix_offset;
#pragma unroll
    for (int j = 0; j < kNb; ++j) alpha[j] = p[j] * inv_l;
    alpha[kNb] = px * inv_l;
  }
  if constexpr (kPhase1) {
    if (a.summary_queries > 0) {
      StagedSummaries<kNb>(a, t, record, slot_s, inv, sq_x, part);
    }
  }
}

// Opt-in (ATTNRES_STAGED_BOUNDARY=1): faster per kernel, slower in the prefill step (runs 26-27).
bool StagedEnabled() {
  static const bool enabled = [] {
    const char* v = std::getenv("ATTNRES_STAGED_BOUNDARY");
    return v != nullptr && std::strcmp(v, "0") != 0;
  }();
  return enabled;
}

// Bank slots the boundary mixes (0: none, the add + norm alone); a phase-1 boundary has a query
// wherever it has slots (ResidualBoundary checks), so these are the slots it summarizes too.
int Mixed(const ResidualBoundaryArgs& a) { return a.u && a.bank_count > 0 ? a.bank_count : 0; }

size_t StagedBytes(int nb, int d) { return static_cast<size_t>(nb + 2) * d * sizeof(bf16); }

bool Aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// d <= 4096 takes 2 chunks of 8 per thread (256 threads), wider rows 4; phase 1 is built into
// the 2-chunk instances only.
constexpr int kTwoChunkMaxD = 8 * 2 * kStagedThreads;
constexpr int kFourChunkMaxD = 8 * 4 * kStagedThreads;
static_assert(kPhase1MaxVpt == 2);

bool ShapeFits(int d, int nb, bool phase1) {
  return nb >= 0 && nb <= kMaxStagedSlots && d > 0 && d % 8 == 0 &&
         d <= (phase1 ? kTwoChunkMaxD : kFourChunkMaxD) && StagedBytes(nb, d) <= kStagedMaxSmem;
}

template <int kNb, int VPT>
cudaError_t Launch(const ResidualBoundaryArgs& a, cudaStream_t stream) {
  constexpr auto kKernel = StagedBoundaryKernel<kNb, VPT>;
  if (cudaError_t e = AllowDynamicSmem<kKernel>(kStagedMaxSmem); e != cudaSuccess) return e;
  const int chunks = a.d / 8;
  const int threads = std::max(32, ((chunks + VPT - 1) / VPT + 31) / 32 * 32);
  return LaunchMaybePdl(!a.after_join, kKernel, dim3(a.num_rows), dim3(threads),
                        StagedBytes(kNb, a.d), stream, a);
}

template <int VPT, int... kNbs>
cudaError_t LaunchBySlots(const ResidualBoundaryArgs& a, cudaStream_t stream,
                          std::integer_sequence<int, kNbs...>) {
  using LaunchFn = cudaError_t (*)(const ResidualBoundaryArgs&, cudaStream_t);
  static constexpr LaunchFn kBySlots[] = {Launch<kNbs, VPT>...};
  return kBySlots[Mixed(a)](a, stream);
}

}  // namespace

bool StagedBoundaryServes(const ResidualBoundaryArgs& a) {
  const bool phase1 = a.summary_queries > 0;
  return (phase1 ? a.summary_queries <= kMaxStagedQueries : StagedEnabled() && !a.phase1_only) &&
         a.summary_index < 0 && ShapeFits(a.d, Mixed(a), phase1) && Aligned16(a.bank) &&
         Aligned16(a.prefix) && Aligned16(a.delta);
}

bool StagedPhase1Fits(int d, int bank_count, int queries) {
  return queries > 0 && queries <= kMaxStagedQueries && ShapeFits(d, bank_count, true);
}

cudaError_t StagedBoundary(const ResidualBoundaryArgs& a, cudaStream_t stream) {
  if (!StagedBoundaryServes(a)) return cudaErrorInvalidValue;
  if (a.num_rows == 0) return cudaSuccess;
  const auto slots = std::make_integer_sequence<int, kMaxStagedSlots + 1>{};
  // 2 chunks of 8 per thread up to d = 4096 (256 threads), 4 past it. (4 at d = 4096, 128
  // threads, ran faster at 1-5 slots but has not been through the tests on a GPU yet:
  // bench/BENCHMARKS.md run 26.)
  return a.d <= kTwoChunkMaxD ? LaunchBySlots<2>(a, stream, slots)
                              : LaunchBySlots<4>(a, stream, slots);
}

}  // namespace attnres::kernels
