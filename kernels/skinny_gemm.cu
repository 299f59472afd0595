// Skinny GEMM for decode steps of 9-64 rows: y[M, N] = x[M, K] . w[N, K]^T, bf16 in, fp32
// accumulation on tensor cores, bf16 or fp32 out, or the MLP's gate/up projection with SwiGLU in
// the epilogue. Like Gemv it is a weight stream (64 rows do 64 FLOP per weight byte, a third of
// the H200's ridge), but Gemv reads all of x per 16 rows of w, which at 64 rows would be four
// times the weights' bytes through L2. Here a block owns 128 rows of w and stages x through
// shared memory, so x costs half the weights' bytes at 64 rows.
//
// Shape of the work:
// - A block (4 warps) owns a tile of 128 w rows and one K range; each warp owns 32 of the rows
//   (two m16 mma tiles) against all of x's rows (kMt n8 tiles).
// - w and x stream through a kStages-deep cp.async pipeline, 64 k per stage (128-byte shared
//   rows, 16-byte chunks XOR-swizzled by row so ldmatrix is conflict-free).
// - The weights of the first stages are requested before the PDL wait (they are constants); x,
//   which the previous kernel writes, after it.
// - Too few tiles to fill the GPU (the 8B o: 32) split K over a thread-block cluster of up to 8
//   blocks. Each block leaves its fp32 tile in shared memory; after a cluster barrier each block
//   sums a slice of the tile's x rows over the cluster's blocks in rank order (distributed shared
//   memory: no workspace, no atomics, the same sums every run) and writes them. The cluster size
//   is the largest whose clusters for all tiles are resident at once (clusters are placed whole
//   inside a GPC: 30 clusters of 8 two-block SMs on an H200, not 33).
//
// Status (bench/BENCHMARKS.md run 25): not faster than cuBLASLt, so models/cuda/gemm.cc takes it
// only with ATTNRES_SKINNY_GEMM=1. In 8B decode steps of 64 rows it costs +0.6-0.8 ms per step
// (the down projection alone +0.35 ms). The kernel bench flatters it: back to back under PDL,
// each call's start-up hides under the previous call's tail; with ATTNRES_PDL=0 its 8B down at 64
// rows goes 36.4 -> 40.3 us and its qkv 19.1 -> 22.6 us, while cuBLASLt's stay at 36.8 and 17.5.
// So the gap is each block's fixed cost (a short K range: pipeline fill, two cluster barriers, the
// reduction) more than its streaming. ncu (8B o, 64 rows): 1.8 warps per scheduler, an issue every
// 6.3 cycles, 44% of the stalls on L1TEX scoreboards.
#include <cooperative_groups.h>

#include "kernels/common.cuh"
#include "kernels/mma.cuh"
#include "kernels/ops.h"

