// Small-M GEMM ("GEMV") for decode steps: y[M, N] = x[M, K] . w[N, K]^T with M <= 8, bf16 in,
// fp32 accumulation, bf16 or fp32 out, or the MLP's gate/up projection with SwiGLU applied in
// the epilogue. Purely bandwidth-bound, so it is built to stream w once (for all M rows) at close
// to HBM speed; the math runs on tensor cores so M = 1..8 cost the same. Not a general GEMM:
// larger M goes to cuBLASLt (models/cuda/gemm.cc decides).
#include "kernels/common.cuh"
#include "kernels/gemv_boundary.cuh"
#include "kernels/mma.cuh"
#include "kernels/ops.h"
#include "kernels/rotate_head.cuh"

namespace attnres::kernels {
namespace {

// Block = kWarps warps on one tile of kRows rows of w, splitting K between them (interleaved
// kStep-wide slices, so a block reads kRows rows x kWarps * kStep contiguous columns per step).
// Each warp step issues 2 * kUnroll 16-byte w loads per lane (kUnroll KiB per warp) before
// using any. The time of a decode-sized matrix is a few such round trips to HBM, so the more
// bytes in flight per step the better: kUnroll 8 (128 registers, 2 blocks per SM) beats 4
// (76 registers, 3 per SM) by 15-25% on the 8B o and down shapes, except where the grid fits
// one wave at 3 blocks per SM but not at 2 (the 8B qkv: 384 tiles on 132 SMs); see LaunchGemv.
constexpr int kWarps = 8;
constexpr int kRows = 16;  // the mma's M dimension
static_assert(kRows == kGemvTileCols);

// What a block writes (common.cuh's GemmOut). The paired forms pair mma rows g and g + 8 so that
// both sums meet in one thread: in the SwiGLU form w is the fused [2f, K] gate/up matrix and a
// block's 16 rows are 8 gate rows c0 + g and the 8 up rows f + c0 + g; in the RoPE form w is the
// qkv projection and its "columns" are rotate-half pairs, column n being dims i and i + hd/2 of
// head n / (hd/2) (i = n % (hd/2); hd % 16 == 0, so a tile never straddles two heads).
template <GemmOut kOut>
constexpr bool kPaired = kOut == GemmOut::kSwiGlu || kOut == GemmOut::kRopeKv;

// Whether the next kernel may be scheduled from the first wait on (the next kernel's blocks
// then take SMs as this grid's blocks leave them), or only once each block has streamed its
// weights. After the RoPE form comes decode attention, a few dozen latency-bound blocks that
// should start spread over idle SMs, not packed onto the first ones this grid frees.
template <GemmOut kOut>
constexpr bool kEarlyStart = kOut != GemmOut::kRopeKv;

// The output columns of a block's kRows rows of w.
template <GemmOut kOut>
constexpr int kColsPerTile = kPaired<kOut> ? kRows / 2 : kRows;

// The w row of mma row r (0..15) of the tile at output column c0; N as the kernel's.
template <GemmOut kOut>
__device__ __forceinline__ int TileRow(int r, int c0, int N, int hd) {
  if constexpr (kOut == GemmOut::kSwiGlu) {
    return (r < 8 ? 0 : N) + min(c0 + (r & 7), N - 1);
  } else if constexpr (kOut == GemmOut::kRopeKv) {
    const int n = min(c0 + (r & 7), N - 1), half = hd / 2;
    return n / half * hd + n % half + (r < 8 ? 0 : half);
  } else {
    return min(c0 + r, N - 1);
  }
}

// Where a thread of the RoPE form's StoreTile writes: thread (j, l) < 64 stores column n = c0 +
// l / 4 of row m = 2 (l % 4) + j % 2, dims i and i + hd/2 of head n / (hd/2) (i = n % (hd/2)):
// the rotated pair into q_out (q heads) or row m's page slot (k heads), or the pair as it is
// into that slot (v heads); RopeKvWrite's work on it, without q/k norms. Found while the weights
// stream: the step's page tables and RoPE table are read before the wait (common.cuh's rule).
struct RopeDst {
  bf16* lo = nullptr;  // dim i (dim i + hd/2 at lo + hd/2); null: nothing to store
  float2 cs;           // (cos, sin) of pair i at row m's position
  bool rotate = false;
};
__device__ __forceinline__ RopeDst FindRopeDst(const RopeKvWriteArgs& a, int M, int N, int c0) {
  RopeDst d;
  const int j = threadIdx.x >> 5, l = threadIdx.x & 31;
  const int n = c0 + (l >> 2), m = 2 * (l & 3) + (j & 1);
  if (j >= 2 || m >= M || n >= N) return d;
  const int hd = a.hd, half = hd / 2, head = n / half, i = n % half;
  d.rotate = head < a.H + a.KV;
  if (head < a.H) {
    d.lo = a.q_out + (static_cast<size_t>(m) * a.H + head) * hd + i;
  } else {
    d.lo = (d.rotate ? a.k_cache + (head - a.H) * hd : a.v_cache + (head - a.H - a.KV) * hd) +
           KvSlot(a, m) + i;
  }
  if (d.rotate) d.cs = a.rope.table[static_cast<size_t>(m) * half + i];
  return d;
}

// The pair's sums rounded to bf16 as Gemv stores the qkv projection, then rotated (RotatePair)
// or stored as they are.
__device__ __forceinline__ void StoreRopeKv(const RopeDst& d, int half, float s_lo, float s_hi) {
  const bf16 lo = __float2bfloat16_rn(s_lo), hi = __float2bfloat16_rn(s_hi);
  if (!d.rotate) {
    d.lo[0] = lo;
    d.lo[half] = hi;
    return;
  }
  RotatePair(__bfloat162float(lo), __bfloat162float(hi), d.cs, d.lo, d.lo + half);
}

// Sums the block's warps' K slices and writes its outputs of each x row. Accumulator j of lane
// (g, t) is D[g + 8 * (j / 2), 2t + j % 2]. N: columns of y.
// rope, half: the RoPE form's (FindRopeDst; hd / 2).
template <GemmOut kOut>
__device__ __forceinline__ void StoreTile(const float (&acc)[2][4], void* __restrict__ out, int M,
                                          int N, int c0, const RopeDst& rope, int half) {
  __shared__ float partial[kWarps][4][32];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
#pragma unroll
  for (int j = 0; j < 4; ++j) partial[warp][j][lane] = acc[0][j] + acc[1][j];
  __syncthreads();
  constexpr int kSums = kPaired<kOut> ? 2 : 4;  // accumulators each thread sums
  if (threadIdx.x >= kSums * 32) return;
  const int j = threadIdx.x >> 5, l = threadIdx.x & 31;
  float s = 0.0f;
#pragma unroll
  for (int v = 0; v < kWarps; ++v) s += partial[v][j][l];
  const int n = c0 + (l >> 2) + 8 * (j >> 1), m = 2 * (l & 3) + (j & 1);
  if (m >= M || n >= N) return;
  const size_t o = static_cast<size_t>(m) * N + n;
  float up = 0.0f;  // the paired forms: the partner's sum (up, or dims i + hd/2), accumulator j + 2
  if constexpr (kPaired<kOut>) {
#pragma unroll
    for (int v = 0; v < kWarps; ++v) up += partial[v][j + 2][l];
  }
  if constexpr (kOut == GemmOut::kRopeKv) {
    StoreRopeKv(rope, half, s, up);
  } else {
    StoreGemmOut<kOut>(out, o, s, up);
  }
}

// The mma computes D[n, m] (16 w rows x 8 x rows) over k. Because a dot product may sum its k
// terms in any order, the mma's k positions are permuted so every operand is one 16-byte load:
// lane (g = lane / 4, t = lane % 4) loads 8 consecutive k at kc = kb + 8t from w rows g and g + 8
// and from x row g; words 0-1 of those loads feed the first k16 mma (its A/B fragment positions
// 2t, 2t+1, 2t+8, 2t+9 all belong to lane t), words 2-3 the second. Rows of w past N are
// clamped (read, never stored); x rows past M and k past K are zeros. N: columns of y (f in the
// SwiGLU form, whose w has 2N rows; rotate-half pairs in the RoPE form, whose w has 2N rows).
// kIn != kPlain: x is unused; the input rows come from NormalizeInput in shared memory
// (dynamic, NormedSmemBytes). kResidual: the output goes through StoreResidualTile (out unused).
// The blocks per SM LaunchGemv counts on: 3 of the kUnroll 4 forms (at most 85 registers; the
// RoPE form's epilogue took 92 unbounded), 2 of the others (128).
template <GemmOut kOut, int kUnroll, GemvIn kIn = GemvIn::kPlain, bool kResidual = false>
__global__ void __launch_bounds__(kWarps * 32, kUnroll == 4 ? 3 : 2)
    GemvKernel(const bf16* x, const bf16* __restrict__ w, void* __restrict__ out, int M, int N,
               int K, const GemvFusion fusion) {
  constexpr int kStep = 32 * kUnroll;  // k per warp step: kUnroll slices of 32 (two k16 mmas each)
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int g = lane >> 2, t = lane & 3;
  const int c0 = blockIdx.x * kColsPerTile<kOut>;
  const int hd = kOut == GemmOut::kRopeKv ? fusion.rope.hd : 0;
  const bf16* w_lo = w + static_cast<size_t>(TileRow<kOut>(g, c0, N, hd)) * K + 8 * t;
  const bf16* w_hi = w + static_cast<size_t>(TileRow<kOut>(g + 8, c0, N, hd)) * K + 8 * t;
  const bool has_x = g < M;
  const bf16* x_row = x + static_cast<size_t>(has_x ? g : 0) * K + 8 * t;
  RopeDst rope;
  if constexpr (kOut == GemmOut::kRopeKv) rope = FindRopeDst(fusion.rope, M, N, c0);
  const uint4 zero = make_uint4(0, 0, 0, 0);

  float acc[2][4] = {};  // two independent mma chains
  if constexpr (kIn == GemvIn::kPlain) {
    for (int kb = warp * kStep; kb < K; kb += kWarps * kStep) {
      uint4 lo[kUnroll], hi[kUnroll], xv[kUnroll];
      if (kb + kStep <= K) {  // full step: no predicates between the loads
#pragma unroll
        for (int u = 0; u < kUnroll; ++u) {
          lo[u] = LoadStream(w_lo + kb + 32 * u);
          hi[u] = LoadStream(w_hi + kb + 32 * u);
        }
        WaitForPrevious();  // weights are constant; x comes from the previous kernel
        if constexpr (kEarlyStart<kOut>) LetNextStart();  // (after the wait: common.cuh's rule)
#pragma unroll
        for (int u = 0; u < kUnroll; ++u) {
          xv[u] = has_x ? LoadProduced(x_row + kb + 32 * u) : zero;
        }
      } else {
        WaitForPrevious();
        if constexpr (kEarlyStart<kOut>) LetNextStart();
#pragma unroll
        for (int u = 0; u < kUnroll; ++u) {
          const bool in_k = kb + 32 * u + 8 * t < K;
          lo[u] = in_k ? LoadStream(w_lo + kb + 32 * u) : zero;
          hi[u] = in_k ? LoadStream(w_hi + kb + 32 * u) : zero;
          xv[u] = in_k && has_x ? LoadProduced(x_row + kb + 32 * u) : zero;
        }
      }
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        Mma(acc[0], lo[u].x, hi[u].x, lo[u].y, hi[u].y, xv[u].x, xv[u].y);
        Mma(acc[1], lo[u].z, hi[u].z, lo[u].w, hi[u].w, xv[u].z, xv[u].w);
      }
    }
  } else {
    // The first step's weights go out before the wait, as above; the input is normalized while
    // they are in flight, by every thread (barriers), then read from shared memory.
    extern __shared__ __align__(16) unsigned char gemv_smem[];
    bf16* xs = reinterpret_cast<bf16*>(gemv_smem);
    const int kb0 = warp * kStep;
    const bool early = kb0 + kStep <= K;
    uint4 lo[kUnroll], hi[kUnroll];
    if (early) {
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        lo[u] = LoadStream(w_lo + kb0 + 32 * u);
        hi[u] = LoadStream(w_hi + kb0 + 32 * u);
      }
    }
    // The norm's gain is constant: into L1 now (one request per 128-byte line, 32 floats), read
    // by the prologue's __ldg after the wait.
    for (int at = 32 * threadIdx.x; at < K; at += 32 * blockDim.x) {
      PrefetchL1(fusion.in.gamma + at);
    }
    WaitForPrevious();
    LetNextStart();  // (the normed forms are never the RoPE form)
    NormalizeInput<kIn, kWarps>(fusion.in, M, K, xs);
    const bf16* xs_row = xs + static_cast<size_t>(has_x ? g : 0) * (K + kXsPad) + 8 * t;
    for (int kb = kb0; kb < K; kb += kWarps * kStep) {
      uint4 xv[kUnroll];
      if (kb + kStep <= K) {
        if (kb != kb0) {
#pragma unroll
          for (int u = 0; u < kUnroll; ++u) {
            lo[u] = LoadStream(w_lo + kb + 32 * u);
            hi[u] = LoadStream(w_hi + kb + 32 * u);
          }
        }
#pragma unroll
        for (int u = 0; u < kUnroll; ++u) {
          xv[u] = has_x ? *reinterpret_cast<const uint4*>(xs_row + kb + 32 * u) : zero;
        }
      } else {
#pragma unroll
        for (int u = 0; u < kUnroll; ++u) {
          const bool in_k = kb + 32 * u + 8 * t < K;
          lo[u] = in_k ? LoadStream(w_lo + kb + 32 * u) : zero;
          hi[u] = in_k ? LoadStream(w_hi + kb + 32 * u) : zero;
          xv[u] = in_k && has_x ? *reinterpret_cast<const uint4*>(xs_row + kb + 32 * u) : zero;
        }
      }
#pragma unroll
      for (int u = 0; u < kUnroll; ++u) {
        Mma(acc[0], lo[u].x, hi[u].x, lo[u].y, hi[u].y, xv[u].x, xv[u].y);
        Mma(acc[1], lo[u].z, hi[u].z, lo[u].w, hi[u].w, xv[u].z, xv[u].w);
      }
    }
  }

