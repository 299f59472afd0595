// One attention head's RoPE (rotate-half form, from the step's cos/sin table) with the optional
// Qwen3 per-head RMSNorm, by one warp: lane i handles the pairs (i + 32j, i + 32j + hd/2). Shared
// by the RoPE + KV-write kernel and the decode attention that fuses it, so both round the same
// fp32 values to bf16 (the explicit intrinsics keep the compiler from contracting them
// differently in the two places). Internal to kernels/.
#pragma once

#include "kernels/common.cuh"
#include "kernels/ops.h"

namespace attnres::kernels {

constexpr int kMaxRopePairsPerLane = 4;  // hd <= 256

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
    const float2 cs = rope[i];
    dst[i] = __float2bfloat16_rn(__fmaf_rn(x, cs.x, -__fmul_rn(y, cs.y)));
    dst[i + half] = __float2bfloat16_rn(__fmaf_rn(y, cs.x, __fmul_rn(x, cs.y)));
  }
}

}  // namespace attnres::kernels
