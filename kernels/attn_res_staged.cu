// The staged residual boundary for prefill-sized row counts: ops.h ResidualBoundary in one-phase
// form (prefix += delta, the AttnRes mix over bank + x in fp32, the snapshot or the new prefix,
// the RMSNorm; or, without a mix, the standard add + norm) with one block per row whose sources
// (bank slots, prefix, delta) are bulk-copied into shared memory at the start, each on its own
// mbarrier.
//
// Why: the register form (attn_res.cu, 4 chunks per thread, bank groups of 2) holds at most one
// group per row in registers, so each group is a round trip and the bank streams at 67-76% of
// copy (bench/BENCHMARKS.md run 23). Here a row's whole bank is in flight at once, bounded by
// shared memory, and the dots of slot j run as soon as slot j lands. All scores are known after
// one block reduction, so the mix is a plain softmax (no online rescaling) and the row takes two
// reductions whatever the bank size, against one per group. At T = 4096, d = 4096 (ncu): the
// standard add + norm 35.5 -> 32.8 us (96% of copy), 8 slots 116.1 -> 109.0 us (86%), faster at
// every bank size but 2 (bench/BENCHMARKS.md run 26).
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "kernels/attn_res_staged.h"
#include "kernels/boundary_row.cuh"
#include "kernels/bulk_copy.cuh"
#include "kernels/common.cuh"

namespace attnres::kernels {
namespace {

constexpr int kMaxStagedSlots = 8;          // bank slots mixed (instances 0..8; 0: no mix)
constexpr int kStagedThreads = 256;         // at most; d <= 4096: 2 chunks of 8 per thread
constexpr int kStagedMaxSmem = 112 * 1024;  // a row's staged sources: two blocks per SM at least

static_assert(kMaxStagedSlots + 2 <= kRowSumPad);  // the dots, x's dot and sum(x^2) in one RowSum

// kNb bank slots mixed (0: no mix, h = x); VPT chunks of 8 values per thread. Dynamic shared
// memory: [kNb + 2][d] bf16, the slots, then prefix and delta (each present one).
template <int kNb, int VPT>
__global__ void __launch_bounds__(kStagedThreads, 2)
    StagedBoundaryKernel(const ResidualBoundaryArgs a) {
  constexpr bool kMix = kNb > 0;
  constexpr int kSlots = kMix ? kNb : 1;  // array extents
  extern __shared__ __align__(128) uint8_t staged[];
  __shared__ uint64_t bars[kNb + 2];  // slot j, then prefix, delta
  __shared__ __align__(16) float scratch[(kStagedThreads / 32 + 1) * kRowSumPad];
  const int k = blockIdx.x;
  const int t = a.rows ? __ldg(a.rows + k) : k;
  const int d = a.d;
  const size_t row = static_cast<size_t>(t) * d;
  const bf16* slot_s = reinterpret_cast<const bf16*>(staged);  // [kNb][d]
  const bf16* prefix_s = slot_s + static_cast<size_t>(kNb) * d;
  const bf16* delta_s = prefix_s + d;
  const bool has_delta = a.delta != nullptr;
  const bool has_prefix = !has_delta || !a.prefix_empty;
  const uint32_t row_bytes = static_cast<uint32_t>(d) * sizeof(bf16);

  WaitForPrevious();  // every source may be a recent kernel's output (prefill: after cuBLASLt)
  LetNextStart();
  if (threadIdx.x == 0) {
#pragma unroll
    for (int j = 0; j < kNb + 2; ++j) BarrierInit(&bars[j]);
    FenceBarrierInit();
    // x's sources first: the first pass needs them with slot 0.
    if (has_prefix) {
      BulkCopyToShared(const_cast<bf16*>(prefix_s), a.prefix + row, row_bytes, &bars[kNb]);
    }
    if (has_delta) {
      BulkCopyToShared(const_cast<bf16*>(delta_s), a.delta + row, row_bytes, &bars[kNb + 1]);
    }
#pragma unroll
    for (int j = 0; j < kNb; ++j) {
      BulkCopyToShared(const_cast<bf16*>(slot_s) + static_cast<size_t>(j) * d,
                       a.bank + (static_cast<size_t>(j) * a.T + t) * d, row_bytes, &bars[j]);
    }
  }
  // The query and the slots' cached inverse RMS while the copies fly.
  int col[VPT];
  bool valid[VPT];
  float uq[VPT][kMix ? 8 : 1];
#pragma unroll
  for (int v = 0; v < VPT; ++v) {
    col[v] = (threadIdx.x + v * blockDim.x) * 8;
    valid[v] = col[v] < d;
    if constexpr (kMix) {
#pragma unroll
      for (int i = 0; i < 8; ++i) uq[v][i] = 0.0f;
      if (valid[v]) LoadF32x8(a.u + col[v], uq[v]);
    }
  }
  float inv[kSlots];
#pragma unroll
  for (int j = 0; j < kNb; ++j) {
    inv[j] = LoadProduced(a.bank_inv_rms + static_cast<size_t>(j) * a.T + t);
  }
  __syncthreads();  // the barriers are initialized

  // x = bf16(prefix + delta) (or the one present), packed in xr; its square sum and dot.
  if (has_prefix) BarrierWaitPhase0(&bars[kNb]);
  if (has_delta) BarrierWaitPhase0(&bars[kNb + 1]);
  float red[kNb + 2];  // the slots' dots, x's dot, sum(x^2)
#pragma unroll
  for (int j = 0; j < kNb + 2; ++j) red[j] = 0.0f;
  uint4 xr[VPT];
#pragma unroll
  for (int v = 0; v < VPT; ++v) {
    xr[v] = make_uint4(0, 0, 0, 0);
    if (!valid[v]) continue;
    xr[v] = *reinterpret_cast<const uint4*>((has_delta ? delta_s : prefix_s) + col[v]);
    float x[8];
    Bf16x8ToF32(xr[v], x);
    if (has_delta && has_prefix) {
      float p[8];
      Bf16x8ToF32(*reinterpret_cast<const uint4*>(prefix_s + col[v]), p);
#pragma unroll
      for (int i = 0; i < 8; ++i) x[i] = p[i] + x[i];
      StoreBf16x8(reinterpret_cast<bf16*>(&xr[v]), x);  // rounds to bf16
      Bf16x8ToF32(xr[v], x);
    }
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      red[kNb + 1] += x[i] * x[i];
      if constexpr (kMix) red[kNb] += uq[v][i] * x[i];
    }
  }
  // Each slot's dot as soon as it has landed.
#pragma unroll
  for (int j = 0; j < kNb; ++j) {
    BarrierWaitPhase0(&bars[j]);
#pragma unroll
    for (int v = 0; v < VPT; ++v) {
      if (!valid[v]) continue;
      float f[8];
      Bf16x8ToF32(*reinterpret_cast<const uint4*>(slot_s + static_cast<size_t>(j) * d + col[v]), f);
#pragma unroll
      for (int i = 0; i < 8; ++i) red[j] += uq[v][i] * f[i];
    }
  }
  if constexpr (kMix) {
    RowSum<kNb + 2>(red, scratch);
  } else {
    RowSum<1>(*reinterpret_cast<float(*)[1]>(&red[kNb + 1]), scratch);
  }
  const float sq_x = red[kNb + 1];