  WaitForPrevious();  // (warps with no K slice) before writing what earlier kernels may read
  LetNextStart();     // (repeats are no-ops)
  if constexpr (kResidual) {
    StoreResidualTile<kWarps>(acc, fusion.residual, M, N, c0);
  } else {
    StoreTile<kOut>(acc, out, M, N, c0, rope, hd / 2);
  }
}

// kUnroll 8 (128 registers, 2 blocks per SM) unless the grid fits one wave only at 3 blocks per
// SM (kUnroll 4, 76 registers); see the block comment above. smem: the normed forms' input rows.
template <GemmOut kOut, GemvIn kIn = GemvIn::kPlain, bool kResidual = false>
cudaError_t LaunchGemv(const bf16* x, const bf16* w, void* out, int M, int N, int K,
                       cudaStream_t stream, const GemvFusion& fusion = {}, size_t smem = 0) {
  const int tiles = (N + kColsPerTile<kOut> - 1) / kColsPerTile<kOut>;
  const dim3 grid(tiles), block(kWarps * 32);
  const int sms = NumSms();
  const bool one_wave_only_at_3 = tiles > 2 * sms && tiles <= 3 * sms;
  constexpr auto kNarrow = GemvKernel<kOut, 4, kIn, kResidual>;
  constexpr auto kWide = GemvKernel<kOut, 8, kIn, kResidual>;
  if (smem > 0) {  // static + dynamic shared memory past 48 KiB needs the attribute
    cudaError_t e = one_wave_only_at_3 ? AllowDynamicSmem<kNarrow>(kMaxNormedSmem)
                                       : AllowDynamicSmem<kWide>(kMaxNormedSmem);
    if (e != cudaSuccess) return e;
  }
  return one_wave_only_at_3
             ? LaunchPdl(kNarrow, grid, block, smem, stream, x, w, out, M, N, K, fusion)
             : LaunchPdl(kWide, grid, block, smem, stream, x, w, out, M, N, K, fusion);
}

