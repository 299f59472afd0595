// Device helpers shared by the kernels: 16-byte bf16 vector loads/stores and block reductions.
// Internal to kernels/ (not part of the ops.h contract).
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <utility>

namespace attnres::kernels {

// ---- Programmatic dependent launch (sm_90) ----
// A kernel launched through LaunchPdl may be scheduled while the previous kernel in its stream is
// still running, which hides the launch gap between the many small kernels of a decode step. It
// must call WaitForPrevious() before it touches memory that earlier kernels write (or read, where
// it writes): the wait is for the whole previous grid and its memory, so stream-order semantics
// are unchanged. LetNextStart() lets the next kernel be scheduled at once (it will wait for this
// one to finish).
//
// Rule: every kernel calls LetNextStart() only after its own WaitForPrevious(). So when a kernel
// starts, the kernel two launches back (and all before it) has finished and its writes are
// visible; kernels of other libraries (cuBLASLt, NCCL) never trigger early, so after them the
// whole stream is done. Before its wait a kernel may therefore read constants (weights), the
// step's uploaded indices, and anything the kernels before the previous one wrote (the residual
// bank, the prefix, K/V of earlier steps): that hides their DRAM latency behind the previous
// kernel's tail. Only the previous kernel's outputs need the wait.
__device__ __forceinline__ void WaitForPrevious() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.wait;" ::: "memory");
#endif
}
__device__ __forceinline__ void LetNextStart() {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
  asm volatile("griddepcontrol.launch_dependents;");
#endif
}

// Reads of data that earlier kernels of the stream write (activations, the residual bank, split
// partials) must stay after WaitForPrevious. __ldg / ld.global.nc promise the compiler that the
// data is constant for the kernel's whole lifetime, which under programmatic dependent launch
// starts while the previous kernel is still writing, so it may hoist them above the wait (it
// did: the Gemv read stale activations once it had registers to spare). These are ordinary L2
// loads (.cg) in volatile asm, kept in program order with the wait. Weights, norms and the
// step's uploaded indices are constant and keep __ldg.
__device__ __forceinline__ uint4 LoadProduced(const void* p) {
  uint4 v;
  asm volatile("ld.global.cg.v4.u32 {%0, %1, %2, %3}, [%4];"
               : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
               : "l"(p));
  return v;
}
__device__ __forceinline__ float LoadProduced(const float* p) {
  float v;
  asm volatile("ld.global.cg.f32 %0, [%1];" : "=f"(v) : "l"(p));
  return v;
}

// Weights streamed once, front to back (the decode Gemvs): the read-only path, no L1
// allocation, and a 256-byte L2 prefetch since the neighbouring bytes of the row are needed next.
// Only for constants, so it may run before WaitForPrevious; an activation written by the previous
// kernel is read with LoadProduced after the wait.
__device__ __forceinline__ uint4 LoadStream(const __nv_bfloat16* p) {
  uint4 v;
  asm("ld.global.nc.L1::no_allocate.L2::256B.v4.u32 {%0, %1, %2, %3}, [%4];"
      : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w)
      : "l"(p));
  return v;
}

// Whether LaunchPdl asks for early scheduling (host; ATTNRES_PDL=0 turns it off, e.g. to
// measure what it buys). Defined in elementwise.cu.
bool PdlEnabled();

// SMs of the current device, asked once per device (host; 132 if the runtime cannot say).
// Defined in elementwise.cu.
int NumSms();

// programmatic = false: a plain launch, for a kernel that must see everything before it
// complete. Needed after a join from another stream: stream capture turns every incoming edge
// of a PDL launch into a programmatic one, the join's too (the kernel could then start, and
// read, before the other stream's kernel is done).
template <typename... Params, typename... Args>
cudaError_t LaunchMaybePdl(bool programmatic, void (*kernel)(Params...), dim3 grid, dim3 block,
                           size_t smem, cudaStream_t stream, Args&&... args) {
  cudaLaunchAttribute attr;
  attr.id = cudaLaunchAttributeProgrammaticStreamSerialization;
  attr.val.programmaticStreamSerializationAllowed = 1;
  cudaLaunchConfig_t config = {};
  config.gridDim = grid;
  config.blockDim = block;
  config.dynamicSmemBytes = smem;
  config.stream = stream;
  config.attrs = &attr;
  config.numAttrs = programmatic && PdlEnabled() ? 1 : 0;
  return cudaLaunchKernelEx(&config, kernel, std::forward<Args>(args)...);
}

template <typename... Params, typename... Args>
cudaError_t LaunchPdl(void (*kernel)(Params...), dim3 grid, dim3 block, size_t smem,
                      cudaStream_t stream, Args&&... args) {
  return LaunchMaybePdl(true, kernel, grid, block, smem, stream, std::forward<Args>(args)...);
}

// Lets kKernel use up to `bytes` of dynamic shared memory (above the 48 KiB default). The
// attribute belongs to the kernel in one device's context, so it is set once per device (rank
// threads of a tensor-parallel runner each launch on their own GPU).
template <auto kKernel>
cudaError_t AllowDynamicSmem(int bytes) {
  static std::atomic<uint64_t> done{0};  // one bit per device ordinal < 64
  int device = 0;
  if (cudaError_t e = cudaGetDevice(&device); e != cudaSuccess) return e;
  const uint64_t bit = device < 64 ? (1ull << device) : 0;
  if (bit != 0 && (done.load(std::memory_order_acquire) & bit) != 0) return cudaSuccess;
  if (cudaError_t e =
          cudaFuncSetAttribute(kKernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes);
      e != cudaSuccess) {
    return e;
  }
  done.fetch_or(bit, std::memory_order_acq_rel);
  return cudaSuccess;
}