  // The softmax over the slots, then x (ATTNRES.md's candidate order), and the weighted sum.
  float p[kSlots], px = 1.0f, inv_l = 1.0f;
  float h[VPT][8];
  float hs[1] = {0.0f};
  if constexpr (kMix) {
    const float s_x = red[kNb] * rsqrtf(sq_x / d + a.eps);
    float m = s_x;
#pragma unroll
    for (int j = 0; j < kNb; ++j) {
      p[j] = red[j] * inv[j];
      m = fmaxf(m, p[j]);
    }
    float l = 0.0f;
#pragma unroll
    for (int j = 0; j < kNb; ++j) {
      p[j] = __expf(p[j] - m);
      l += p[j];
    }
    px = __expf(s_x - m);
    l += px;
    inv_l = 1.0f / l;
  }
#pragma unroll
  for (int v = 0; v < VPT; ++v) {
    float x[8];
    Bf16x8ToF32(xr[v], x);
#pragma unroll
    for (int i = 0; i < 8; ++i) h[v][i] = 0.0f;
#pragma unroll
    for (int j = 0; j < kNb; ++j) {
      float f[8];
      Bf16x8ToF32(
          valid[v] ? *reinterpret_cast<const uint4*>(slot_s + static_cast<size_t>(j) * d + col[v])
                   : make_uint4(0, 0, 0, 0),
          f);
#pragma unroll
      for (int i = 0; i < 8; ++i) h[v][i] += p[j] * f[i];
    }
#pragma unroll
    for (int i = 0; i < 8; ++i) {
      h[v][i] = kMix ? (h[v][i] + px * x[i]) * inv_l : x[i];
      hs[0] += h[v][i] * h[v][i];
    }
  }