// The normed forms' preconditions beyond Gemv's: a stream and its statistics.
bool NormInValid(const GemvNormIn& in, int M, int K) {
  return GemvNormedSupports(M, K) && GemvSupports(in.prefix, in.prefix, M, K) && in.stats &&
         in.gamma && in.tiles > 0 && (in.summary_h == nullptr) == (in.summary_ml == nullptr) &&
         reinterpret_cast<uintptr_t>(in.gamma) % 16 == 0 &&
         reinterpret_cast<uintptr_t>(in.summary_h) % 16 == 0;
}

template <GemmOut kOut>
cudaError_t LaunchNormed(const GemvNormIn& in, const bf16* w, bf16* out, int M, int N, int K,
                         cudaStream_t stream) {
  GemvFusion f;
  f.in = in;
  const size_t smem = NormedSmemBytes(M, K);
  return in.summary_h
             ? LaunchGemv<kOut, GemvIn::kMerge>(in.prefix, w, out, M, N, K, stream, f, smem)
             : LaunchGemv<kOut, GemvIn::kNorm>(in.prefix, w, out, M, N, K, stream, f, smem);
}

}  // namespace

cudaError_t Gemv(const bf16* x, const bf16* w, void* out, int M, int N, int K, bool out_f32,
                 cudaStream_t stream) {
  if (N < 0 || !GemvSupports(x, w, M, K)) return cudaErrorInvalidValue;
  if (M == 0 || N == 0) return cudaSuccess;
  return out_f32 ? LaunchGemv<GemmOut::kF32>(x, w, out, M, N, K, stream)
                 : LaunchGemv<GemmOut::kBf16>(x, w, out, M, N, K, stream);
}

