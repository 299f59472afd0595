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
#include <string>
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

// d <= 4096 takes 2 chunks of 8 per thread (256 threads), wider rows 4; phase 1 is built into
// the 2-chunk instances only.
constexpr int kTwoChunkMaxD = 8 * 2 * kStagedThreads;
constexpr int kFourChunkMaxD = 8 * 4 * kStagedThreads;
static_assert(kPhase1MaxVpt == 2);

// The staged rows' stride in bf16: the 2-chunk instances (those with phase 1) pad each row by
// 16 bytes, so that phase 1's ldmatrix, which reads the same 16 bytes of 8 consecutive rows,
// meets 8 bank groups instead of one (d = 4096: rows 8 KiB apart).
__host__ __device__ constexpr int StagedLd(int d) { return d <= kTwoChunkMaxD ? d + 8 : d; }

static_assert(kMaxStagedSlots + 2 <= kRowSumPad);  // the dots, x's dot and sum(x^2) in one RowSum

// Phase 1 over the staged row: for each later mix q (summary_u row q), the online-softmax state
// over the kNb slots, then x (the slot this boundary completes the bank with), unnormalized as
// phase 2 merges it: max m, sum l, and sum_j exp(s_j - m) v_j into summary_h[q, t]. src_s:
// [kNb + 1][ld] bf16 in shared memory, the slots then x (each thread's chunks of x stored before
// the boundary's RowSum, whose barriers publish them to the threads that read them here).
//
// Scores, kPhase1Batch queries per round on the CUDA cores (fp32 queries against the staged
// bf16 sources): each thread takes 4 columns at a time, so a warp's query loads are 512
// contiguous bytes. (Requesting the next columns' queries before using these, as they come from
// L2, timed the same or slower: 16 more registers spill at 7-8 slots.) A round's 4 x (kNb + 1)
// sums leave the warp through a reduce-scatter (queries 2-3 to the upper half-warp, then the odd
// query to the upper 8 lanes of each half, then 3 full steps: 6 shuffles a source against 20),
// one row per warp in `part`, and the totals of every query in `totals`. (The scores as mma
// tiles too, 16 columns a step, ran 20% slower: a warp then makes 32 dependent trips to L2 for
// its queries per row instead of 8; run 44.)
//
// Weighted sums of all queries at once on the tensor cores: D[q][c] = sum_j P[q][j] V[j][c] as
// m16n8k16 tiles, the sources as k (at most 9 of 16; ldmatrix.trans gives each lane its pairs of
// sources from the staged rows, whose stride is padded by 16 bytes so the 8 rows of a matrix
// fall in 8 bank groups) and 8 columns as n. The fp32 weights are split exactly into three bf16
// terms, hi + mid + lo (8 significant bits each): rows 0-7 of the first mma hold hi, rows 8-15
// mid, the second mma's rows 0-7 lo; the products are exact and accumulate in fp32, so the sum
// matches the CUDA-core form to fp32 rounding with a fraction of its instructions: with the
// reduce-scatter, the 7-slot boundary executes 18% fewer instructions and takes 4% less time on
// an H100 (bench/BENCHMARKS.md run 44).
template <int kNb>
__device__ __forceinline__ void StagedSummaries(const ResidualBoundaryArgs& a, int t, int record,
                                                const bf16* src_s, int ld,
                                                const float (&inv)[kNb > 0 ? kNb : 1], float sq_x,
                                                float* part, float* totals, const void* zero16) {
  constexpr int kSrc = kNb + 1, kVals = kPhase1Batch * kSrc;
  static_assert(kSrc <= 16 && kPhase1Batch == 4 && kMaxStagedQueries <= 8);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, warps = blockDim.x >> 5;
  const int d = a.d, Q = a.summary_queries;
  const float r_x = rsqrtf(sq_x / d + a.eps);
  for (int q0 = 0; q0 < Q; q0 += kPhase1Batch) {
    const int nq = min(kPhase1Batch, Q - q0);
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
        Bf16x4ToF32(*reinterpret_cast<const uint2*>(src_s + static_cast<size_t>(j) * ld + col), f);
#pragma unroll
        for (int i = 0; i < kPhase1Batch; ++i)
#pragma unroll
          for (int e = 0; e < 4; ++e) red[i][j] += uq[i][e] * f[e];
      }
    }
    // Reduce-scatter: lane l ends with query (l >> 3) & 3's sums over the warp.
    const bool up16 = lane & 16, up8 = lane & 8;
    float pair[2][kSrc], mine[kSrc];
#pragma unroll
    for (int i = 0; i < 2; ++i) {
#pragma unroll
      for (int j = 0; j < kSrc; ++j) {
        const float keep = up16 ? red[i + 2][j] : red[i][j];
        const float send = up16 ? red[i][j] : red[i + 2][j];
        pair[i][j] = keep + __shfl_xor_sync(0xffffffffu, send, 16);
      }
    }
