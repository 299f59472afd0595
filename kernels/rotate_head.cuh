// RoPE (rotate-half form, from the step's cos/sin table): one attention head with the optional
// Qwen3 per-head RMSNorm, by one warp (lane i handles the pairs (i + 32j, i + 32j + hd/2)), and
// the pair rotation and K/V slot lookup under it. Shared by the RoPE + KV-write kernel, the
// decode attention that fuses it and the qkv Gemv's RoPE epilogue, so all round the same fp32
// values to bf16 (the explicit intrinsics keep the compiler from contracting them differently
// in different places). Internal to kernels/.
#pragma once

#include "kernels/common.cuh"
#include "kernels/ops.h"

namespace attnres::kernels {

constexpr int kMaxRopePairsPerLane = 4;  // hd <= 256

// The rotate-half pair (x, y) = dims (i, i + hd/2) of a head by (cos, sin): lo and hi in bf16.
// Every RoPE writer rounds through here (RotateHead, the qkv Gemv's epilogue).
__device__ __forceinline__ void RotatePair(float x, float y, float2 cs, bf16* lo, bf16* hi) {
  *lo = __float2bfloat16_rn(__fmaf_rn(x, cs.x, -__fmul_rn(y, cs.y)));
  *hi = __float2bfloat16_rn(__fmaf_rn(y, cs.x, __fmul_rn(x, cs.y)));
}

// Element offset of token row t's [KV][hd] slot in RopeKvWrite's caches (the step's uploaded
// page tables: readable before the wait).
__device__ __forceinline__ size_t KvSlot(const RopeKvWriteArgs& a, int t) {
  const int pos = a.positions[t];
  const int page = a.kv_page_indices[a.kv_page_indptr[a.row_seq[t]] + pos / a.page_size];
  return (static_cast<size_t>(page) * a.page_size + pos % a.page_size) * a.KV * a.hd;
}

// src [hd] bf16 (the previous kernel's output: plain loads, after its wait), rope [hd/2] (cos,
// sin), norm [hd] fp32 or null; dst [hd] bf16 in global or shared memory.
__device__ inline void RotateHead(const bf16* src, const float2* rope, const float* norm, int hd,
                                  float eps, bf16* dst) {
  const int lane = threadIdx.x & 31, half = hd / 2;
  float a[kMaxRopePairsPerLane], b[kMaxRopePairsPerLane];
  float sq = 0.0f;
#pragma unroll
  for (int j = 0; j < kMaxRopePairsPerLane; ++j) {
    const int i = lane + 32 * j;
    a[j] = b[j] = 0.0f;
    if (i < half) {
      a[j] = __bfloat162float(src[i]);
      b[j] = __bfloat162float(src[i + half]);
      sq = __fmaf_rn(a[j], a[j], __fmaf_rn(b[j], b[j], sq));
    }
  }
  float r = 1.0f;
  if (norm) r = rsqrtf(WarpSum(sq) / hd + eps);
#pragma unroll
  for (int j = 0; j < kMaxRopePairsPerLane; ++j) {
    const int i = lane + 32 * j;
    if (i >= half) continue;
    float x = a[j], y = b[j];
    if (norm) {
      x = __fmul_rn(__fmul_rn(x, r), norm[i]);
      y = __fmul_rn(__fmul_rn(y, r), norm[i + half]);
    }
    RotatePair(x, y, rope[i], dst + i, dst + i + half);
  }
}

}  // namespace attnres::kernels
