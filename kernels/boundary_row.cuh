// Per-row helpers shared by the residual-boundary kernels (attn_res.cu, attn_res_staged.cu), whose
// blocks each own one row of d values: the block-wide sums and fp32 chunk access. Internal to
// kernels/ (not part of the ops.h contract).
#pragma once

#include "kernels/common.cuh"

namespace attnres::kernels {

// 8 fp32 through two 16-byte accesses (constants: read-only path).
__device__ inline void LoadF32x8(const float* p, float (&v)[8]) {
  const float4 a = __ldg(reinterpret_cast<const float4*>(p));
  const float4 b = __ldg(reinterpret_cast<const float4*>(p + 4));
  v[0] = a.x;
  v[1] = a.y;
  v[2] = a.z;
  v[3] = a.w;
  v[4] = b.x;
  v[5] = b.y;
  v[6] = b.z;
  v[7] = b.w;
}

__device__ inline void StoreF32x8(float* p, const float (&v)[8]) {
  reinterpret_cast<float4*>(p)[0] = make_float4(v[0], v[1], v[2], v[3]);
  reinterpret_cast<float4*>(p)[1] = make_float4(v[4], v[5], v[6], v[7]);
}

// Values per padded row of RowSum's scratch: up to 12 sums at once (a bank group of 8 slots plus
// x's dot and its square sum, in 16-byte loads). Scratch: (warps + 1) * kRowSumPad floats.
constexpr int kRowSumPad = 12;

// Sums N values over the block (every thread gets the totals): warp shuffles, then one padded
// row of partials per warp in shared memory. With up to 8 warps every thread adds the rows
// (16-byte loads); with more, warp 0 adds them across its lanes and publishes the totals: one
// more barrier, but not 16 warps each adding 16 rows (the decode form's 512 threads). (A
// reduce-scatter butterfly, 16 shuffles instead of 50 for 10 values, measured slower: its
// selects cost more than the shuffles it saves, bench/BENCHMARKS.md run 17.)
template <int N>
__device__ inline void RowSum(float (&v)[N], float* scratch) {
  static_assert(N <= kRowSumPad);
  constexpr int NP = (N + 3) / 4 * 4;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, warps = blockDim.x >> 5;
#pragma unroll
  for (int i = 0; i < N; ++i) v[i] = WarpSum(v[i]);
  __syncthreads();  // scratch may still be read by a previous call
  if (lane == 0) {
#pragma unroll
    for (int i = 0; i < N; ++i) scratch[warp * kRowSumPad + i] = v[i];
  }
  __syncthreads();
  float s[NP];
  if (warps > 8) {
    float* totals = scratch + warps * kRowSumPad;
    if (warp == 0) {
#pragma unroll
      for (int i = 0; i < N; ++i) {
        const float x = WarpSum(lane < warps ? scratch[lane * kRowSumPad + i] : 0.0f);
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
        const float4 f = reinterpret_cast<const float4*>(scratch + w * kRowSumPad)[q];
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

// The row's RMSNorm output: out[c] = bf16((h[c] * r) * gamma[c]) for this thread's VPT chunks of 8
// (chunk v at column col[v], skipped where !valid[v]); r = rsqrt(mean(h^2) + eps).
template <int VPT>
__device__ __forceinline__ void StoreNormed(const float (&h)[VPT][8], const bool (&valid)[VPT],
                                            const int (&col)[VPT], float r, const float* gamma,
                                            __nv_bfloat16* out) {
#pragma unroll
  for (int v = 0; v < VPT; ++v) {
    if (!valid[v]) continue;
    float g[8], y[8];
    LoadF32x8(gamma + col[v], g);
#pragma unroll
    for (int i = 0; i < 8; ++i) y[i] = (h[v][i] * r) * g[i];
    StoreBf16x8(out + col[v], y);
  }
}

}  // namespace attnres::kernels