#pragma unroll
    for (int j = 0; j < kSrc; ++j) {
      const float keep = up8 ? pair[1][j] : pair[0][j];
      const float send = up8 ? pair[0][j] : pair[1][j];
      mine[j] = keep + __shfl_xor_sync(0xffffffffu, send, 8);
#pragma unroll
      for (int o = 4; o > 0; o >>= 1) mine[j] += __shfl_xor_sync(0xffffffffu, mine[j], o);
    }
    __syncthreads();  // the previous round's totals have been summed from part
    if ((lane & 7) == 0) {
      float* row = part + warp * kVals + ((lane >> 3) & 3) * kSrc;
#pragma unroll
      for (int j = 0; j < kSrc; ++j) row[j] = mine[j];
    }
    __syncthreads();
    for (int i = threadIdx.x; i < nq * kSrc; i += blockDim.x) {
      float s = 0.0f;
      for (int w = 0; w < warps; ++w) s += part[w * kVals + i];
      totals[q0 * kSrc + i] = s;
    }
  }
  __syncthreads();  // every query's totals

  // Lane (g, t4) holds query g's weights of sources 2 t4, 2 t4 + 1, 2 t4 + 8, 2 t4 + 9 (the mma's
  // A fragment), from the softmax over all of the query's sources; queries past Q weigh 0.
  const int g = lane >> 2, t4 = lane & 3;
  float w4[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  if (g < Q) {
    float sc[kSrc], m = -INFINITY, l = 0.0f;
#pragma unroll
    for (int j = 0; j < kSrc; ++j) {
      sc[j] = totals[g * kSrc + j] * (j < kNb ? inv[j < kNb ? j : 0] : r_x);
      m = fmaxf(m, sc[j]);
    }
#pragma unroll
    for (int j = 0; j < kSrc; ++j) {
      const float p = __expf(sc[j] - m);
      l += p;
#pragma unroll
      for (int s = 0; s < 4; ++s) {
        if (j == 2 * t4 + (s & 1) + 8 * (s >> 1)) w4[s] = p;
      }
    }
    if (warp == 0 && t4 == 0) {
      const size_t at = static_cast<size_t>(g) * a.T + t;
      a.summary_ml[at] = make_float2(m, l);
      if (record >= 0) {
        float* scores = a.summary_scores + at * a.summary_stride;
#pragma unroll
        for (int j = 0; j < kSrc; ++j) scores[j] = sc[j];
      }
    }
  }
  // w = hi + mid + lo exactly: each remainder is exact in fp32 and has 8 fewer significant bits.
  uint32_t hi[2], mid[2], lo[2];
#pragma unroll
  for (int k = 0; k < 2; ++k) {
    float r0 = w4[2 * k], r1 = w4[2 * k + 1];
    const __nv_bfloat162 h = __floats2bfloat162_rn(r0, r1);
    r0 -= __low2float(h);
    r1 -= __high2float(h);
    const __nv_bfloat162 md = __floats2bfloat162_rn(r0, r1);
    r0 -= __low2float(md);
    r1 -= __high2float(md);
    const __nv_bfloat162 lw = __floats2bfloat162_rn(r0, r1);
    hi[k] = *reinterpret_cast<const uint32_t*>(&h);
    mid[k] = *reinterpret_cast<const uint32_t*>(&md);
    lo[k] = *reinterpret_cast<const uint32_t*>(&lw);
  }
  // Lane l addresses row l % 8 of matrix l / 8 of each x4 ldmatrix: sources 0-7 then 8-15 of
  // columns c0.., then of c0 + 8..; missing sources and columns read 16 zero bytes.
  const int src = (lane & 7) + 8 * ((lane >> 3) & 1), col_off = 8 * (lane >> 4);
  const bf16* src_row = src_s + static_cast<size_t>(src < kSrc ? src : 0) * ld;
  float* dst = a.summary_h + (static_cast<size_t>(g) * a.T + t) * d + 2 * t4;
#pragma unroll 2
  for (int c0 = warp * 16; c0 < d; c0 += warps * 16) {
    const int c = c0 + col_off;
    uint32_t b[4];
    LdMatrixX4Trans(b, src < kSrc && c < d ? static_cast<const void*>(src_row + c) : zero16);
    float acc0[4] = {0.0f, 0.0f, 0.0f, 0.0f}, acc1[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    Mma(acc0, hi[0], mid[0], hi[1], mid[1], b[0], b[1]);
    Mma(acc0, lo[0], 0u, lo[1], 0u, b[0], b[1]);
    Mma(acc1, hi[0], mid[0], hi[1], mid[1], b[2], b[3]);
    Mma(acc1, lo[0], 0u, lo[1], 0u, b[2], b[3]);
    // Streaming stores: T rows of summaries pass through L2 long before phase 2 reads them,
    // and should not evict the queries every row reads.
    if (g < Q) {
      __stcs(reinterpret_cast<float2*>(dst + c0),
             make_float2(acc0[0] + acc0[2], acc0[1] + acc0[3]));
      if (c0 + 8 < d) {
        __stcs(reinterpret_cast<float2*>(dst + c0 + 8),
               make_float2(acc1[0] + acc1[2], acc1[1] + acc1[3]));
      }
    }
  }
}

// kNb bank slots mixed (0: no mix, h = x); VPT chunks of 8 values per thread. Dynamic shared
// memory: [kNb + 2][StagedLd(d)] bf16, the slots, then prefix and delta (each present one). With
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
  // Phase 1's per-warp partial scores of a round, then every query's totals.
  __shared__ float part[VPT <= kPhase1MaxVpt ? kStagedThreads / 32 * kPhase1Batch * (kNb + 1) : 1];
  __shared__ float totals[VPT <= kPhase1MaxVpt ? kMaxStagedQueries * (kNb + 1) : 1];
  __shared__ __align__(16) uint4 zero16;  // what ldmatrix reads for missing sources
  const int k = blockIdx.x;
  const int t = a.rows ? __ldg(a.rows + k) : k;
  const int d = a.d;
  const size_t row = static_cast<size_t>(t) * d;
  const int ld = StagedLd(d);
  const bf16* slot_s = reinterpret_cast<const bf16*>(staged);  // [kNb][ld]
  const bf16* prefix_s = slot_s + static_cast<size_t>(kNb) * ld;
  const bf16* delta_s = prefix_s + ld;
  const bool has_delta = a.delta != nullptr;
  const bool has_prefix = !has_delta || !a.prefix_empty;
  const uint32_t row_bytes = static_cast<uint32_t>(d) * sizeof(bf16);

  WaitForPrevious();  // every source may be a recent kernel's output (prefill: after cuBLASLt)
  LetNextStart();
  if (threadIdx.x == 0) {
#pragma unroll
    for (int j = 0; j < kNb + 2; ++j) BarrierInit(&bars[j]);
    FenceBarrierInit();
    zero16 = make_uint4(0, 0, 0, 0);
    // x's sources first: the first pass needs them with slot 0.
    if (has_prefix) {
      BulkCopyToShared(const_cast<bf16*>(prefix_s), a.prefix + row, row_bytes, &bars[kNb]);
    }
    if (has_delta) {
      BulkCopyToShared(const_cast<bf16*>(delta_s), a.delta + row, row_bytes, &bars[kNb + 1]);
    }
#pragma unroll
    for (int j = 0; j < kNb; ++j) {
      BulkCopyToShared(const_cast<bf16*>(slot_s) + static_cast<size_t>(j) * ld,
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
      Bf16x8ToF32(*reinterpret_cast<const uint4*>(slot_s + static_cast<size_t>(j) * ld + col[v]),
                  f);
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
      StagedSummaries<kNb>(a, t, record, slot_s, ld, inv, sq_x, part, totals, &zero16);
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
          valid[v] ? *reinterpret_cast<const uint4*>(slot_s + static_cast<size_t>(j) * ld + col[v])
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
  StoreNormed<VPT>(h, valid, col, r, a.gamma, a.out + static_cast<size_t>(k) * d);

  // Mix weights of recorded rows (a lone source weighs 1).
  if (record >= 0 && threadIdx.x == 0) {
    float* alpha = a.mix_weights + static_cast<size_t>(record) * a.mix_stride + a.mix_offset;
#pragma unroll
    for (int j = 0; j < kNb; ++j) alpha[j] = p[j] * inv_l;
    alpha[kNb] = px * inv_l;
  }
  if constexpr (kPhase1) {
    if (a.summary_queries > 0) {
      StagedSummaries<kNb>(a, t, record, slot_s, ld, inv, sq_x, part, totals, &zero16);
    }
  }
}

// ATTNRES_STAGED_BOUNDARY, read once ("" when unset; StagedOnePhaseWanted says what it means).
const char* StagedSetting() {
  static const std::string setting = [] {
    const char* v = std::getenv("ATTNRES_STAGED_BOUNDARY");
    return std::string(v != nullptr ? v : "");
  }();
  return setting.c_str();
}

// Bank slots the boundary mixes (0: none, the add + norm alone); a phase-1 boundary has a query
// wherever it has slots (ResidualBoundary checks), so these are the slots it summarizes too.
int Mixed(const ResidualBoundaryArgs& a) { return a.u && a.bank_count > 0 ? a.bank_count : 0; }

size_t StagedBytes(int nb, int d) {
  return static_cast<size_t>(nb + 2) * StagedLd(d) * sizeof(bf16);
}

bool Aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

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

bool StagedOnePhaseWanted(const char* setting, int mixed) {
  if (setting != nullptr && std::strcmp(setting, "0") == 0) return false;
  if (setting != nullptr && std::strcmp(setting, "1") == 0) return true;
  return mixed > 0;
}

bool StagedBoundaryServes(const ResidualBoundaryArgs& a) {
  const bool phase1 = a.summary_queries > 0;
  const bool one_phase = StagedOnePhaseWanted(StagedSetting(), Mixed(a));
  return (phase1 ? a.summary_queries <= kMaxStagedQueries : one_phase && !a.phase1_only) &&
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
