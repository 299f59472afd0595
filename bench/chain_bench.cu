// attnres-chain-bench: what do kernel boundaries cost a batch-1 decode step? The question behind
// a persistent decode kernel (bench/BENCHMARKS.md, "Where issue #4's targets stand").
//
// The four projections of every layer of a Llama shape (qkv, o, gate/up, down; M = 1), chained:
// each reads the previous one's output (its first K values, so the shapes chain without the
// attention and SwiGLU between them), timed as a whole over all layers in four forms:
//   production  kernels::Gemv, one launch a matrix with programmatic dependent launch, in a graph
//               (what a decode step runs, minus the kernels between the projections);
//   launches    this file's streaming Gemv (ChainPhase), one launch a matrix, PDL, in a graph:
//               each warp requests its first weights before griddepcontrol.wait;
//   persistent  the same phases in one cooperative kernel, grid.sync() between matrices, each
//               warp's first weights of the next matrix requested before the sync;
//   unchained   the persistent kernel without the syncs: not a valid chain (phases race), the
//               streaming ceiling of this code with no boundary at all.
// Launches against persistent isolates what a kernel boundary costs beyond a grid barrier;
// persistent against unchained, what the barriers themselves cost. The persistent and launch
// forms must agree bit for bit (same arithmetic in the same order), and the production Gemv's
// first projection must match ChainPhase's within bf16 rounding: both are checked.
//
//   attnres-chain-bench [llama-1b|llama-8b ...]   (default: both)
#include <cooperative_groups.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "bench/device_ceiling.h"
#include "kernels/common.cuh"
#include "kernels/ops.h"

