// The fused AttnRes residual boundary (ops.h ResidualBoundary): prefix += delta (bf16), the mix
// over bank + prefix in fp32 with an online softmax over groups of 8 bank slots (the inverse RMS
// of bank rows cached at snapshot time), the optional snapshot into the next free slot, and the
// following RMSNorm. One block per row, each thread owning VPT 16-byte chunks kept in registers;
// every global load of a row (sources, first bank group, cached RMS) is issued before any use.
#include <cmath>

#include "kernels/common.cuh"
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

__device__ inline void LoadF32x8(const float* p, float (&v)[8]) {
  const float4 a = __ldg(reinterpret_cast<const float4*>(p));
  const float4 b = __ldg(reinterpret_cast<const float4*>(p + 4));
  v[0] = a.x; v[1] = a.y; v[2] = a.z; v[3] = a.w;
  v[4] = b.x; v[5] = b.y; v[6] = b.z; v[7] = b.w;
}

// Sums N values over the block (every thread gets the totals): warp shuffles, then one padded
// row of partials per warp in shared memory. With up to 8 warps every thread adds the rows
// (16-byte loads); with more, warp 0 adds them across its lanes and publishes the totals: one
// more barrier, but not 16 warps each adding 16 rows (the decode form's 512 threads).
constexpr int kPad = (kGroup + 2 + 3) / 4 * 4;
template <int N>
__device__ inline void RowSum(float (&v)[N], float* scratch) {
  static_assert(N <= kPad);
  constexpr int NP = (N + 3) / 4 * 4;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, warps = blockDim.x >> 5;
#pragma unroll
  for (int i = 0; i < N; ++i) v[i] = WarpSum(v[i]);
  __syncthreads();  // scratch may still be read by a previous call
  if (lane == 0) {
#pragma unroll
    for (int i = 0; i < N; ++i) scratch[warp * kPad + i] = v[i];
  }
  __syncthreads();
  float s[NP];
  if (warps > 8) {
    float* totals = scratch + warps * kPad;
    if (warp == 0) {
#pragma unroll
      for (int i = 0; i < N; ++i) {
        const float x = WarpSum(lane < warps ? scratch[lane * kPad + i] : 0.0f);
        if (lane == 0) totals[i] = x;
      }
    }
    __syncthreads();
#pragma unroll
    for (int q = 0; q < NP / 4; ++q) {
      const float4 f = reinterpret_cast<const float4*>(totals)[q];
      s[4 * q] = f.x;
      s[4 * q + 1] = f.y;
      s[4 * q + 2] = f.z;
      s[4 * q + 3] = f.w;
    }
  } else {
#pragma unroll
    for (int i = 0; i < NP; ++i) s[i] = 0.0f;
    for (int w = 0; w < warps; ++w) {
#pragma unroll
      for (int q = 0; q < NP / 4; ++q) {
        const float4 f = reinterpret_cast<const float4*>(scratch + w * kPad)[q];
        s[4 * q] += f.x;
        s[4 * q + 1] += f.y;
        s[4 * q + 2] += f.z;
        s[4 * q + 3] += f.w;
      }
    }
  }
#pragma unroll
  for (int i = 0; i < N; ++i) v[i] = s[i];
}

