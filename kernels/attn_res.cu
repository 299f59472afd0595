// The fused AttnRes residual boundary (ops.h ResidualBoundary): prefix += delta (bf16), the mix
// over bank + prefix in fp32 with an online softmax over groups of 8 bank slots (the inverse RMS
// of bank rows cached at snapshot time), the optional snapshot into the next free slot, and the
// following RMSNorm. One block per row, each thread owning VPT 16-byte chunks kept in registers;
// every global load of a row (sources, first bank group, cached RMS) is issued before any use.
// Two-phase form (ATTNRES.md §5): a snapshot boundary's extra blocks fold the completed bank into
// one online-softmax state per later mix of the block (phase 1, in parallel with the boundary's
// own row), and those mixes merge only their prefix into it (phase 2): two block reductions per
// row, like the standard add + norm, instead of scoring every bank row again. From 256 rows
// (prefill) phase 1 is the staged form's (attn_res_staged.cu); phase 2 runs in every form here.
#include <algorithm>
#include <cmath>
#include <utility>

#include "kernels/attn_res_staged.h"
#include "kernels/boundary_row.cuh"
#include "kernels/common.cuh"
#include "kernels/env_switch.h"
#include "kernels/ops.h"

namespace attnres::kernels {
namespace {

constexpr int kGroup = 8;        // bank slots held in registers and scored per block reduction
constexpr int kMaxThreads = 512;
constexpr int kManyRows = 256;   // from here on, 2 chunks per thread (2 blocks per SM)
// From here on (prefill), 4 chunks per thread, 4 blocks of 4 warps per SM and bank groups of 2:
// twice the rows in flight per SM for the same registers, at the cost of more (cheaper) block
// reductions per row. T=4096, d=4096: AttnRes nb=8 boundary 79% of copy vs 57%, standard 75% vs
// 65% (bench/BENCHMARKS.md run 11); at T=256 it is 14% slower, so not below this.
constexpr int kVeryManyRows = 1024;

static_assert(kGroup + 2 <= kRowSumPad);  // a group's dots, x's dot and sum(x^2) in one RowSum

// Phase 1 over a bank of one group (nb <= G, every Block AttnRes model of up to G + 1 blocks):
// the block's queries are scored in one reduction round per kBatch of them (warp sums into
// shared memory, a barrier, totals, a barrier) instead of one block reduction each; then each
// query's state is a few FMAs per thread. part: [warps + 1][PartStride<G>()] shared floats.
constexpr int kBatch = 8;
template <int G>
__host__ __device__ constexpr int PartStride() {
  return kBatch * (G + 1) + 1;  // per query: the bank slots' dots, then x's; last sum(x^2)
}
// uq: the first query's chunk 0 where the kernel holds it (one chunk per thread), loaded before
// the wait; the block's later queries were prefetched into L1 then.
template <int VPT, int G>
__device__ __forceinline__ void SummarizeOneGroup(
    const ResidualBoundaryArgs& a, int nb, int t, int q_begin, int q_end,
    const uint4 (&raw)[G][VPT], const float (&inv)[G], const uint4 (&xr)[VPT],
    const bool (&valid)[VPT], const int (&col)[VPT], const float (&uq)[VPT == 1 ? 8 : 1],
    float sq, int record, float* part) {
  constexpr int kVals = G + 1, kStride = PartStride<G>();
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, warps = blockDim.x >> 5;
  const int d = a.d;
  float* totals = part + warps * kStride;
  float sq_x = 0.0f;
  for (int q0 = q_begin; q0 < q_end; q0 += kBatch) {
    const int nq = min(kBatch, q_end - q0);
    // A: this thread's dots for each query of the round, summed per warp. The next query's
    // first chunk is loaded while this one's are summed (from L1 where the kernel prefetched it).
    float un[8];
    if constexpr (VPT == 1) {
      if (q0 == q_begin) {
#pragma unroll
        for (int e = 0; e < 8; ++e) un[e] = uq[e];
      }
    }
    if (valid[0] && (VPT > 1 || q0 > q_begin)) {
      LoadF32x8(a.summary_u + static_cast<size_t>(q0) * d + col[0], un);
    }
    for (int i = 0; i < nq; ++i) {
      const float* u = a.summary_u + static_cast<size_t>(q0 + i) * d;
      float red[kVals];
#pragma unroll
      for (int j = 0; j < kVals; ++j) red[j] = 0.0f;
#pragma unroll
      for (int v = 0; v < VPT; ++v) {
        if (!valid[v]) continue;
        float uc[8], f[8];
        if (v == 0) {
#pragma unroll
          for (int e = 0; e < 8; ++e) uc[e] = un[e];
          if (i + 1 < nq) LoadF32x8(u + d + col[0], un);
        } else {
          LoadF32x8(u + col[v], uc);
        }
        Bf16x8ToF32(xr[v], f);
#pragma unroll
        for (int e = 0; e < 8; ++e) red[G] += uc[e] * f[e];
#pragma unroll
        for (int j = 0; j < G; ++j) {
          if (j >= nb) continue;
          Bf16x8ToF32(raw[j][v], f);
#pragma unroll
          for (int e = 0; e < 8; ++e) red[j] += uc[e] * f[e];
        }
      }
#pragma unroll
      for (int j = 0; j < kVals; ++j) {
        if (j < nb || j == G) red[j] = WarpSum(red[j]);
        if (lane == 0) part[warp * kStride + i * kVals + j] = red[j];
      }
    }
    if (q0 == q_begin) {
      const float s = WarpSum(sq);
      if (lane == 0) part[warp * kStride + kStride - 1] = s;
    }
    __syncthreads();
    for (int i = threadIdx.x; i < kStride; i += blockDim.x) {
      float s = 0.0f;
      for (int w = 0; w < warps; ++w) s += part[w * kStride + i];
      totals[i] = s;
    }
    __syncthreads();
    if (q0 == q_begin) sq_x = totals[kStride - 1];
    const float r_x = rsqrtf(sq_x / d + a.eps);
    // B: each query's (max, sum, unnormalized weighted sum) over the bank slots, then x.
    for (int i = 0; i < nq; ++i) {
      const size_t at = static_cast<size_t>(q0 + i) * a.T + t;
      float sc[kVals], m = -INFINITY;
#pragma unroll
      for (int j = 0; j < G; ++j) {
        sc[j] = j < nb ? totals[i * kVals + j] * inv[j] : -INFINITY;
        m = fmaxf(m, sc[j]);
      }
      sc[G] = totals[i * kVals + G] * r_x;
      m = fmaxf(m, sc[G]);
      float l = 0.0f, pj[kVals];
#pragma unroll
      for (int j = 0; j < kVals; ++j) {
        pj[j] = j < nb || j == G ? __expf(sc[j] - m) : 0.0f;
        l += pj[j];
      }
      float* dst = a.summary_h + at * d;
#pragma unroll
      for (int v = 0; v < VPT; ++v) {
        if (!valid[v]) continue;
        float h[8], f[8];
        Bf16x8ToF32(xr[v], f);
#pragma unroll
        for (int e = 0; e < 8; ++e) h[e] = pj[G] * f[e];
#pragma unroll
        for (int j = 0; j < G; ++j) {
          if (j >= nb) continue;
          Bf16x8ToF32(raw[j][v], f);
#pragma unroll
          for (int e = 0; e < 8; ++e) h[e] += pj[j] * f[e];
        }
        StoreF32x8(dst + col[v], h);
      }
      if (threadIdx.x == 0) {
        a.summary_ml[at] = make_float2(m, l);
        if (record >= 0) {
          float* scores = a.summary_scores + at * a.summary_stride;
          for (int j = 0; j < nb; ++j) scores[j] = sc[j];
          scores[nb] = sc[G];
        }
      }
    }
    __syncthreads();  // the next round rewrites part and totals
  }
}

// kSummary: phase 2 of the two-phase mix (ops.h), reading a summary instead of the bank.
// Otherwise block y = 0 runs this boundary's own mix, and blocks y > 0 of a snapshot boundary
// run phase 1 for the later mixes [q_begin, q_end) (queries_per_block each): the same
// online-softmax over the bank and x, stored unnormalized instead of merged and normed.
// kNb >= 0: the bank holds kNb slots (a.bank_count), known when compiled, so every per-slot
// test folds away and the slot loops are straight-line code (kNbAny: read at run time).
// kOneSum (phase 2 only): the norm's square sum comes out of the mix's own block reduction,
// from S.S and S.x (S the summary's weighted sum) beside x.x and u.x: sum(h^2) = inv_l^2 *
// (r^2 S.S + 2 r p S.x + p^2 x.x) for h = (r S + p x) * inv_l; one block reduction per row, as
// the standard add + norm takes. Where the cross term cancels more than 15/16 of the two
// squares the kernel sums h^2 itself (fp32 cancellation would lose digits).
constexpr int kNbAny = -1;
template <int VPT, int G, int kThreads, int kMinBlocks, bool kSummary, int kNb = kNbAny,
          bool kOneSum = false>
__global__ void __launch_bounds__(kThreads, kMinBlocks)
    ResidualBoundaryKernel(const ResidualBoundaryArgs a, int queries_per_block) {
  __shared__ __align__(16) float scratch[(kThreads / 32 + 1) * kRowSumPad];  // rows, then totals
  __shared__ float scores[kMaxMixSources];
  __shared__ __align__(16) float part[kSummary ? 1 : (kThreads / 32 + 1) * PartStride<G>()];
  const int k = blockIdx.x;
  const int t = a.rows ? __ldg(a.rows + k) : k;
  const int d = a.d, nb = kNb == kNbAny ? a.bank_count : kNb;
  const size_t row = static_cast<size_t>(t) * d;
  // Phase 1 runs in the one-block-per-SM forms only (the many-row forms have no registers to
  // spare for it; prefill's phase 1 is attn_res_staged.cu's); phase 2 in every form.
  constexpr bool kTwoPhase = kMinBlocks == 1;
  const bool phase1 = kTwoPhase && !kSummary && (blockIdx.y > 0 || a.phase1_only);
  const int q_begin = phase1 ? (blockIdx.y - (a.phase1_only ? 0 : 1)) * queries_per_block : 0;
  const int q_end = phase1 ? min(q_begin + queries_per_block, a.summary_queries) : 1;
  const float* u = phase1 ? a.summary_u + static_cast<size_t>(q_begin) * d : a.u;
  // A phase-1 block mixes even a lone x (the embedding snapshot): its state is (s_x, 1, x).
  const bool mix = u != nullptr && (nb > 0 || phase1);
  const bool may_record = a.mix_weights != nullptr && a.u != nullptr;
  const int record = may_record ? __ldg(a.record_row + t) : -1;
  // Where summary q of this row lives.
  auto summary_row = [&](int q) { return static_cast<size_t>(q) * a.T + t; };
  // One chunk per thread (few rows, latency-bound): every load but delta's is issued before the
  // wait, and the query and gamma are held from the start. Many rows keep the plain order (the
  // early form measured 2-10% slower at 4096 rows, bench/BENCHMARKS.md run 12).
  constexpr bool kEarly = VPT == 1;
  if constexpr (!kEarly) {
    WaitForPrevious();
    LetNextStart();
  }

  // 1. Issue every load of the row. kEarly: before the wait (kernels/common.cuh's rule) the
  // prefix, the first bank group and its RMS or the summary (earlier boundaries wrote them) and
  // the constants; after it delta, the previous kernel's output. The bank's DRAM latency hides
  // behind that kernel's tail.
  int col[VPT];
  bool valid[VPT];
  uint4 xr[VPT], pr[VPT];
  float uq[kEarly ? 8 : 1];
#pragma unroll
  for (int v = 0; v < VPT; ++v) {
    col[v] = (threadIdx.x + v * blockDim.x) * 8;
    valid[v] = col[v] < d;
    xr[v] = pr[v] = make_uint4(0, 0, 0, 0);
    if (!valid[v]) continue;
    if (!a.delta) {
      xr[v] = LoadProduced(a.prefix + row + col[v]);
      continue;
    }
    if (!kEarly) xr[v] = LoadProduced(a.delta + row + col[v]);
    if (!a.prefix_empty) pr[v] = LoadProduced(a.prefix + row + col[v]);
  }
  // The bank side of the mix: a group of bank rows (one-phase) or the summary (phase 2).
  uint4 raw[kSummary ? 1 : G][VPT];
  float inv[kSummary ? 1 : G];
  uint4 sum_h[kSummary ? 2 : 1][VPT];
  float2 sum_ml = make_float2(0.0f, 0.0f);
  auto load_group = [&](int g0) {
#pragma unroll
    for (int j = 0; j < (kSummary ? 0 : G); ++j) {
      inv[j] = 0.0f;
      if (g0 + j >= nb) continue;
      const size_t slot_row = static_cast<size_t>(g0 + j) * a.T + t;
      inv[j] = LoadProduced(a.bank_inv_rms + slot_row);
      const bf16* src = a.bank + slot_row * d;
#pragma unroll
      for (int v = 0; v < VPT; ++v) {
        if (valid[v]) raw[j][v] = LoadProduced(src + col[v]);
      }
    }
  };
  if constexpr (kSummary) {
    const float* src = a.summary_h + summary_row(a.summary_index) * d;
#pragma unroll
    for (int v = 0; v < VPT; ++v) {
      sum_h[0][v] = sum_h[1][v] = make_uint4(0, 0, 0, 0);  // zeros past d keep the norm exact
      if (!valid[v]) continue;
      sum_h[0][v] = LoadProduced(static_cast<const void*>(src + col[v]));
      sum_h[1][v] = LoadProduced(static_cast<const void*>(src + col[v] + 4));
    }
    const float* ml = reinterpret_cast<const float*>(a.summary_ml + summary_row(a.summary_index));
    sum_ml = make_float2(LoadProduced(ml), LoadProduced(ml + 1));
  } else if (mix) {
    load_group(0);
  }
  // This thread's query chunk v: held since the start (kEarly), else reloaded (L1/L2-resident;
  // not holding them spares registers). Gamma is always reloaded, at the end: kEarly prefetches
  // it into L1 instead of holding it (held, it spilled, and the spill stalled the block on its
  // DRAM load: bench/BENCHMARKS.md run 22).
  auto constant_chunk = [&](const float* p, const float (&held)[kEarly ? 8 : 1], int v,
                            float (&out)[8]) {
    if constexpr (kEarly) {
#pragma unroll
      for (int i = 0; i < 8; ++i) out[i] = held[i];
    } else {
      LoadF32x8(p + col[v], out);
    }
  };
  if constexpr (kEarly) {
    if (valid[0]) {
      if (mix) LoadF32x8(u + col[0], uq);
      // A phase-1 block's later queries are read in turn: each from L1, not a round trip.
      for (int q = q_begin + 1; phase1 && q < q_end; ++q) {
        PrefetchL1(u + static_cast<size_t>(q - q_begin) * d + col[0]);
      }
      PrefetchL1(a.gamma + col[0]);
    }
    WaitForPrevious();
    LetNextStart();
    if (a.delta && valid[0]) xr[0] = LoadProduced(a.delta + row + col[0]);
  }

  // 2. x = bf16(prefix + delta) (or delta, or prefix), kept packed in xr; its square sum.
  float sq = 0.0f;
#pragma unroll
  for (int v = 0; v < VPT; ++v) {
    float x[8];
    Bf16x8ToF32(xr[v], x);
    if (a.delta && !a.prefix_empty) {
      float p[8];
      Bf16x8ToF32(pr[v], p);
#pragma unroll
      for (int i = 0; i < 8; ++i) x[i] = p[i] + x[i];
      StoreBf16x8(reinterpret_cast<bf16*>(&xr[v]), x);  // rounds to bf16
      Bf16x8ToF32(xr[v], x);
    }
#pragma unroll
    for (int i = 0; i < 8; ++i) sq += x[i] * x[i];
  }

  if constexpr (kTwoPhase && !kSummary) {
    if (phase1 && nb <= G) {
      SummarizeOneGroup<VPT, G>(a, nb, t, q_begin, q_end, raw, inv, xr, valid, col, uq, sq,
                                record, part);
      return;
    }
  }

  // 3. The mix: online softmax over groups of bank slots (or the summary), x last. Phase-1
  // blocks over a bank of several groups take one query at a time here.
  float h[VPT][8];
  float sq_x = 0.0f, inv_l = 1.0f, mfin = 0.0f, s_x = 0.0f;
  float ss = 0.0f, sx = 0.0f, r_last = 0.0f, p_last = 0.0f;  // kOneSum: S.S, S.x; x's merge
  if (!mix) {
    float r1[1] = {sq};
    RowSum<1>(r1, scratch);
    sq_x = r1[0];
#pragma unroll
    for (int v = 0; v < VPT; ++v) Bf16x8ToF32(xr[v], h[v]);
  } else {
    for (int q = q_begin; q < q_end; ++q) {
      if (q > q_begin) {  // a phase-1 block's next query; group 0 is still held unless nb > G
        u += d;
        if constexpr (kEarly) {
          if (valid[0]) LoadF32x8(u + col[0], uq);
        }
        if (nb > G) load_group(0);
      }
      // Scores of this row go to shared memory (own mix) or, for recorded rows, the summary.
      float* score_out = !phase1 ? scores
                         : record >= 0 ? a.summary_scores + summary_row(q) * a.summary_stride
                                       : nullptr;
      float m = -INFINITY, l = 0.0f;
      if constexpr (kSummary) {
        float red[kOneSum ? 4 : 2] = {sq, 0.0f};
#pragma unroll
        for (int v = 0; v < VPT; ++v) {
          if (!valid[v]) continue;
          float uv[8], f[8];
          constant_chunk(u, uq, v, uv);
          Bf16x8ToF32(xr[v], f);
#pragma unroll
          for (int i = 0; i < 8; ++i) red[1] += uv[i] * f[i];
          if constexpr (kOneSum) {
            const float* f0 = reinterpret_cast<const float*>(&sum_h[0][v]);
            const float* f1 = reinterpret_cast<const float*>(&sum_h[1][v]);
#pragma unroll
            for (int i = 0; i < 4; ++i) {
              red[2] += f0[i] * f0[i] + f1[i] * f1[i];
              red[3] += f0[i] * f[i] + f1[i] * f[i + 4];
            }
          }
        }
        RowSum<kOneSum ? 4 : 2>(red, scratch);
        sq_x = red[0];
        s_x = red[1] * rsqrtf(sq_x / d + a.eps);
        if constexpr (kOneSum) {
          ss = red[2];
          sx = red[3];
        }
        m = sum_ml.x;
        l = sum_ml.y;
#pragma unroll
        for (int v = 0; v < VPT; ++v) {
          const float* f0 = reinterpret_cast<const float*>(&sum_h[0][v]);
          const float* f1 = reinterpret_cast<const float*>(&sum_h[1][v]);
#pragma unroll
          for (int i = 0; i < 4; ++i) {
            h[v][i] = f0[i];
            h[v][i + 4] = f1[i];
          }
        }
      } else {
#pragma unroll
        for (int v = 0; v < VPT; ++v)
#pragma unroll
          for (int i = 0; i < 8; ++i) h[v][i] = 0.0f;
        for (int g0 = 0; g0 == 0 || g0 < nb; g0 += G) {
          if (g0 > 0) load_group(g0);
          float red[G + 2];
#pragma unroll
          for (int j = 0; j < G + 2; ++j) red[j] = 0.0f;
#pragma unroll
          for (int v = 0; v < VPT; ++v) {
            if (!valid[v]) continue;
            float uv[8], f[8];
            constant_chunk(u, uq, v, uv);
            if (g0 == 0) {
              Bf16x8ToF32(xr[v], f);
#pragma unroll
              for (int i = 0; i < 8; ++i) red[G + 1] += uv[i] * f[i];
            }
#pragma unroll
            for (int j = 0; j < G; ++j) {
              if (g0 + j >= nb) continue;
              Bf16x8ToF32(raw[j][v], f);
#pragma unroll
              for (int i = 0; i < 8; ++i) red[j] += uv[i] * f[i];
            }
          }
          red[G] = g0 == 0 ? sq : 0.0f;
          RowSum<G + 2>(red, scratch);
          if (g0 == 0) {
            sq_x = red[G];
            s_x = red[G + 1] * rsqrtf(sq_x / d + a.eps);
          }
          if (g0 >= nb) break;  // a phase-1 block over a lone x
          float gmax = m;
#pragma unroll
          for (int j = 0; j < G; ++j) {
            if (g0 + j < nb) {
              red[j] *= inv[j];
              gmax = fmaxf(gmax, red[j]);
              if (threadIdx.x == 0 && score_out) score_out[g0 + j] = red[j];
            }
          }
          const float rescale = __expf(m - gmax);
          l *= rescale;
#pragma unroll
          for (int v = 0; v < VPT; ++v)
#pragma unroll
            for (int i = 0; i < 8; ++i) h[v][i] *= rescale;
#pragma unroll
          for (int j = 0; j < G; ++j) {
            if (g0 + j >= nb) continue;
            const float p = __expf(red[j] - gmax);
            l += p;
#pragma unroll
            for (int v = 0; v < VPT; ++v) {
              if (!valid[v]) continue;
              float f[8];
              Bf16x8ToF32(raw[j][v], f);
#pragma unroll
              for (int i = 0; i < 8; ++i) h[v][i] += p * f[i];
            }
          }
          m = gmax;
        }
      }
      // x last (no bank: m = -inf, so rescale = 0 and the state is (s_x, 1, x)).
      mfin = fmaxf(m, s_x);
      const float rescale = __expf(m - mfin), px = __expf(s_x - mfin);
      l = l * rescale + px;
      inv_l = phase1 ? 1.0f : 1.0f / l;
      r_last = rescale;
      p_last = px;
#pragma unroll
      for (int v = 0; v < VPT; ++v) {
        float x[8];
        Bf16x8ToF32(xr[v], x);
#pragma unroll
        for (int i = 0; i < 8; ++i) h[v][i] = (h[v][i] * rescale + px * x[i]) * inv_l;
      }
      if (phase1) {  // the state, unnormalized, for the later mix q
        float* dst = a.summary_h + summary_row(q) * d;
#pragma unroll
        for (int v = 0; v < VPT; ++v) {
          if (valid[v]) StoreF32x8(dst + col[v], h[v]);
        }
        if (threadIdx.x == 0) {
          a.summary_ml[summary_row(q)] = make_float2(mfin, l);
          if (score_out) score_out[nb] = s_x;
        }
      }
    }
    if (phase1) return;
  }

  // 4. The new prefix lands in the snapshot slot (a fresh one) or back in the prefix.
  if (a.delta || a.snapshot) {
    bf16* dst = a.snapshot ? a.bank + (static_cast<size_t>(nb) * a.T + t) * d : a.prefix + row;
#pragma unroll
    for (int v = 0; v < VPT; ++v) {
      if (valid[v]) *reinterpret_cast<uint4*>(dst + col[v]) = xr[v];
    }
  }
  if (a.snapshot && threadIdx.x == 0) {
    a.bank_inv_rms[static_cast<size_t>(nb) * a.T + t] = rsqrtf(sq_x / d + a.eps);
  }

  // 5. RMSNorm of h with gamma -> out.
  float hs[1] = {0.0f};
  bool summed = !mix;  // sum(h^2) known without a reduction
  if (!mix) hs[0] = sq_x;
  if constexpr (kSummary && kOneSum) {
    const float squares = r_last * r_last * ss + p_last * p_last * sq_x;
    const float total = squares + 2.0f * r_last * p_last * sx;
    if (!summed && total >= squares * (1.0f / 16.0f)) {  // the same in every thread: uniform
      summed = true;
      hs[0] = total * inv_l * inv_l;
    }
  }
  if (!summed) {
#pragma unroll
    for (int v = 0; v < VPT; ++v)
#pragma unroll
      for (int i = 0; i < 8; ++i) hs[0] += h[v][i] * h[v][i];
    RowSum<1>(hs, scratch);  // its barriers also publish scores[]
  }
  const float r = rsqrtf(hs[0] / d + a.eps);
  StoreNormed<VPT>(h, valid, col, r, a.gamma, a.out + static_cast<size_t>(k) * d);

  // 6. Mix weights of recorded rows (bank scores from phase 1 under kSummary).
  if (record >= 0) {
    float* alpha = a.mix_weights + static_cast<size_t>(record) * a.mix_stride + a.mix_offset;
    if (!mix) {
      if (threadIdx.x == 0) alpha[0] = 1.0f;
    } else {
      const float* bank_scores =
          kSummary ? a.summary_scores + summary_row(a.summary_index) * a.summary_stride : scores;
      for (int j = threadIdx.x; j <= nb; j += blockDim.x) {
        alpha[j] = __expf((j < nb ? bank_scores[j] : s_x) - mfin) * inv_l;
      }
    }
  }
}

// Launches one form: the phase-2 kernel for a summary_index, else the one-phase kernel with,
// beside a snapshot with later mixes, phase-1 blocks (one-block-per-SM forms only). In the
// snapshot kernel, each row's later mixes get the resident slots that the rows' own blocks leave
// free (at least one), so at batch 1 every query has its own SM and the boundary takes no longer
// than without phase 1; many rows fold several queries per block. Forked (phase1_only), the
// kernel runs beside the main stream's: it takes one block per SM and row, no more, since every
// block it adds takes a slot from them.
using BoundaryKernelFn = void (*)(ResidualBoundaryArgs, int);

// The one-phase kernel for a bank of nb slots. The decode form (one chunk per thread) has one
// instance per bank size kNbs (0 .. G: every Block AttnRes model of up to G + 1 blocks). With
// the per-slot tests resolved at run time, a 1B snapshot boundary with phase 1 at 64 rows ran
// 2.48 M warp instructions in 7.49 us; with them folded, 1.91 M in 7.39 us (ncu), and steps
// got faster (bench/BENCHMARKS.md run 22). The other forms keep the run-time one.
template <int VPT, int G, int kThreads, int kMinBlocks, int... kNbs>
BoundaryKernelFn OnePhaseKernel(int nb, std::integer_sequence<int, kNbs...>) {
  if constexpr (VPT == 1 && kMinBlocks == 1) {
    static constexpr BoundaryKernelFn kByNb[] = {
        ResidualBoundaryKernel<VPT, G, kThreads, kMinBlocks, false, kNbs>...};
    if (nb >= 0 && nb < static_cast<int>(sizeof...(kNbs))) return kByNb[nb];
  }
  return ResidualBoundaryKernel<VPT, G, kThreads, kMinBlocks, false, kNbAny>;
}

// Resident slots per row beside a snapshot boundary's own blocks (kernel y > 0), or per row of
// phase 1 alone (one block per SM and row: beside the main stream's kernels).
template <int VPT, int G, int kThreads, int kMinBlocks>
int Phase1SlotsPerRow(int rows, int threads, bool alone) {
  // Occupancy: the run-time form stands for its per-size instances (the same register cap).
  constexpr auto kAnyNb = ResidualBoundaryKernel<VPT, G, kThreads, kMinBlocks, false, kNbAny>;
  const int slots = alone ? NumSms() : std::max(ResidentBlocks<kAnyNb>(threads, 0), NumSms());
  return slots / rows - (alone ? 0 : 1);
}

// Phase 2 takes its one-reduction form (kOneSum): 1B Block b64 1836 us a step against 1841,
// b1 1125 against 1128 (bench/BENCHMARKS.md run 40). ATTNRES_PHASE2_ONE_SUM=0: two reductions,
// to measure it.
bool Phase2OneSum() {
  static const bool on = EnvOn("ATTNRES_PHASE2_ONE_SUM");
  return on;
}

template <int VPT, int G, int kThreads, int kMinBlocks>
cudaError_t LaunchForm(const ResidualBoundaryArgs& a, int threads, cudaStream_t stream) {
  if (a.summary_index >= 0) {
    return LaunchMaybePdl(
        !a.after_join,
        Phase2OneSum() ? ResidualBoundaryKernel<VPT, G, kThreads, kMinBlocks, true, kNbAny, true>
                       : ResidualBoundaryKernel<VPT, G, kThreads, kMinBlocks, true>,
        dim3(a.num_rows), dim3(threads), 0, stream, a, 0);
  }
  int per_block = 0, blocks = 0;
  if constexpr (kMinBlocks == 1) {
    if (a.summary_queries > 0) {
      const int spare =
          Phase1SlotsPerRow<VPT, G, kThreads, kMinBlocks>(a.num_rows, threads, a.phase1_only);
      blocks = std::min(std::max(spare, 1), a.summary_queries);
      per_block = (a.summary_queries + blocks - 1) / blocks;
      blocks = (a.summary_queries + per_block - 1) / per_block;
    }
  }
  const int own = a.phase1_only ? 0 : 1;
  return LaunchMaybePdl(!a.after_join,
                        OnePhaseKernel<VPT, G, kThreads, kMinBlocks>(
                            a.bank_count, std::make_integer_sequence<int, G + 1>{}),
                        dim3(a.num_rows, own + blocks), dim3(threads), 0, stream, a, per_block);
}

// Threads of a row's block that holds vpt chunks of 8 per thread (whole warps).
int ThreadsFor(int d, int vpt) {
  const int n = (d / 8 + vpt - 1) / vpt;
  return std::max(32, (n + 31) / 32 * 32);
}

}  // namespace

cudaError_t ResidualBoundary(const ResidualBoundaryArgs& a, cudaStream_t stream) {
  if (a.num_rows == 0) return cudaSuccess;
  if (a.d % 8 != 0 || a.d > 8192 || a.bank_count + 1 > kMaxMixSources) {
    return cudaErrorInvalidValue;
  }
  const bool summaries = a.summary_h && a.summary_ml && (!a.mix_weights || a.summary_scores);
  if (a.summary_queries > 0 &&
      (a.snapshot == a.phase1_only || !a.summary_u || !summaries ||
       a.summary_stride < a.bank_count + 1 || (a.bank_count > 0 && !a.u))) {
    return cudaErrorInvalidValue;
  }
  if (a.phase1_only && (a.summary_queries < 1 || a.delta || !a.prefix)) {
    return cudaErrorInvalidValue;
  }
  if (a.summary_index >= 0 && (a.summary_queries > 0 || !a.u || !summaries ||
                               a.bank_count < 1 || a.summary_stride < a.bank_count)) {
    return cudaErrorInvalidValue;
  }
  const int chunks = a.d / 8;
  const bool phase1 = a.summary_queries > 0;
  // Prefill: each row's sources bulk-copied into shared memory (attn_res_staged.cu) where they
  // fit: every phase-1 boundary of many rows, and the one-phase mixes of very many
  // (StagedOnePhaseWanted); the register forms below for the rest.
  if (a.num_rows >= (phase1 ? kManyRows : kVeryManyRows) && StagedBoundaryServes(a)) {
    return StagedBoundary(a, stream);
  }
  // Few rows (and the other phase-1 boundaries): one chunk per thread (the most loads in flight
  // per row). Many rows: two, so a d=4096 row takes 8 warps and each reduction is cheaper;
  // blocks overlap on each SM instead. Very many rows (prefill): four, in 4-warp blocks, 4 per
  // SM (see kVeryManyRows); phase-2 mixes too. Wider rows (d > 4096) hold half a group per
  // thread to stay within the register budget.
  if (chunks > kMaxThreads) {
    return LaunchForm<2, kGroup / 2, kMaxThreads, 1>(a, ThreadsFor(a.d, 2), stream);
  }
  if (a.num_rows < kManyRows || chunks <= 64 || phase1) {
    return LaunchForm<1, kGroup, kMaxThreads, 1>(a, ThreadsFor(a.d, 1), stream);
  }
  if (a.num_rows >= kVeryManyRows) {
    return LaunchForm<4, kGroup / 4, kMaxThreads / 4, 4>(a, ThreadsFor(a.d, 4), stream);
  }
  return LaunchForm<2, kGroup, kMaxThreads / 2, 2>(a, ThreadsFor(a.d, 2), stream);
}

bool Phase1FitsBeside(int rows, int d, int queries) {
  if (rows < 1 || queries < 1 || d % 8 != 0 || d > 8192) return false;
  // The two-phase forms of ResidualBoundary.
  const int spare =
      d / 8 > kMaxThreads
          ? Phase1SlotsPerRow<2, kGroup / 2, kMaxThreads, 1>(rows, ThreadsFor(d, 2), false)
          : Phase1SlotsPerRow<1, kGroup, kMaxThreads, 1>(rows, ThreadsFor(d, 1), false);
  return spare >= queries;
}

}  // namespace attnres::kernels
