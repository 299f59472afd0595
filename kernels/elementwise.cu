// Memory-bound elementwise ops: embedding gather, SwiGLU, the per-step RoPE table, and seeded
// uniform fills for benchmark weights made on the device.
#include <atomic>
#include <cmath>

#include "kernels/common.cuh"
#include "kernels/env_switch.h"
#include "kernels/ops.h"

namespace attnres::kernels {
namespace {

__global__ void EmbeddingGatherKernel(const int32_t* ids, const bf16* table, int d, bf16* out) {
  WaitForPrevious();
  LetNextStart();
  const int t = blockIdx.x;
  const bf16* src = table + static_cast<size_t>(ids[t]) * d;
  bf16* dst = out + static_cast<size_t>(t) * d;
  for (int i = threadIdx.x * 8; i < d; i += blockDim.x * 8) {
    *reinterpret_cast<uint4*>(dst + i) = *reinterpret_cast<const uint4*>(src + i);
  }
}

__global__ void SwiGluKernel(const bf16* gate_up, int T, int f, bf16* out) {
  WaitForPrevious();
  LetNextStart();
  const size_t chunks = static_cast<size_t>(T) * f / 8;
  for (size_t c = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; c < chunks;
       c += static_cast<size_t>(gridDim.x) * blockDim.x) {
    const size_t t = c * 8 / f, i = c * 8 % f;
    float g[8], u[8], y[8];
    LoadBf16x8(gate_up + t * 2 * f + i, g);
    LoadBf16x8(gate_up + t * 2 * f + f + i, u);
#pragma unroll
    for (int k = 0; k < 8; ++k) y[k] = SiluMul(g[k], u[k]);
    StoreBf16x8(out + t * f + i, y);
  }
}

__global__ void RopeTableKernel(const int32_t* positions, const double* inv_freq, int T, int half,
                                float2* table) {
  WaitForPrevious();
  LetNextStart();
  const int n = T * half;
  for (int k = blockIdx.x * blockDim.x + threadIdx.x; k < n; k += gridDim.x * blockDim.x) {
    const double angle = positions[k / half] * inv_freq[k % half];
    double s, c;
    sincos(angle, &s, &c);
    table[k] = make_float2(static_cast<float>(c), static_cast<float>(s));
  }
}

template <typename T>
__global__ void FillUniformKernel(T* out, size_t n, uint64_t seed, float mean, float half_width) {
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    const float v = mean + static_cast<float>((2.0 * SampleUniformBits(seed, i) - 1.0) * half_width);
    out[i] = static_cast<T>(v);
  }
}

int GridFor(size_t n, int threads) {
  return static_cast<int>(std::min<size_t>((n + threads - 1) / threads, 132 * 16));
}

}  // namespace

bool PdlEnabled() {
  static const bool enabled = EnvOn("ATTNRES_PDL");
  return enabled;
}

int NumSms() {
  constexpr int kFallback = 132, kDevices = 64;
  static std::atomic<int> known[kDevices];  // 0: not asked yet
  int device = 0, n = 0;
  if (cudaGetDevice(&device) != cudaSuccess) return kFallback;
  if (device < kDevices && (n = known[device].load(std::memory_order_relaxed)) > 0) return n;
  if (cudaDeviceGetAttribute(&n, cudaDevAttrMultiProcessorCount, device) != cudaSuccess) {
    return kFallback;
  }
  if (device < kDevices) known[device].store(n, std::memory_order_relaxed);
  return n;
}

cudaError_t EmbeddingGather(const int32_t* ids, const bf16* table, int T, int d, bf16* out,
                            cudaStream_t stream) {
  if (T == 0) return cudaSuccess;
  return LaunchPdl(EmbeddingGatherKernel, T, 128, 0, stream, ids, table, d, out);
}

cudaError_t SwiGlu(const bf16* gate_up, int T, int f, bf16* out, cudaStream_t stream) {
  if (T == 0) return cudaSuccess;
  return LaunchPdl(SwiGluKernel, GridFor(static_cast<size_t>(T) * f / 8, 256), 256, 0, stream,
                   gate_up, T, f, out);
}

cudaError_t RopeTable(const int32_t* positions, const double* inv_freq, int T, int half,
                      float2* table, cudaStream_t stream) {
  if (T == 0) return cudaSuccess;
  return LaunchPdl(RopeTableKernel, GridFor(static_cast<size_t>(T) * half, 256), 256, 0, stream,
                   positions, inv_freq, T, half, table);
}

cudaError_t FillUniformBf16(bf16* out, size_t n, uint64_t seed, float mean, float stddev,
                            cudaStream_t stream) {
  FillUniformKernel<<<GridFor(n, 256), 256, 0, stream>>>(out, n, seed, mean,
                                                         stddev * sqrtf(3.0f));
  return cudaGetLastError();
}

cudaError_t FillUniformF32(float* out, size_t n, uint64_t seed, float mean, float stddev,
                           cudaStream_t stream) {
  FillUniformKernel<<<GridFor(n, 256), 256, 0, stream>>>(out, n, seed, mean, stddev * sqrtf(3.0f));
  return cudaGetLastError();
}

}  // namespace attnres::kernels
