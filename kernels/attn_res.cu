// The fused AttnRes residual boundary (ops.h ResidualBoundary): prefix += delta (bf16), the mix
// over bank + prefix in fp32 with an online softmax over groups of 8 bank slots (cached inverse
// RMS of bank rows), the optional snapshot into the next free slot, and the following RMSNorm.
// One block per row; each thread owns VPT 16-byte chunks of the row, kept in registers.
#include <cmath>

#include "kernels/common.cuh"
#include "kernels/ops.h"

namespace attnres::kernels {
namespace {

constexpr int kGroup = 8;  // bank slots scored per block reduction

__device__ inline void LoadF32x8(const float* p, float (&v)[8]) {
  const float4 a = *reinterpret_cast<const float4*>(p);
  const float4 b = *reinterpret_cast<const float4*>(p + 4);
  v[0] = a.x; v[1] = a.y; v[2] = a.z; v[3] = a.w;
  v[4] = b.x; v[5] = b.y; v[6] = b.z; v[7] = b.w;
}

template <int VPT>
__global__ void __launch_bounds__(512) ResidualBoundaryKernel(ResidualBoundaryArgs a) {
  __shared__ float scratch[32 * (kGroup + 2)];
  __shared__ float scores[kMaxMixSources];
  const int k = blockIdx.x;
  const int t = a.rows ? a.rows[k] : k;
  const int d = a.d, nb = a.bank_count;
  const size_t row = static_cast<size_t>(t) * d;
  const bool mix = a.u != nullptr && nb > 0;

  int col[VPT];
  bool valid[VPT];
  float x[VPT][8], u[VPT][8];
  float sq = 0.0f, dotx = 0.0f;
#pragma unroll
  for (int v = 0; v < VPT; ++v) {
    col[v] = (threadIdx.x + v * blockDim.x) * 8;
    valid[v] = col[v] < d;
#pragma unroll
    for (int i = 0; i < 8; ++i) x[v][i] = u[v][i] = 0.0f;
    if (!valid[v]) continue;
    if (a.delta) {
      LoadBf16x8(a.delta + row + col[v], x[v]);
      if (!a.prefix_empty) {
        float p[8];
        LoadBf16x8(a.prefix + row + col[v], p);
#pragma unroll
        for (int i = 0; i < 8; ++i) x[v][i] = __bfloat162float(__float2bfloat16_rn(p[i] + x[v][i]));
      }
    } else {
      LoadBf16x8(a.prefix + row + col[v], x[v]);
    }
    if (mix) LoadF32x8(a.u + col[v], u[v]);
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      sq += x[v][i] * x[v][i];
      dotx += u[v][i] * x[v][i];
    }
  }
  // The new prefix lands in the snapshot slot (a fresh one) or back in the prefix.
  if (a.delta || a.snapshot) {
    bf16* dst = a.snapshot ? a.bank + (static_cast<size_t>(nb) * a.T + t) * d : a.prefix + row;
#pragma unroll
    for (int v = 0; v < VPT; ++v) {
      if (valid[v]) StoreBf16x8(dst + col[v], x[v]);
    }
  }