namespace attnres::kernels {
namespace {

namespace cg = cooperative_groups;

constexpr int kWarps = 4;
constexpr int kThreads = kWarps * 32;
constexpr int kTileRows = 128;         // w rows per block
constexpr int kMi = kTileRows / kWarps / 16;  // m16 mma tiles per warp (32 rows)
constexpr int kLdRows = kThreads / 8;  // shared rows one pass of 16-byte copies fills
constexpr int kBk = 64;                // k per pipeline stage: one 128-byte shared row
constexpr int kStages = 4;             // 3 stages in flight while one is consumed
constexpr int kCtStride = kTileRows + 4;  // floats per x row of the fp32 result tile
constexpr int kMaxSplits = 8;          // the portable cluster size

// x rows staged per stage (kMt n8 mma tiles), bytes per stage, dynamic shared memory per block
// (the pipeline, reused for the fp32 result tile [kXRows][kCtStride]).
template <int kMt>
constexpr int kXRows = 8 * kMt;
template <int kMt>
constexpr int kStageBytes = (kTileRows + kXRows<kMt>) * kBk * 2;
template <int kMt>
constexpr int kSmemBytes = kStages * kStageBytes<kMt> > kXRows<kMt> * kCtStride * 4
                               ? kStages * kStageBytes<kMt>
                               : kXRows<kMt> * kCtStride * 4;

// What a block writes (common.cuh's GemmOut). In the SwiGLU form w is the fused [2f, K] gate/up
// matrix and a block's 128 rows are 64 gate rows c0 + r and the 64 up rows f + c0 + r of the same
// columns.
template <GemmOut kOut>
constexpr int kColsPerTile = kOut == GemmOut::kSwiGlu ? kTileRows / 2 : kTileRows;

// Byte offset of 16-byte chunk c (0..7) of shared row r in a stage.
__device__ __forceinline__ uint32_t Swizzle(int r, int c) {
  return static_cast<uint32_t>(r * (kBk * 2) + ((c ^ (r & 7)) << 4));
}

// grid (splits, tiles), cluster (splits, 1, 1): block (rank, tile) runs pipeline stages
// [rank * steps_per_rank, +steps_per_rank) of K's 64-wide stages on tile rows [tile * 128, +128).
// N: columns of y (f in the SwiGLU form, whose w has 2N rows). Rows of w past N are clamped (read,
// never stored); x rows past M and k past K are zero-filled.
template <GemmOut kOut, int kMt>
__global__ void __launch_bounds__(kThreads, 2)
    SkinnyGemmKernel(const bf16* x, const bf16* __restrict__ w, void* __restrict__ out, int M,
                     int N, int K, int steps_per_rank, bool vector_out) {
  extern __shared__ __align__(128) unsigned char smem[];
  const cg::cluster_group cluster = cg::this_cluster();
  const int rank = static_cast<int>(cluster.block_rank());
  const int splits = static_cast<int>(cluster.num_blocks());
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int c0 = blockIdx.y * kColsPerTile<kOut>;
  const int all_steps = (K + kBk - 1) / kBk;
  const int step0 = rank * steps_per_rank;
  const int steps = max(0, min(all_steps, step0 + steps_per_rank) - step0);
  const uint32_t base = SmemAddr(smem);

  // Loads: thread i copies 16-byte chunk i % 8 of shared rows i / 8 + kLdRows j.
  const int ld_chunk = threadIdx.x & 7, ld_row = threadIdx.x >> 3;
  const bf16* w_src[kTileRows / kLdRows];  // the chunk's w row at k = 0
#pragma unroll
  for (int j = 0; j < kTileRows / kLdRows; ++j) {
    const int r = ld_row + kLdRows * j;
    constexpr int kHalf = kTileRows / 2;  // SwiGLU: gate rows, then as many up rows
    const int row = kOut == GemmOut::kSwiGlu ? (r < kHalf ? 0 : N) + min(c0 + r % kHalf, N - 1)
                                         : min(c0 + r, N - 1);
    w_src[j] = w + static_cast<size_t>(row) * K + 8 * ld_chunk;
  }
  auto load_w = [&](int step) {
    const int k = (step0 + step) * kBk;
    const bool in_k = k + 8 * ld_chunk < K;
    const uint32_t dst = base + (step % kStages) * kStageBytes<kMt>;
#pragma unroll
    for (int j = 0; j < kTileRows / kLdRows; ++j) {
      CpAsync16Stream(dst + Swizzle(ld_row + kLdRows * j, ld_chunk), w_src[j] + (in_k ? k : 0),
                      in_k);
    }
  };
  auto load_x = [&](int step) {
    const int k = (step0 + step) * kBk + 8 * ld_chunk;
    const uint32_t dst = base + (step % kStages) * kStageBytes<kMt> + kTileRows * kBk * 2;
#pragma unroll
    for (int j = 0; j < (kXRows<kMt> + kLdRows - 1) / kLdRows; ++j) {
      const int m = ld_row + kLdRows * j;
      if (kXRows<kMt> % kLdRows != 0 && m >= kXRows<kMt>) break;
      const bool valid = m < M && k < K;
      CpAsync16(dst + Swizzle(m, ld_chunk), x + (valid ? static_cast<size_t>(m) * K + k : 0),
                valid);
    }
  };

  // Commit groups: w of stages 0..kStages-2 (before the wait), then x of the same stages, then one
  // group (w and x) per later stage. Before consuming stage i, at most kStages - 2 groups may be
  // pending: for i < kStages - 1 those are x's of later stages, so stage i's w and x are in.
#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) {
    if (s < steps) load_w(s);
    CpAsyncCommit();
  }
  WaitForPrevious();  // x comes from the previous kernel
  LetNextStart();
#pragma unroll
  for (int s = 0; s < kStages - 1; ++s) {
    if (s < steps) load_x(s);
    CpAsyncCommit();
  }

