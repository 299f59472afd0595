// Tensor-core and async-copy primitives shared by the kernels that run mma.sync (paged attention,
// Gemv, the skinny GEMM): 16-byte cp.async into shared memory, ldmatrix, and the m16n8k16 bf16
// mma with fp32 accumulators. Internal to kernels/ (not part of the ops.h contract).
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <cstdint>

namespace attnres::kernels {

__device__ inline uint32_t SmemAddr(const void* p) {
  return static_cast<uint32_t>(__cvta_generic_to_shared(p));
}

// 16-byte async copy; invalid copies zero-fill the destination (src is not read, but must be a
// valid address).
__device__ inline void CpAsync16(uint32_t dst, const void* src, bool valid) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src),
               "r"(valid ? 16 : 0));
}
__device__ inline void CpAsync16(void* dst, const void* src, bool valid) {
  CpAsync16(SmemAddr(dst), src, valid);
}
// The same with a 256-byte L2 prefetch, for rows streamed front to back (weights).
__device__ inline void CpAsync16Stream(uint32_t dst, const void* src, bool valid) {
  asm volatile("cp.async.cg.shared.global.L2::256B [%0], [%1], 16, %2;\n" ::"r"(dst), "l"(src),
               "r"(valid ? 16 : 0));
}
__device__ inline void CpAsyncCommit() { asm volatile("cp.async.commit_group;\n" ::); }
template <int N>
__device__ inline void CpAsyncWait() {
  asm volatile("cp.async.wait_group %0;\n" ::"n"(N));
}

// Four 8x8 b16 matrices; lane l gives the row address of matrix l / 8, row l % 8.
__device__ inline void LdMatrixX4(uint32_t (&r)[4], uint32_t addr) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(addr));
}
__device__ inline void LdMatrixX4(uint32_t (&r)[4], const void* p) { LdMatrixX4(r, SmemAddr(p)); }
__device__ inline void LdMatrixX4Trans(uint32_t (&r)[4], const void* p) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [%4];\n"
               : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
               : "r"(SmemAddr(p)));
}

// d += A . B for one m16n8k16 tile: A 16x16 bf16 (row-major fragments a0..a3: rows g and g + 8 at
// k 2t.., then the same rows at k 2t + 8..), B 16x8 bf16 (column fragments b0, b1), fp32
// accumulators d[4] (d0, d1: row g, columns 2t, 2t + 1; d2, d3: row g + 8). g = lane / 4,
// t = lane % 4.
__device__ __forceinline__ void Mma(float (&d)[4], uint32_t a0, uint32_t a1, uint32_t a2,
                                    uint32_t a3, uint32_t b0, uint32_t b1) {
  asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, {%4, %5, %6, %7}, "
      "{%8, %9}, {%0, %1, %2, %3};"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a0), "r"(a1), "r"(a2), "r"(a3), "r"(b0), "r"(b1));
}
__device__ __forceinline__ void Mma(float (&d)[4], const uint32_t (&a)[4], uint32_t b0,
                                    uint32_t b1) {
  Mma(d, a[0], a[1], a[2], a[3], b0, b1);
}

}  // namespace attnres::kernels