  float h[VPT][8];
  float sq_x = 0.0f;  // sum of x^2 over the row
  const bool record = a.mix_weights != nullptr && a.record_row[t] >= 0;
  float* alpha = record ? a.mix_weights + static_cast<size_t>(a.record_row[t]) * a.mix_stride +
                              a.mix_offset
                        : nullptr;
  if (!mix) {
    float r[1] = {sq};
    BlockSumN<1>(r, scratch);
    sq_x = r[0];
#pragma unroll
    for (int v = 0; v < VPT; ++v)
#pragma unroll
      for (int i = 0; i < 8; ++i) h[v][i] = x[v][i];
    if (alpha && a.u && threadIdx.x == 0) alpha[0] = 1.0f;
  } else {
    float m = -INFINITY, l = 0.0f, s_x = 0.0f;
#pragma unroll
    for (int v = 0; v < VPT; ++v)
#pragma unroll
      for (int i = 0; i < 8; ++i) h[v][i] = 0.0f;
    for (int g0 = 0; g0 < nb; g0 += kGroup) {
      uint4 raw[kGroup][VPT];
      float red[kGroup + 2];
#pragma unroll
      for (int j = 0; j < kGroup; ++j) {
        red[j] = 0.0f;
        if (g0 + j >= nb) continue;
        const bf16* src = a.bank + (static_cast<size_t>(g0 + j) * a.T + t) * d;
#pragma unroll
        for (int v = 0; v < VPT; ++v) {
          if (!valid[v]) continue;
          raw[j][v] = *reinterpret_cast<const uint4*>(src + col[v]);
          const __nv_bfloat162* b2 = reinterpret_cast<const __nv_bfloat162*>(&raw[j][v]);
#pragma unroll
          for (int i = 0; i < 4; ++i) {
            const float2 f = __bfloat1622float2(b2[i]);
            red[j] += u[v][2 * i] * f.x + u[v][2 * i + 1] * f.y;
          }
        }
      }
      red[kGroup] = g0 == 0 ? sq : 0.0f;
      red[kGroup + 1] = g0 == 0 ? dotx : 0.0f;
      BlockSumN<kGroup + 2>(red, scratch);
      if (g0 == 0) {
        sq_x = red[kGroup];
        s_x = red[kGroup + 1] * rsqrtf(sq_x / d + a.eps);
      }
      float gmax = m;
#pragma unroll
      for (int j = 0; j < kGroup; ++j) {
        if (g0 + j < nb) {
          red[j] *= a.bank_inv_rms[static_cast<size_t>(g0 + j) * a.T + t];
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
      for (int j = 0; j < kGroup; ++j) {
        if (g0 + j >= nb) continue;
        const float p = __expf(red[j] - gmax);
        l += p;
#pragma unroll
        for (int v = 0; v < VPT; ++v) {
          if (!valid[v]) continue;
          const __nv_bfloat162* b2 = reinterpret_cast<const __nv_bfloat162*>(&raw[j][v]);
#pragma unroll
          for (int i = 0; i < 4; ++i) {
            const float2 f = __bfloat1622float2(b2[i]);
            h[v][2 * i] += p * f.x;
            h[v][2 * i + 1] += p * f.y;
          }
        }
      }
      m = gmax;
    }
    // The prefix is the last source.
    const float mfin = fmaxf(m, s_x);
    const float rescale = __expf(m - mfin), px = __expf(s_x - mfin);
    l = l * rescale + px;
    const float inv_l = 1.0f / l;
#pragma unroll
    for (int v = 0; v < VPT; ++v)
#pragma unroll
      for (int i = 0; i < 8; ++i) h[v][i] = (h[v][i] * rescale + px * x[v][i]) * inv_l;
    if (alpha) {
      __syncthreads();  // scores[] written by thread 0
      for (int j = threadIdx.x; j <= nb; j += blockDim.x) {
        alpha[j] = __expf((j < nb ? scores[j] : s_x) - mfin) * inv_l;
      }
    }
  }
  if (a.snapshot && threadIdx.x == 0) {
    a.bank_inv_rms[static_cast<size_t>(nb) * a.T + t] = rsqrtf(sq_x / d + a.eps);
  }

  // RMSNorm of h with gamma -> out.
  float hs[1] = {0.0f};
#pragma unroll
  for (int v = 0; v < VPT; ++v)
#pragma unroll
    for (int i = 0; i < 8; ++i) hs[0] += h[v][i] * h[v][i];
  if (mix) {
    BlockSumN<1>(hs, scratch);
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
  if (chunks <= 512) {
    ResidualBoundaryKernel<1><<<a.num_rows, threads_for(1), 0, stream>>>(a);
  } else {
    ResidualBoundaryKernel<2><<<a.num_rows, threads_for(2), 0, stream>>>(a);
  }
  return cudaGetLastError();
}

}  // namespace attnres::kernels