// Blocks of kKernel, launched with `threads` threads and `smem` bytes of dynamic shared memory,
// that the device holds resident at once: the occupancy calculator's blocks per SM times the SMs,
// asked once per device and block size (each caller's smem is a function of its threads); 0 if
// the runtime cannot say.
template <auto kKernel>
int ResidentBlocks(int threads, size_t smem) {
  constexpr int kDevices = 64, kSizes = 1024 / 32 + 1;
  static std::atomic<int> known[kDevices][kSizes];  // [device][warps]; 0: not asked yet
  const int warps = threads / 32;
  int device = 0;
  if (cudaGetDevice(&device) != cudaSuccess || threads % 32 != 0 || warps < 1 ||
      warps >= kSizes) {
    return 0;
  }
  if (device < kDevices) {
    if (const int n = known[device][warps].load(std::memory_order_relaxed); n > 0) return n;
  }
  int per_sm = 0;
  if (cudaOccupancyMaxActiveBlocksPerMultiprocessor(&per_sm, kKernel, threads, smem) !=
      cudaSuccess) {
    return 0;
  }
  const int n = std::max(per_sm, 1) * NumSms();
  if (device < kDevices) known[device][warps].store(n, std::memory_order_relaxed);
  return n;
}

// Asks for the line holding p in this SM's L1 (a hint: nothing waits for it). For constants
// that a block reads later in turn, so each read hits L1 instead of waiting on L2 or DRAM.
__device__ __forceinline__ void PrefetchL1(const void* p) {
  asm volatile("prefetch.global.L1 [%0];" ::"l"(p));
}

// 8 bf16 (one 16-byte word) <-> 8 floats.
__device__ inline void Bf16x8ToF32(const uint4& raw, float (&v)[8]) {
  const __nv_bfloat162* h = reinterpret_cast<const __nv_bfloat162*>(&raw);
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const float2 f = __bfloat1622float2(h[i]);
    v[2 * i] = f.x;
    v[2 * i + 1] = f.y;
  }
}

__device__ inline void Bf16x4ToF32(const uint2& raw, float (&v)[4]) {
  const __nv_bfloat162* h = reinterpret_cast<const __nv_bfloat162*>(&raw);
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    const float2 f = __bfloat1622float2(h[i]);
    v[2 * i] = f.x;
    v[2 * i + 1] = f.y;
  }
}

// 8 bf16 <-> 8 floats through one 16-byte access.
__device__ inline void LoadBf16x8(const __nv_bfloat16* p, float (&v)[8]) {
  const uint4 raw = *reinterpret_cast<const uint4*>(p);  // one 16-byte load, then unpack
  Bf16x8ToF32(raw, v);
}

__device__ inline void StoreBf16x8(__nv_bfloat16* p, const float (&v)[8]) {
  uint4 raw;
  __nv_bfloat162* h = reinterpret_cast<__nv_bfloat162*>(&raw);
#pragma unroll
  for (int i = 0; i < 4; ++i) h[i] = __floats2bfloat162_rn(v[2 * i], v[2 * i + 1]);
  *reinterpret_cast<uint4*>(p) = raw;
}

// SwiGLU of one element pair, fp32 (twin: SwiGlu in models/cpu_ops.h): silu(g) * u. Shared by
// the SwiGLU kernel and the GEMMs' fused gate/up epilogue (StoreGemmOut) so both round alike.
__device__ __forceinline__ float SiluMul(float g, float u) { return g / (1.0f + __expf(-g)) * u; }

// What a small-M GEMM (Gemv, the skinny GEMM) writes: y in bf16 or fp32, or the MLP's SwiGLU of
// a gate and an up sum. Both sums are rounded to bf16 first, as the unfused path stores them (the
// GEMM's bf16 output, then the SwiGLU kernel), so the fused forms match it bit for bit.
// kRopeKv (Gemv only, its own epilogue: gemv.cu): the qkv projection's RoPE and K/V page write.
enum class GemmOut { kBf16, kF32, kSwiGlu, kRopeKv };
template <GemmOut kOut>
__device__ __forceinline__ void StoreGemmOut(void* out, size_t i, float sum, float up_sum) {
  if constexpr (kOut == GemmOut::kF32) {
    static_cast<float*>(out)[i] = sum;
  } else if constexpr (kOut == GemmOut::kBf16) {
    static_cast<__nv_bfloat16*>(out)[i] = __float2bfloat16_rn(sum);
  } else {
    static_assert(kOut == GemmOut::kSwiGlu);
    const float g = __bfloat162float(__float2bfloat16_rn(sum));
    const float u = __bfloat162float(__float2bfloat16_rn(up_sum));
    static_cast<__nv_bfloat16*>(out)[i] = __float2bfloat16_rn(SiluMul(g, u));
  }
}

__device__ inline float WarpSum(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ inline float WarpMax(float v) {
#pragma unroll
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

}  // namespace attnres::kernels
