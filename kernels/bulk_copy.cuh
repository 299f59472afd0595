// Bulk (TMA) copies from global into shared memory, completed through an mbarrier (sm_90): one
// thread asks for a whole row in one instruction, so the bytes in flight per SM are bounded by
// shared memory, not by registers. Internal to kernels/ (not part of the ops.h contract).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>

#include "kernels/mma.cuh"

namespace attnres::kernels {

// An mbarrier in shared memory expecting one arrival (the issuing thread's expect_tx) per phase.
// Call from one thread, then FenceBarrierInit() and a __syncthreads() before anyone waits on it.
__device__ inline void BarrierInit(uint64_t* bar) {
  asm volatile("mbarrier.init.shared::cta.b64 [%0], 1;" ::"r"(SmemAddr(bar)));
}
// Makes initialized barriers visible to the async proxy that completes the bulk copies.
__device__ inline void FenceBarrierInit() {
  asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
}

// Copies `bytes` (a multiple of 16; both addresses 16-byte aligned) from global src to shared
// dst, and arrives on bar expecting exactly those bytes: the barrier's phase 0 completes when
// they have landed. One call per barrier and phase.
__device__ inline void BulkCopyToShared(void* dst, const void* src, uint32_t bytes, uint64_t* bar) {
  const uint32_t b = SmemAddr(bar);
  asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" ::"r"(b), "r"(bytes)
               : "memory");
  asm volatile(
      "cp.async.bulk.shared::cluster.global.mbarrier::complete_tx::bytes [%0], [%1], %2, [%3];" ::
          "r"(SmemAddr(dst)),
      "l"(src), "r"(bytes), "r"(b)
      : "memory");
}

// Waits until phase 0 of bar has completed (the copy's bytes are visible to this thread).
__device__ inline void BarrierWaitPhase0(uint64_t* bar) {
  const uint32_t b = SmemAddr(bar);
  uint32_t done = 0;
  while (!done) {
    asm volatile(
        "{\n .reg .pred p;\n mbarrier.try_wait.parity.shared::cta.b64 p, [%1], 0;\n"
        " selp.u32 %0, 1, 0, p;\n}"
        : "=r"(done)
        : "r"(b)
        : "memory");
  }
}

}  // namespace attnres::kernels