template <int VPT, int G, int kThreads, int kMinBlocks>
__global__ void __launch_bounds__(kThreads, kMinBlocks) ResidualBoundaryKernel(const ResidualBoundaryArgs a) {
  __shared__ __align__(16) float scratch[(kThreads / 32 + 1) * kPad];  // rows, then totals
  __shared__ float scores[kMaxMixSources];
  const int k = blockIdx.x;
  const int t = a.rows ? __ldg(a.rows + k) : k;
  const int d = a.d, nb = a.bank_count;
  const size_t row = static_cast<size_t>(t) * d;
  const bool mix = a.u != nullptr && nb > 0;
  const bool may_record = a.mix_weights != nullptr && a.u != nullptr;
  const int record = may_record ? __ldg(a.record_row + t) : -1;
  // One chunk per thread (few rows, latency-bound): every load but delta's is issued before the
  // wait, and the query and gamma are held from the start. Many rows keep the plain order (the
  // early form measured 2-10% slower at 4096 rows, bench/BENCHMARKS.md run 12).
  constexpr bool kEarly = VPT == 1;
  if constexpr (!kEarly) {
    WaitForPrevious();
    LetNextStart();
  }

  // 1. Issue every load of the row. kEarly: before the wait (kernels/common.cuh's rule) the
  // prefix, the first bank group and its RMS (earlier boundaries wrote them) and the constants;
  // after it delta, the previous kernel's output. The bank's DRAM latency hides behind that
  // kernel's tail.
  int col[VPT];
  bool valid[VPT];
  uint4 xr[VPT], pr[VPT];
  float uq[kEarly ? 8 : 1], gq[kEarly ? 8 : 1];
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
  uint4 raw[G][VPT];
  float inv[G];
  auto load_group = [&](int g0) {
#pragma unroll
    for (int j = 0; j < G; ++j) {
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
  if (mix) load_group(0);
  // This thread's query or gamma chunk v: held since the start (kEarly), else reloaded
  // (L1/L2-resident; not holding them spares registers).
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
      if (mix) LoadF32x8(a.u + col[0], uq);
      LoadF32x8(a.gamma + col[0], gq);
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

  // 3. The mix: online softmax over groups of bank slots, the prefix last.
  float h[VPT][8];
  float sq_x = 0.0f, inv_l = 1.0f, mfin = 0.0f, s_x = 0.0f;
  if (!mix) {
    float r1[1] = {sq};
    RowSum<1>(r1, scratch);
    sq_x = r1[0];
#pragma unroll
    for (int v = 0; v < VPT; ++v) Bf16x8ToF32(xr[v], h[v]);
  } else {
    float m = -INFINITY, l = 0.0f;
#pragma unroll
    for (int v = 0; v < VPT; ++v)
#pragma unroll
      for (int i = 0; i < 8; ++i) h[v][i] = 0.0f;
    for (int g0 = 0; g0 < nb; g0 += G) {
      if (g0 > 0) load_group(g0);
      float red[G + 2];
#pragma unroll
      for (int j = 0; j < G + 2; ++j) red[j] = 0.0f;
#pragma unroll
      for (int v = 0; v < VPT; ++v) {
        if (!valid[v]) continue;
        float uv[8], f[8];
        constant_chunk(a.u, uq, v, uv);
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
      float gmax = m;
#pragma unroll
      for (int j = 0; j < G; ++j) {
        if (g0 + j < nb) {
          red[j] *= inv[j];
          gmax = fmaxf(gmax, red[j]);
          if (threadIdx.x == 0) scores[g0 + j] = red[j];
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
    mfin = fmaxf(m, s_x);
    const float rescale = __expf(m - mfin), px = __expf(s_x - mfin);
    l = l * rescale + px;
    inv_l = 1.0f / l;
#pragma unroll
    for (int v = 0; v < VPT; ++v) {
      float x[8];
      Bf16x8ToF32(xr[v], x);
#pragma unroll
      for (int i = 0; i < 8; ++i) h[v][i] = (h[v][i] * rescale + px * x[i]) * inv_l;
    }
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
  if (mix) {
#pragma unroll
    for (int v = 0; v < VPT; ++v)
#pragma unroll
      for (int i = 0; i < 8; ++i) hs[0] += h[v][i] * h[v][i];
    RowSum<1>(hs, scratch);  // its barriers also publish scores[]
  } else {
    hs[0] = sq_x;
  }
  const float r = rsqrtf(hs[0] / d + a.eps);
  bf16* out = a.out + static_cast<size_t>(k) * d;
#pragma unroll
  for (int v = 0; v < VPT; ++v) {
    if (!valid[v]) continue;
    float g[8], y[8];
    constant_chunk(a.gamma, gq, v, g);
#pragma unroll
    for (int i = 0; i < 8; ++i) y[i] = (h[v][i] * r) * g[i];
    StoreBf16x8(out + col[v], y);
  }

  // 6. Mix weights of recorded rows.
  if (record >= 0) {
    float* alpha = a.mix_weights + static_cast<size_t>(record) * a.mix_stride + a.mix_offset;
    if (!mix) {
      if (threadIdx.x == 0) alpha[0] = 1.0f;
    } else {
      for (int j = threadIdx.x; j <= nb; j += blockDim.x) {
        alpha[j] = __expf((j < nb ? scores[j] : s_x) - mfin) * inv_l;
      }
    }
  }
}

}  // namespace

cudaError_t ResidualBoundary(const ResidualBoundaryArgs& a, cudaStream_t stream) {
  if (a.num_rows == 0) return cudaSuccess;
  if (a.d % 8 != 0 || a.d > 8192 || a.bank_count + 1 > kMaxMixSources) {
    return cudaErrorInvalidValue;
  }
  const int chunks = a.d / 8;
  auto threads_for = [&](int vpt) {
    const int n = (chunks + vpt - 1) / vpt;
    return std::max(32, (n + 31) / 32 * 32);
  };
  // Few rows: one chunk per thread (the most loads in flight per row). Many rows: two, so a
  // d=4096 row takes 8 warps and each reduction is cheaper; blocks overlap on each SM instead.
  // Very many rows (prefill): four, in 4-warp blocks, 4 per SM (see kVeryManyRows). Wider rows
  // (d > 4096) hold half a group per thread to stay within the register budget.
  if (chunks <= kMaxThreads && (a.num_rows < kManyRows || chunks <= 64)) {
    return LaunchPdl(ResidualBoundaryKernel<1, kGroup, kMaxThreads, 1>, a.num_rows, threads_for(1),
                     0, stream, a);
  }
  if (chunks <= kMaxThreads && a.num_rows >= kVeryManyRows) {
    return LaunchPdl(ResidualBoundaryKernel<4, kGroup / 4, kMaxThreads / 4, 4>, a.num_rows,
                     threads_for(4), 0, stream, a);
  }
  if (chunks <= kMaxThreads) {
    return LaunchPdl(ResidualBoundaryKernel<2, kGroup, kMaxThreads / 2, 2>, a.num_rows,
                     threads_for(2), 0, stream, a);
  }
  return LaunchPdl(ResidualBoundaryKernel<2, kGroup / 2, kMaxThreads, 1>, a.num_rows,
                   threads_for(2), 0, stream, a);
}

}  // namespace attnres::kernels