cudaError_t GemvSwiGlu(const bf16* x, const bf16* w_gate_up, bf16* out, int M, int f, int K,
                       cudaStream_t stream) {
  if (f < 0 || !GemvSupports(x, w_gate_up, M, K)) return cudaErrorInvalidValue;
  if (M == 0 || f == 0) return cudaSuccess;
  return LaunchGemv<GemmOut::kSwiGlu>(x, w_gate_up, out, M, f, K, stream);
}

bool GemvQkvRopeSupports(const RopeKvWriteArgs& a) {
  return a.T >= 0 && a.T <= kGemvMaxRows && a.hd >= 16 && a.hd % 16 == 0 && a.hd <= 256 &&
         a.H > 0 && a.KV > 0 && !a.rope.q_norm && !a.rope.k_norm && a.rope.table && a.q_out &&
         a.k_cache && a.v_cache && a.positions && a.row_seq && a.kv_page_indptr &&
         a.kv_page_indices && a.page_size > 0;
}

cudaError_t GemvQkvRope(const bf16* x, const bf16* w_qkv, int K, const RopeKvWriteArgs& args,
                        cudaStream_t stream) {
  if (!GemvQkvRopeSupports(args) || !GemvSupports(x, w_qkv, args.T, K)) {
    return cudaErrorInvalidValue;
  }
  if (args.T == 0) return cudaSuccess;
  GemvFusion f;
  f.rope = args;
  const int pairs = (args.H + 2 * args.KV) * args.hd / 2;
  return LaunchGemv<GemmOut::kRopeKv>(x, w_qkv, nullptr, args.T, pairs, K, stream, f);
}

