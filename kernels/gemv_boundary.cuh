// The residual boundary folded into the decode Gemvs around it (ops.h GemvAddResidual,
// GemvNormed): what the producer's epilogue and the consumer's prologue do, for gemv.cu's kernel
// (kWarps warps per block, kGemvTileCols output columns per tile). Internal to kernels/ (not part
// of the ops.h contract).
#pragma once

#include "kernels/boundary_row.cuh"
#include "kernels/common.cuh"
#include "kernels/ops.h"

namespace attnres::kernels {

// What the kernel does around its product (ops.h): its input as given, or normalized from the
// stream (the standard boundary, or the phase-2 AttnRes merge); and its output as written, or
// added to the stream with the next boundary's row statistics (kResidual).
enum class GemvIn { kPlain, kNorm, kMerge };
struct GemvFusion {
  GemvNormIn in;
  GemvResidual residual;
  RopeKvWriteArgs rope;  // GemmOut::kRopeKv: where the rotated q and the new K/V go
};

// Rows of the normalized input in shared memory are padded by 8 bf16 so the 8 x rows a warp's
// lanes read (16 bytes each at the same k) fall in different banks.
constexpr int kXsPad = 8;
// Chunks of 8 of row 0 each thread holds from the start of the prologue: all of a 4096-wide row
// (512 chunks over 256 threads); wider rows load the rest in turn.
constexpr int kRow0Chunks = 2;
constexpr int kMaxNormedSmem = 72 * 1024;
__host__ __device__ constexpr size_t NormedSmemBytes(int M, int K) {
  return static_cast<size_t>(M) * (K + kXsPad) * sizeof(bf16);
}

// GemvAddResidual's epilogue, in place of StoreTile: thread (j, l) of the first four warps owns
// output (m, n) as there. x = the stream's new value goes to prefix; the tile's 16 columns of row
// m (8 lanes of warp j and 8 of warp j ^ 2) are summed by shuffles in a fixed order, then the two
// halves in shared memory, and stored as stats[m, s, tile].
template <int kWarps>
__device__ __forceinline__ void StoreResidualTile(const float (&acc)[2][4], const GemvResidual& r,
                                                  int M, int N, int c0) {
  __shared__ float partial[kWarps][4][32];
  __shared__ float upper[2][4][kBoundaryStats];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
#pragma unroll
  for (int j = 0; j < 4; ++j) partial[warp][j][lane] = acc[0][j] + acc[1][j];
  __syncthreads();
  if (threadIdx.x >= 4 * 32) return;
  const int j = threadIdx.x >> 5, l = threadIdx.x & 31;
  float s = 0.0f;
#pragma unroll
  for (int v = 0; v < kWarps; ++v) s += partial[v][j][l];
  const int n = c0 + (l >> 2) + 8 * (j >> 1), m = 2 * (l & 3) + (j & 1);
  float st[kBoundaryStats] = {};
  if (m < M && n < N) {
    const size_t o = static_cast<size_t>(m) * N + n;
    const float y = __bfloat162float(__float2bfloat16_rn(s));  // delta, as Gemv stores it
    // ResidualBoundary's x: bf16(prefix + delta) in fp32, or delta after a snapshot.
    const float x = r.prefix_empty
                        ? y
                        : __bfloat162float(__float2bfloat16_rn(__bfloat162float(r.prefix[o]) + y));
    r.prefix[o] = __float2bfloat16_rn(x);
    st[0] = x * x;
    if (r.u) {
      const float h = r.summary_h[o];
      st[1] = __ldg(r.u + n) * x;
      st[2] = h * x;
      st[3] = h * h;
    }
  }
#pragma unroll
  for (int i = 0; i < kBoundaryStats; ++i) {
#pragma unroll
    for (int o = 4; o < 32; o <<= 1) st[i] += __shfl_xor_sync(0xffffffffu, st[i], o);
  }
  if (j >= 2 && l < 4) {
#pragma unroll
    for (int i = 0; i < kBoundaryStats; ++i) upper[j & 1][l][i] = st[i];
  }
  asm volatile("bar.sync 1, 128;" ::: "memory");  // the four storing warps only
  if (j >= 2 || l >= 4 || m >= M) return;
  const int tiles = (N + kGemvTileCols - 1) / kGemvTileCols, stats = r.u ? kBoundaryStats : 1;
  for (int i = 0; i < stats; ++i) {
    r.stats[(static_cast<size_t>(m) * kBoundaryStats + i) * tiles + blockIdx.x] =
        st[i] + upper[j][l][i];
  }
}

// The consumer's prologue (after the wait): xs[m] = ResidualBoundary's out for stream row m,
// bf16, rows kXsPad apart. Warp m completes row m's statistics (lanes over tiles, then a
// shuffle tree: the same order in every block, so every block derives the same bits) into
// per-row coefficients; then each thread normalizes its 8-column chunks.
template <GemvIn kIn, int kWarps>
__device__ void NormalizeInput(const GemvNormIn& in, int M, int K, bf16* xs) {
  constexpr bool kMix = kIn == GemvIn::kMerge;
  constexpr int kStats = kMix ? kBoundaryStats : 1;
  // Row m: h = (c H + p x) * inv_l (the merge; standard: c = 0, p = inv_l = 1), out = h r g.
  // r < 0 marks a row whose expanded sum of h^2 nearly cancels (summed directly below).
  __shared__ float coef[kGemvMaxRows][4];                             // c, p, inv_l, r
  __shared__ __align__(16) float scratch[(kWarps + 1) * kRowSumPad];  // RowSum's
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int chunks = K / 8;
  // Row 0's stream chunks (every row of a batch-1 step) are requested first, so their L2 round
  // trip overlaps the statistics' instead of following it.
  uint4 x0[kRow0Chunks];
#pragma unroll
  for (int i = 0; i < kRow0Chunks; ++i) {
    const int ch = threadIdx.x + i * blockDim.x;
    if (ch < chunks) x0[i] = LoadProduced(in.prefix + 8 * ch);
  }
  if (warp < M) {
    const int m = warp;
    float t[kStats];
#pragma unroll
    for (int i = 0; i < kStats; ++i) {
      const float* src = in.stats + (static_cast<size_t>(m) * kBoundaryStats + i) * in.tiles;
      float a = 0.0f;
      for (int k = lane; k < in.tiles; k += 32) a += LoadProduced(src + k);
      t[i] = WarpSum(a);
    }
    if (lane == 0) {
      const float sq = t[0];
      float c = 0.0f, p = 1.0f, inv_l = 1.0f, hs = sq;
      bool direct = false;
      if constexpr (kMix) {
        const float s_x = t[1] * rsqrtf(sq / K + in.eps);
        const float* ml = reinterpret_cast<const float*>(in.summary_ml + m);
        const float mx = LoadProduced(ml), l = LoadProduced(ml + 1);
        const float mfin = fmaxf(mx, s_x);
        c = __expf(mx - mfin);
        p = __expf(s_x - mfin);
        inv_l = 1.0f / (l * c + p);
        const float pos = c * c * t[3] + p * p * sq;
        const float sum = pos + 2.0f * c * p * t[2];
        hs = sum * inv_l * inv_l;
        direct = !(sum >= pos * (1.0f / 256.0f));  // lost 8 or more bits to cancellation
      }
      coef[m][0] = c;
      coef[m][1] = p;
      coef[m][2] = inv_l;
      coef[m][3] = direct ? -1.0f : rsqrtf(hs / K + in.eps);
    }
  }
  __syncthreads();
  // h's chunk (fp32) of row m at columns 8 ch .. 8 ch + 7 from the stream's bf16 x there (raw:
  // row 0's preloaded chunk, else loaded here).
  auto h_chunk = [&](int m, int ch, const uint4* raw, float(&h)[8]) {
    const size_t at = static_cast<size_t>(m) * K + 8 * ch;
    float x[8];
    Bf16x8ToF32(raw ? *raw : LoadProduced(in.prefix + at), x);
    if constexpr (kMix) {
      const uint4 a = LoadProduced(static_cast<const void*>(in.summary_h + at));
      const uint4 b = LoadProduced(static_cast<const void*>(in.summary_h + at + 4));
      const float* ha = reinterpret_cast<const float*>(&a);
      const float* hb = reinterpret_cast<const float*>(&b);
      const float c = coef[m][0], p = coef[m][1], inv_l = coef[m][2];
#pragma unroll
      for (int i = 0; i < 8; ++i) h[i] = ((i < 4 ? ha[i] : hb[i - 4]) * c + p * x[i]) * inv_l;
    } else {
#pragma unroll
      for (int i = 0; i < 8; ++i) h[i] = x[i];
    }
  };
  if constexpr (kMix) {
    for (int m = 0; m < M; ++m) {
      if (coef[m][3] >= 0.0f) continue;  // block-uniform: coef is shared
      float hs[1] = {0.0f};
      for (int ch = threadIdx.x; ch < chunks; ch += blockDim.x) {
        float h[8];
        h_chunk(m, ch, nullptr, h);
#pragma unroll
        for (int i = 0; i < 8; ++i) hs[0] += h[i] * h[i];
      }
      RowSum<1>(hs, scratch);  // its barriers: every thread has read coef[m][3] < 0
      if (threadIdx.x == 0) coef[m][3] = rsqrtf(hs[0] / K + in.eps);
      __syncthreads();
    }
  }
  auto normalize = [&](int m, int ch, const uint4* raw) {
    float h[8], g[8], y[8];
    h_chunk(m, ch, raw, h);
    LoadF32x8(in.gamma + 8 * ch, g);
    const float r = coef[m][3];
#pragma unroll
    for (int i = 0; i < 8; ++i) y[i] = (h[i] * r) * g[i];
    StoreBf16x8(xs + static_cast<size_t>(m) * (K + kXsPad) + 8 * ch, y);
  };
#pragma unroll
  for (int i = 0; i < kRow0Chunks; ++i) {
    const int ch = threadIdx.x + i * blockDim.x;
    if (ch < chunks) normalize(0, ch, &x0[i]);
  }
  for (int ch = threadIdx.x + kRow0Chunks * blockDim.x; ch < chunks; ch += blockDim.x) {
    normalize(0, ch, nullptr);
  }
  for (int m = 1; m < M; ++m) {
    for (int ch = threadIdx.x; ch < chunks; ch += blockDim.x) normalize(m, ch, nullptr);
  }
  __syncthreads();
}

}  // namespace attnres::kernels