  // acc[i][n]: rows warp * kMi * 16 + 16 i + (g, g + 8) of the tile against x rows 8 n + (2t,
  // 2t + 1).
  float acc[kMi][kMt][4] = {};
  const int a_row = warp * kMi * 16 + (lane & 7) + 8 * ((lane >> 3) & 1), a_chunk = lane >> 4;
  const int b_row = lane & 7, b_chunk = lane >> 3;
  for (int i = 0; i < steps; ++i) {
    CpAsyncWait<kStages - 2>();
    __syncthreads();  // stage i is in for all threads; stage i - 1's buffer is free
    if (i + kStages - 1 < steps) {
      load_w(i + kStages - 1);
      load_x(i + kStages - 1);
    }
    CpAsyncCommit();
    const uint32_t ws = base + (i % kStages) * kStageBytes<kMt>;
    const uint32_t xs = ws + kTileRows * kBk * 2;
#pragma unroll
    for (int kp = 0; kp < 2; ++kp) {  // 32 k: two k16 mma steps
      uint32_t b[kMt][4];  // b0, b1 of k16 step 2 kp, then of 2 kp + 1
#pragma unroll
      for (int n = 0; n < kMt; ++n) LdMatrixX4(b[n], xs + Swizzle(8 * n + b_row, 4 * kp + b_chunk));
#pragma unroll
      for (int h = 0; h < 2; ++h) {
#pragma unroll
        for (int mi = 0; mi < kMi; ++mi) {
          uint32_t a[4];
          LdMatrixX4(a, ws + Swizzle(a_row + 16 * mi, 2 * (2 * kp + h) + a_chunk));
#pragma unroll
          for (int n = 0; n < kMt; ++n) Mma(acc[mi][n], a, b[n][2 * h], b[n][2 * h + 1]);
        }
      }
    }
  }
  CpAsyncWait<0>();
  __syncthreads();  // every warp is done with the pipeline's buffers

  // The block's fp32 tile, x-row-major: ct[m * kCtStride + r] (r: tile row).
  float* ct = reinterpret_cast<float*>(smem);
  const int g = lane >> 2, t = lane & 3;
#pragma unroll
  for (int mi = 0; mi < kMi; ++mi) {
#pragma unroll
    for (int n = 0; n < kMt; ++n) {
#pragma unroll
      for (int j = 0; j < 4; ++j) {
        const int r = warp * kMi * 16 + 16 * mi + g + 8 * (j >> 1), m = 8 * n + 2 * t + (j & 1);
        ct[m * kCtStride + r] = acc[mi][n][j];
      }
    }
  }
  cluster.sync();  // every block's tile is complete (and a block barrier)

  // This block's x rows [m0, m1), summed over the cluster's tiles in rank order. Four adjacent
  // columns per thread (kOut's column count / 4 threads per row).
  const int per = (M + splits - 1) / splits;
  const int m0 = min(M, rank * per), m1 = min(M, m0 + per);
  constexpr int kQuads = kColsPerTile<kOut> / 4;
  for (int e = threadIdx.x; e < (m1 - m0) * kQuads; e += kThreads) {
    const int m = m0 + e / kQuads, j = 4 * (e % kQuads);
    float4 s = make_float4(0.0f, 0.0f, 0.0f, 0.0f), su = s;
#pragma unroll
    for (int q = 0; q < kMaxSplits; ++q) {
      if (q >= splits) break;
      const float* part = cluster.map_shared_rank(ct, q) + m * kCtStride + j;
      const float4 v = *reinterpret_cast<const float4*>(part);
      s.x += v.x; s.y += v.y; s.z += v.z; s.w += v.w;
      if constexpr (kOut == GemmOut::kSwiGlu) {  // the up rows sit 64 tile rows further
        const float4 u = *reinterpret_cast<const float4*>(part + kTileRows / 2);
        su.x += u.x; su.y += u.y; su.z += u.z; su.w += u.w;
      }
    }
    const float sv[4] = {s.x, s.y, s.z, s.w}, uv[4] = {su.x, su.y, su.z, su.w};
    const size_t o4 = static_cast<size_t>(m) * N + c0 + j;
    if (kOut != GemmOut::kSwiGlu && vector_out && c0 + j + 3 < N) {  // one 16- or 8-byte store
      if constexpr (kOut == GemmOut::kF32) {
        *reinterpret_cast<float4*>(static_cast<float*>(out) + o4) = s;
      } else {
        const __nv_bfloat162 lo = __floats2bfloat162_rn(s.x, s.y);
        const __nv_bfloat162 hi = __floats2bfloat162_rn(s.z, s.w);
        uint2 v;
        v.x = *reinterpret_cast<const uint32_t*>(&lo);
        v.y = *reinterpret_cast<const uint32_t*>(&hi);
        *reinterpret_cast<uint2*>(static_cast<bf16*>(out) + o4) = v;
      }
      continue;
    }
#pragma unroll
    for (int c = 0; c < 4; ++c) {
      const int n = c0 + j + c;
      if (n >= N) break;
      StoreGemmOut<kOut>(out, static_cast<size_t>(m) * N + n, sv[c], uv[c]);
    }
  }
  cluster.sync();  // keep this block's tile alive until the cluster has read it
}

// Clusters of `splits` blocks of kKernel that the device holds at once (clusters are placed
// whole, inside one GPC, so this is less than the SMs' block slots / splits), asked once per
// device and size; 0 if the runtime cannot say.
template <auto kKernel>
int MaxActiveClusters(int splits, int threads, int smem) {
  constexpr int kDevices = 64;
  static std::atomic<int> known[kDevices][kMaxSplits + 1];  // 0: not asked yet
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess) return 0;
  if (device < kDevices) {
    if (const int n = known[device][splits].load(std::memory_order_relaxed); n > 0) return n;
  }
  cudaLaunchAttribute attr;
  attr.id = cudaLaunchAttributeClusterDimension;
  attr.val.clusterDim.x = splits;
  attr.val.clusterDim.y = 1;
  attr.val.clusterDim.z = 1;
  cudaLaunchConfig_t config = {};
  config.gridDim = dim3(splits);
  config.blockDim = dim3(threads);
  config.dynamicSmemBytes = smem;
  config.attrs = &attr;
  config.numAttrs = 1;
  int n = 0;
  if (cudaOccupancyMaxActiveClusters(&n, kKernel, &config) != cudaSuccess) {
    cudaGetLastError();  // not sticky; clear it
    return 0;
  }
  if (device < kDevices && n > 0) known[device][splits].store(n, std::memory_order_relaxed);
  return n;
}