bool GemvNormedSupports(int M, int K) {
  return M >= 1 && M <= kGemvMaxRows && K >= 8 && K % 8 == 0 &&
         NormedSmemBytes(M, K) <= kMaxNormedSmem;
}

cudaError_t GemvAddResidual(const bf16* x, const bf16* w, int M, int N, int K,
                            const GemvResidual& residual, cudaStream_t stream) {
  if (N < 0 || !GemvSupports(x, w, M, K) || !residual.prefix || !residual.stats ||
      (residual.u == nullptr) != (residual.summary_h == nullptr)) {
    return cudaErrorInvalidValue;
  }
  if (M == 0 || N == 0) return cudaSuccess;
  GemvFusion f;
  f.residual = residual;
  return LaunchGemv<GemmOut::kBf16, GemvIn::kPlain, true>(x, w, nullptr, M, N, K, stream, f);
}

cudaError_t GemvNormed(const GemvNormIn& in, const bf16* w, bf16* out, int M, int N, int K,
                       cudaStream_t stream) {
  if (N < 0 || !NormInValid(in, M, K) || !GemvSupports(in.prefix, w, M, K)) {
    return cudaErrorInvalidValue;
  }
  if (N == 0) return cudaSuccess;
  return LaunchNormed<GemmOut::kBf16>(in, w, out, M, N, K, stream);
}

cudaError_t GemvSwiGluNormed(const GemvNormIn& in, const bf16* w_gate_up, bf16* out, int M, int f,
                             int K, cudaStream_t stream) {
  if (f < 0 || !NormInValid(in, M, K) || !GemvSupports(in.prefix, w_gate_up, M, K)) {
    return cudaErrorInvalidValue;
  }
  if (f == 0) return cudaSuccess;
  return LaunchNormed<GemmOut::kSwiGlu>(in, w_gate_up, out, M, f, K, stream);
}

}  // namespace attnres::kernels