  // The new prefix lands in the snapshot slot (a fresh one) or back in the prefix.
  if (has_delta || a.snapshot) {
    bf16* dst =
        a.snapshot ? a.bank + (static_cast<size_t>(a.bank_count) * a.T + t) * d : a.prefix + row;
#pragma unroll
    for (int v = 0; v < VPT; ++v) {
      if (valid[v]) *reinterpret_cast<uint4*>(dst + col[v]) = xr[v];
    }
  }
  if (a.snapshot && threadIdx.x == 0) {
    a.bank_inv_rms[static_cast<size_t>(a.bank_count) * a.T + t] = rsqrtf(sq_x / d + a.eps);
  }

  // RMSNorm of h with gamma -> out (without a mix, h = x: its square sum is known).
  if constexpr (kMix) {
    RowSum<1>(hs, scratch);
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

  // Mix weights of recorded rows (a lone source weighs 1).
  if (a.mix_weights && a.u && threadIdx.x == 0) {
    const int record = __ldg(a.record_row + t);
    if (record >= 0) {
      float* alpha = a.mix_weights + static_cast<size_t>(record) * a.mix_stride + a.mix_offset;
#pragma unroll
      for (int j = 0; j < kNb; ++j) alpha[j] = p[j] * inv_l;
      alpha[kNb] = px * inv_l;
    }
  }
}

// Opt-in (ATTNRES_STAGED_BOUNDARY=1): faster per kernel, slower in the prefill step (runs 26-27).
bool StagedEnabled() {
  static const bool enabled = [] {
    const char* v = std::getenv("ATTNRES_STAGED_BOUNDARY");
    return v != nullptr && std::strcmp(v, "0") != 0;
  }();
  return enabled;
}

// Bank slots the boundary mixes (0: none, the add + norm alone).
int Mixed(const ResidualBoundaryArgs& a) { return a.u && a.bank_count > 0 ? a.bank_count : 0; }

size_t StagedBytes(int nb, int d) { return static_cast<size_t>(nb + 2) * d * sizeof(bf16); }

bool Aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

template <int kNb, int VPT>
cudaError_t Launch(const ResidualBoundaryArgs& a, cudaStream_t stream) {
  constexpr auto kKernel = StagedBoundaryKernel<kNb, VPT>;
  if (cudaError_t e = AllowDynamicSmem<kKernel>(kStagedMaxSmem); e != cudaSuccess) return e;
  const int chunks = a.d / 8;
  const int threads = std::max(32, ((chunks + VPT - 1) / VPT + 31) / 32 * 32);
  return LaunchPdl(kKernel, dim3(a.num_rows), dim3(threads), StagedBytes(kNb, a.d), stream, a);
}

template <int VPT, int... kNbs>
cudaError_t LaunchBySlots(const ResidualBoundaryArgs& a, cudaStream_t stream,
                          std::integer_sequence<int, kNbs...>) {
  using LaunchFn = cudaError_t (*)(const ResidualBoundaryArgs&, cudaStream_t);
  static constexpr LaunchFn kBySlots[] = {Launch<kNbs, VPT>...};
  return kBySlots[Mixed(a)](a, stream);
}

}  // namespace

bool StagedBoundaryServes(const ResidualBoundaryArgs& a) {
  return StagedEnabled() && Mixed(a) <= kMaxStagedSlots && a.summary_queries == 0 &&
         a.summary_index < 0 && !a.phase1_only && a.d > 0 && a.d % 8 == 0 &&
         a.d <= 8 * 4 * kStagedThreads && StagedBytes(Mixed(a), a.d) <= kStagedMaxSmem &&
         Aligned16(a.bank) && Aligned16(a.prefix) && Aligned16(a.delta);
}

cudaError_t StagedBoundary(const ResidualBoundaryArgs& a, cudaStream_t stream) {
  if (!StagedBoundaryServes(a)) return cudaErrorInvalidValue;
  if (a.num_rows == 0) return cudaSuccess;
  const auto slots = std::make_integer_sequence<int, kMaxStagedSlots + 1>{};
  // 2 chunks of 8 per thread up to d = 4096 (256 threads), 4 past it. (4 at d = 4096, 128
  // threads, ran faster at 1-5 slots but has not been through the tests on a GPU yet:
  // bench/BENCHMARKS.md run 26.)
  return a.d <= 8 * 2 * kStagedThreads ? LaunchBySlots<2>(a, stream, slots)
                                       : LaunchBySlots<4>(a, stream, slots);
}

}  // namespace attnres::kernels