namespace {

namespace cg = cooperative_groups;
using attnres::kernels::LoadStream;
using bf16 = __nv_bfloat16;

void Check(cudaError_t status, const char* what) {
  if (status != cudaSuccess) {
    std::fprintf(stderr, "attnres-chain-bench: %s: %s\n", what, cudaGetErrorString(status));
    std::exit(1);
  }
}

constexpr int kThreads = 256;  // 8 warps a block
constexpr int kLoads = 16;     // 16-byte weight loads in flight per lane (8 KiB a warp)
constexpr int kMaxK = 14336;   // the 8B down projection
constexpr int kXSmem = kMaxK * sizeof(bf16);  // x staged per block

// One matrix of the chain: y[N] = w[N, K] . x[K] (x: the previous output's first K values).
// K % 256 == 0, so each 32-lane load of a row's 16-byte chunks stays inside one row.
struct Matrix {
  const bf16* w;  // [N, K]
  const bf16* x;  // [>= K]
  bf16* y;        // [N]
  int N, K;
};
struct Chain {
  const Matrix* m;  // device array [count]
  int count;
};

// The rows of warp `gw` of `warps`: a contiguous range (N / warps of them, give or take one),
// streamed as one flat run of 16-byte chunks (row-major), kLoads chunks a lane per round trip.
struct WarpRows {
  int r0, r1;
  __device__ WarpRows(const Matrix& m, int gw, int warps) {
    r0 = static_cast<int>(static_cast<int64_t>(m.N) * gw / warps);  // as even as it gets
    r1 = static_cast<int>(static_cast<int64_t>(m.N) * (gw + 1) / warps);
  }
  __device__ int Chunks(const Matrix& m) const { return (r1 - r0) * (m.K / 8); }
};

// Requests the warp's first round of weights (before a wait or a barrier: weights are
// constants). Chunks past the warp's rows are not loaded.
__device__ __forceinline__ void RequestFirst(const Matrix& m, const WarpRows& rows, int lane,
                                             uint4 (&v)[kLoads]) {
  const int chunks = rows.Chunks(m);
  const bf16* base = m.w + static_cast<size_t>(rows.r0) * m.K;
#pragma unroll
  for (int u = 0; u < kLoads; ++u) {
    const int c = lane + 32 * u;
    v[u] = c < chunks ? LoadStream(base + static_cast<size_t>(c) * 8) : make_uint4(0, 0, 0, 0);
  }
}

// The block's share of matrix m given its first round in v: stages x, streams the rest of its
// warps' rows, writes their outputs.
__device__ void ChainPhase(const Matrix& m, int gw, int warps, uint4 (&v)[kLoads], bf16* xs) {
  const int lane = threadIdx.x & 31;
  for (int i = threadIdx.x; i < m.K / 8; i += blockDim.x) {
    reinterpret_cast<uint4*>(xs)[i] = attnres::kernels::LoadProduced(m.x + i * 8);
  }
  __syncthreads();
  const WarpRows rows(m, gw, warps);
  const int chunks = rows.Chunks(m), per_row = m.K / 8;
  const bf16* base = m.w + static_cast<size_t>(rows.r0) * m.K;
  float acc = 0.0f;
  for (int c0 = 0; c0 < chunks; c0 += 32 * kLoads) {
    if (c0 > 0) {
#pragma unroll
      for (int u = 0; u < kLoads; ++u) {
        const int c = c0 + lane + 32 * u;
        v[u] = c < chunks ? LoadStream(base + static_cast<size_t>(c) * 8) : make_uint4(0, 0, 0, 0);
      }
    }
#pragma unroll
    for (int u = 0; u < kLoads; ++u) {
      const int c = c0 + lane + 32 * u;
      if (c0 + 32 * u >= chunks) break;  // warp-uniform: the row run has ended
      const int col = (c % per_row) * 8;
      const uint4 xv = reinterpret_cast<const uint4*>(xs)[col / 8];
      const __nv_bfloat162* wp = reinterpret_cast<const __nv_bfloat162*>(&v[u]);
      const __nv_bfloat162* xp = reinterpret_cast<const __nv_bfloat162*>(&xv);
#pragma unroll
      for (int e = 0; e < 4; ++e) {
        const float2 wf = __bfloat1622float2(wp[e]), xf = __bfloat1622float2(xp[e]);
        acc = fmaf(wf.x, xf.x, acc);
        acc = fmaf(wf.y, xf.y, acc);
      }
      // The warp's 32 chunks of this load end a row: reduce and store it.
      if ((c0 + 32 * u + 32) % per_row == 0) {
#pragma unroll
        for (int o = 16; o > 0; o >>= 1) acc += __shfl_xor_sync(0xffffffffu, acc, o);
        if (lane == 0) m.y[rows.r0 + (c0 + 32 * u) / per_row] = __float2bfloat16_rn(acc);
        acc = 0.0f;
      }
    }
  }
  __syncthreads();  // xs is restaged by the next phase
}

// One matrix per launch (PDL: the first round requested before the wait).
__global__ void __launch_bounds__(kThreads, 2) LaunchedPhase(Matrix m) {
  extern __shared__ __align__(16) unsigned char smem[];
  const int warps = gridDim.x * (kThreads / 32);
  const int gw = blockIdx.x * (kThreads / 32) + (threadIdx.x >> 5);
  uint4 v[kLoads];
  RequestFirst(m, WarpRows(m, gw, warps), threadIdx.x & 31, v);
  attnres::kernels::WaitForPrevious();
  attnres::kernels::LetNextStart();
  ChainPhase(m, gw, warps, v, reinterpret_cast<bf16*>(smem));
}

// Every matrix in one cooperative launch; kSync = false drops the grid barriers (timing only).
template <bool kSync>
__global__ void __launch_bounds__(kThreads, 2) PersistentChain(Chain chain) {
  extern __shared__ __align__(16) unsigned char smem[];
  const int warps = gridDim.x * (kThreads / 32);
  const int gw = blockIdx.x * (kThreads / 32) + (threadIdx.x >> 5), lane = threadIdx.x & 31;
  uint4 v[kLoads];
  RequestFirst(chain.m[0], WarpRows(chain.m[0], gw, warps), lane, v);
  for (int i = 0; i < chain.count; ++i) {
    ChainPhase(chain.m[i], gw, warps, v, reinterpret_cast<bf16*>(smem));
    if (i + 1 < chain.count) {
      RequestFirst(chain.m[i + 1], WarpRows(chain.m[i + 1], gw, warps), lane, v);
      if constexpr (kSync) cg::this_grid().sync();
    }
  }
}

struct Shape {
  const char* name;
  int layers, d, qkv, ffn;  // qkv: the fused projection's rows; ffn: intermediate size
};

float Median(std::vector<float> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Milliseconds of `run` (enqueues one chain on stream s): median of 15 after 3 untimed.
template <typename F>
float TimeMs(cudaStream_t s, F run) {
  cudaEvent_t a, b;
  Check(cudaEventCreate(&a), "event");
  Check(cudaEventCreate(&b), "event");
  std::vector<float> ms;
  for (int i = 0; i < 18; ++i) {
    Check(cudaEventRecord(a, s), "record");
    run();
    Check(cudaEventRecord(b, s), "record");
    Check(cudaEventSynchronize(b), "sync");
    float t = 0.0f;
    Check(cudaEventElapsedTime(&t, a, b), "elapsed");
    if (i >= 3) ms.push_back(t);
  }
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  return Median(ms);
}

// A graph of one launch per matrix, captured from `enqueue(matrix index)`.
template <typename F>
cudaGraphExec_t Capture(cudaStream_t s, int count, F enqueue) {
  cudaGraph_t g;
  Check(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal), "begin capture");
  for (int i = 0; i < count; ++i) enqueue(i);
  Check(cudaStreamEndCapture(s, &g), "end capture");
  cudaGraphExec_t exec;
  Check(cudaGraphInstantiate(&exec, g, 0), "instantiate");
  cudaGraphDestroy(g);
  return exec;
}

std::vector<uint16_t> Download(const bf16* p, int n) {
  std::vector<uint16_t> h(n);
  Check(cudaMemcpy(h.data(), p, n * sizeof(bf16), cudaMemcpyDeviceToHost), "download");
  return h;
}

float ToFloat(uint16_t b) {
  const uint32_t u = uint32_t(b) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

void RunShape(const Shape& sh, double copy_bps) {
  // Per layer: qkv [qkv, d], o [d, d], gate/up [2 ffn, d], down [d, ffn].
  const int per_layer[4][2] = {{sh.qkv, sh.d}, {sh.d, sh.d}, {2 * sh.ffn, sh.d}, {sh.d, sh.ffn}};
  const int count = 4 * sh.layers;
  std::vector<Matrix> host(count);
  std::vector<void*> owned;
  size_t bytes = 0;
  int max_n = 0;
  for (int i = 0; i < count; ++i) {
    const int N = per_layer[i % 4][0], K = per_layer[i % 4][1];
    bf16* w;
    Check(cudaMalloc(&w, size_t(N) * K * sizeof(bf16)), "weights");
    owned.push_back(w);
    // Standard deviation 1 / sqrt(K): each output keeps its input's variance along the chain.
    Check(attnres::kernels::FillUniformBf16(w, size_t(N) * K, 1000u + i, 0.0f,
                                            1.0f / std::sqrt(float(K)), nullptr),
          "fill");
    host[i] = {w, nullptr, nullptr, N, K};
    bytes += size_t(N) * K * sizeof(bf16);
    max_n = std::max(max_n, N);
  }
  bf16 *x0, *ping, *pong;
  Check(cudaMalloc(&x0, kMaxK * sizeof(bf16)), "x");
  Check(cudaMalloc(&ping, max_n * sizeof(bf16)), "y");
  Check(cudaMalloc(&pong, max_n * sizeof(bf16)), "y");
  Check(attnres::kernels::FillUniformBf16(x0, kMaxK, 7u, 0.0f, 0.5f, nullptr), "fill");
  for (int i = 0; i < count; ++i) {
    host[i].x = i == 0 ? x0 : host[i - 1].y;
    host[i].y = i % 2 == 0 ? ping : pong;
  }
  Matrix* dev;
  Check(cudaMalloc(&dev, count * sizeof(Matrix)), "chain");
  Check(cudaMemcpy(dev, host.data(), count * sizeof(Matrix), cudaMemcpyHostToDevice), "chain");
  Check(cudaDeviceSynchronize(), "fill");

  cudaStream_t s;
  Check(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "stream");
  Check(cudaFuncSetAttribute(LaunchedPhase, cudaFuncAttributeMaxDynamicSharedMemorySize, kXSmem),
        "smem");
  Check(cudaFuncSetAttribute(PersistentChain<true>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                             kXSmem),
        "smem");
  Check(cudaFuncSetAttribute(PersistentChain<false>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                             kXSmem),
        "smem");
  int per_sm = 0, sms = attnres::kernels::NumSms();
  Check(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, PersistentChain<true>, kThreads,
                                                      kXSmem),
        "occupancy");
  const int blocks = per_sm * sms;
  const int last_n = host[count - 1].N;
  bf16* last = host[count - 1].y;

  cudaGraphExec_t production = Capture(s, count, [&](int i) {
    Check(
        attnres::kernels::Gemv(host[i].x, host[i].w, host[i].y, 1, host[i].N, host[i].K, false, s),
        "Gemv");
  });
  cudaGraphExec_t launches = Capture(s, count, [&](int i) {
    Check(attnres::kernels::LaunchPdl(LaunchedPhase, dim3(blocks), dim3(kThreads), kXSmem, s,
                                      host[i]),
          "launch");
  });
  auto persistent = [&](bool sync) {
    Chain c{dev, count};
    void* args[] = {&c};
    Check(cudaLaunchCooperativeKernel(sync ? reinterpret_cast<const void*>(PersistentChain<true>)
                                           : reinterpret_cast<const void*>(PersistentChain<false>),
                                      dim3(blocks), dim3(kThreads), args, kXSmem, s),
          "cooperative launch");
  };

  // Checks: the first projection, production against ChainPhase (bf16 rounding apart); the whole
  // chain, launches against persistent (bit for bit).
  Check(attnres::kernels::Gemv(x0, host[0].w, host[0].y, 1, host[0].N, host[0].K, false, s),
        "Gemv");
  const auto first_prod = Download(host[0].y, host[0].N);
  Check(
      attnres::kernels::LaunchPdl(LaunchedPhase, dim3(blocks), dim3(kThreads), kXSmem, s, host[0]),
      "launch");
  const auto first_mine = Download(host[0].y, host[0].N);
  double worst = 0.0, scale = 0.0;
  for (int i = 0; i < host[0].N; ++i) {
    worst = std::max(worst, double(std::fabs(ToFloat(first_prod[i]) - ToFloat(first_mine[i]))));
    scale = std::max(scale, double(std::fabs(ToFloat(first_prod[i]))));
  }
  Check(cudaGraphLaunch(launches, s), "graph");
  Check(cudaStreamSynchronize(s), "sync");
  const auto chain_launched = Download(last, last_n);
  persistent(true);
  Check(cudaStreamSynchronize(s), "sync");
  const auto chain_persistent = Download(last, last_n);
  int differ = 0;
  for (int i = 0; i < last_n; ++i) differ += chain_launched[i] != chain_persistent[i];

  const float t_prod = TimeMs(s, [&] { Check(cudaGraphLaunch(production, s), "graph"); });
  const float t_launch = TimeMs(s, [&] { Check(cudaGraphLaunch(launches, s), "graph"); });
  const float t_pers = TimeMs(s, [&] { persistent(true); });
  const float t_free = TimeMs(s, [&] { persistent(false); });

  std::printf(
      "\n## %s: %d matrices (%d layers), %.2f GB of weights, M = 1; %d blocks (%d an SM)\n\n",
      sh.name, count, sh.layers, bytes / 1e9, blocks, per_sm);
  std::printf(
      "checks: first projection, production vs ChainPhase: max |diff| %.3g (max |y| %.3g); "
      "chain, launches vs persistent: %d of %d outputs differ\n\n",
      worst, scale, differ, last_n);
  std::printf("| form | ms | us a matrix | GB/s | of this card's copy |\n|---|---|---|---|---|\n");
  auto row = [&](const char* form, float ms) {
    const double bps = bytes / (ms * 1e-3);
    std::printf("| %s | %.3f | %.2f | %.0f | %.1f%% |\n", form, ms, ms * 1e3 / count, bps / 1e9,
                copy_bps > 0 ? 100.0 * bps / copy_bps : 0.0);
  };
  row("production (kernels::Gemv, PDL, graph)", t_prod);
  row("launches (ChainPhase, PDL, graph)", t_launch);
  row("persistent (grid.sync between matrices)", t_pers);
  row("unchained (no sync: not a valid chain)", t_free);
  std::printf("\nper boundary: launches - persistent %.2f us, persistent - unchained %.2f us\n",
              (t_launch - t_pers) * 1e3 / (count - 1), (t_pers - t_free) * 1e3 / (count - 1));

  cudaGraphExecDestroy(production);
  cudaGraphExecDestroy(launches);
  cudaStreamDestroy(s);
  for (void* p : owned) cudaFree(p);
  cudaFree(x0);
  cudaFree(ping);
  cudaFree(pong);
  cudaFree(dev);
}

}  // namespace

int main(int argc, char** argv) {
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::printf("no CUDA device: skipped\n");
    return 0;
  }
  const Shape shapes[] = {{"llama-1b", 16, 2048, 3072, 8192}, {"llama-8b", 32, 4096, 6144, 14336}};
  std::vector<std::string> wanted(argv + 1, argv + argc);
  if (wanted.empty()) wanted = {"llama-1b", "llama-8b"};
  cudaDeviceProp prop;
  Check(cudaGetDeviceProperties(&prop, 0), "device properties");
  const double copy_bps = attnres::MeasuredCopyBytesPerS();
  std::printf("# attnres-chain-bench on %s: copy %.2f TB/s (read + written)\n", prop.name,
              copy_bps / 1e12);
  for (const std::string& name : wanted) {
    const Shape* sh = nullptr;
    for (const Shape& s : shapes) {
      if (name == s.name) sh = &s;
    }
    if (sh == nullptr) {
      std::fprintf(stderr, "attnres-chain-bench: unknown shape %s (llama-1b, llama-8b)\n",
                   name.c_str());
      return 2;
    }
    RunShape(*sh, copy_bps);
  }
  return 0;
}