// The cluster size: the largest (at most 8, and at least two pipeline stages per block) whose
// clusters for all tiles are resident at once, so no tile waits for a second wave; 1 where the
// tiles alone take more than one wave.
template <auto kKernel>
int Splits(int tiles, int all_steps, int threads, int smem) {
  for (int s = std::min(kMaxSplits, all_steps / 2); s > 1; --s) {
    if (tiles <= MaxActiveClusters<kKernel>(s, threads, smem)) return s;
  }
  return 1;
}

template <GemmOut kOut, int kMt>
cudaError_t LaunchWith(const bf16* x, const bf16* w, void* out, int M, int N, int K,
                       cudaStream_t stream) {
  constexpr auto kKernel = SkinnyGemmKernel<kOut, kMt>;
  if (cudaError_t e = AllowDynamicSmem<kKernel>(kSmemBytes<kMt>); e != cudaSuccess) return e;
  const int tiles = (N + kColsPerTile<kOut> - 1) / kColsPerTile<kOut>;
  const int all_steps = (K + kBk - 1) / kBk;
  const int splits = Splits<kKernel>(tiles, all_steps, kThreads, kSmemBytes<kMt>);
  const int steps_per_rank = (all_steps + splits - 1) / splits;
  cudaLaunchAttribute attrs[2];
  attrs[0].id = cudaLaunchAttributeClusterDimension;
  attrs[0].val.clusterDim.x = splits;
  attrs[0].val.clusterDim.y = 1;
  attrs[0].val.clusterDim.z = 1;
  attrs[1].id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attrs[1].val.programmaticStreamSerializationAllowed = 1;
  cudaLaunchConfig_t config = {};
  config.gridDim = dim3(splits, tiles);
  config.blockDim = dim3(kThreads);
  config.dynamicSmemBytes = kSmemBytes<kMt>;
  config.stream = stream;
  config.attrs = attrs;
  config.numAttrs = PdlEnabled() ? 2 : 1;
  const bool vector_out = N % 4 == 0 && reinterpret_cast<uintptr_t>(out) % 16 == 0;
  return cudaLaunchKernelEx(&config, kKernel, x, w, out, M, N, K, steps_per_rank, vector_out);
}

template <GemmOut kOut>
cudaError_t Launch(const bf16* x, const bf16* w, void* out, int M, int N, int K,
                   cudaStream_t stream) {
  if (M <= 16) return LaunchWith<kOut, 2>(x, w, out, M, N, K, stream);
  if (M <= 32) return LaunchWith<kOut, 4>(x, w, out, M, N, K, stream);
  return LaunchWith<kOut, 8>(x, w, out, M, N, K, stream);
}

}  // namespace

cudaError_t SkinnyGemm(const bf16* x, const bf16* w, void* out, int M, int N, int K,
                       bool out_f32, cudaStream_t stream) {
  if (N < 0 || !SkinnyGemmSupports(x, w, M, K)) return cudaErrorInvalidValue;
  if (M == 0 || N == 0) return cudaSuccess;
  return out_f32 ? Launch<GemmOut::kF32>(x, w, out, M, N, K, stream)
                 : Launch<GemmOut::kBf16>(x, w, out, M, N, K, stream);
}

cudaError_t SkinnyGemmSwiGlu(const bf16* x, const bf16* w_gate_up, bf16* out, int M, int f,
                             int K, cudaStream_t stream) {
  if (f < 0 || !SkinnyGemmSupports(x, w_gate_up, M, K)) return cudaErrorInvalidValue;
  if (M == 0 || f == 0) return cudaSuccess;
  return Launch<GemmOut::kSwiGlu>(x, w_gate_up, out, M, f, K, stream);
}

}  // namespace attnres::kernels
