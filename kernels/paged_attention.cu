// Paged causal attention for decode and chunked prefill. A block owns one query tile (up to
// kMaxTileRows consecutive rows of one sequence) and one KV head: K/V pages are streamed through
// shared memory 32 positions at a time and shared by the tile's rows and the group's query heads;
// one warp per row keeps an fp32 online softmax per head. CUDA-core math (no tensor cores yet).
#include <cmath>

#include "kernels/common.cuh"
#include "kernels/ops.h"

namespace attnres::kernels {
namespace {

constexpr int kTile = 32;     // KV positions per shared-memory tile (one per lane)
constexpr int kMaxGroup = 8;  // query heads per KV head
constexpr int kMaxDimPairs = 4;  // hd <= 256: lane owns dims 2*lane + 64*j (+1)

struct Smem {
  static size_t Bytes(int rows, int G, int hd) {
    return sizeof(float) * (static_cast<size_t>(rows) * G * hd + rows * G * kTile) +
           sizeof(bf16) * kTile * (2 * hd + 2);
  }
};

__global__ void PagedAttentionKernel(PagedAttentionArgs a) {
  extern __shared__ float smem[];
  const int hd = a.hd, G = a.H / a.KV, kvh = blockIdx.y;
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int seq = a.tiles[3 * blockIdx.x], first = a.tiles[3 * blockIdx.x + 1];
  const int rows = a.tiles[3 * blockIdx.x + 2];
  float* q_s = smem;                                         // [rows][G][hd]
  float* p_s = q_s + static_cast<size_t>(a.max_tile_rows) * G * hd;  // [rows][G][kTile]
  bf16* k_s = reinterpret_cast<bf16*>(p_s + a.max_tile_rows * G * kTile);  // [kTile][hd + 2]
  bf16* v_s = k_s + kTile * (hd + 2);                         // [kTile][hd]
  const int kstride = hd + 2;

  const bool active = warp < rows;
  const int t = first + (active ? warp : 0);
  const int my_pos = a.positions[t];
  const int max_pos = a.positions[first + rows - 1];
  if (active) {
    for (int i = lane; i < G * hd; i += 32) {
      q_s[warp * G * hd + i] =
          __bfloat162float(a.q[(static_cast<size_t>(t) * a.H + kvh * G) * hd + i]) * a.scale;
    }
  }
  float m[kMaxGroup], l[kMaxGroup], acc[kMaxGroup][kMaxDimPairs][2];
#pragma unroll
  for (int g = 0; g < kMaxGroup; ++g) {
    m[g] = -INFINITY;
    l[g] = 0.0f;
#pragma unroll
    for (int j = 0; j < kMaxDimPairs; ++j) acc[g][j][0] = acc[g][j][1] = 0.0f;
  }
  const int* pages = a.kv_page_indices + a.kv_page_indptr[seq];
  const int chunks_per_row = hd / 8;
  for (int kv0 = 0; kv0 <= max_pos; kv0 += kTile) {
    __syncthreads();  // the previous tile is consumed (and q_s written)
    for (int c = threadIdx.x; c < kTile * chunks_per_row; c += blockDim.x) {
      const int pp = c / chunks_per_row, off = (c % chunks_per_row) * 8, p = kv0 + pp;
      if (p > max_pos) continue;
      const size_t src =
          ((static_cast<size_t>(pages[p / a.page_size]) * a.page_size + p % a.page_size) * a.KV +
           kvh) * hd + off;
      const uint4 kr = *reinterpret_cast<const uint4*>(a.k_cache + src);
      const uint32_t* kw = reinterpret_cast<const uint32_t*>(&kr);
      uint32_t* kd = reinterpret_cast<uint32_t*>(k_s + pp * kstride + off);
#pragma unroll
      for (int i = 0; i < 4; ++i) kd[i] = kw[i];
      *reinterpret_cast<uint4*>(v_s + pp * hd + off) =
          *reinterpret_cast<const uint4*>(a.v_cache + src);
    }
    __syncthreads();
    if (!active || kv0 > my_pos) continue;
    const int p = kv0 + lane;
    const bool visible = p <= my_pos;
    float s[kMaxGroup];
#pragma unroll
    for (int g = 0; g < kMaxGroup; ++g) s[g] = 0.0f;
    if (visible) {
      const __nv_bfloat162* kr = reinterpret_cast<const __nv_bfloat162*>(k_s + lane * kstride);
      for (int i = 0; i < hd / 2; ++i) {
        const float2 kf = __bfloat1622float2(kr[i]);
#pragma unroll
        for (int g = 0; g < kMaxGroup; ++g) {
          if (g < G) {
            const float* qg = q_s + (warp * G + g) * hd + 2 * i;
            s[g] += qg[0] * kf.x + qg[1] * kf.y;
          }
        }
      }
    }
    const int n_vis = min(kTile, my_pos - kv0 + 1);
#pragma unroll
    for (int g = 0; g < kMaxGroup; ++g) {
      if (g >= G) continue;
      const float sg = visible ? s[g] : -INFINITY;
      const float m_new = fmaxf(m[g], WarpMax(sg));
      const float prob = visible ? __expf(sg - m_new) : 0.0f;
      const float rescale = __expf(m[g] - m_new);
      l[g] = l[g] * rescale + WarpSum(prob);
      m[g] = m_new;
#pragma unroll
      for (int j = 0; j < kMaxDimPairs; ++j) {
        acc[g][j][0] *= rescale;
        acc[g][j][1] *= rescale;
      }
      p_s[(warp * G + g) * kTile + lane] = prob;
    }
    __syncwarp();
    for (int pp = 0; pp < n_vis; ++pp) {
#pragma unroll
      for (int j = 0; j < kMaxDimPairs; ++j) {
        const int dim = 2 * lane + 64 * j;
        if (dim >= hd) continue;
        const float2 vf =
            __bfloat1622float2(*reinterpret_cast<const __nv_bfloat162*>(v_s + pp * hd + dim));
#pragma unroll
        for (int g = 0; g < kMaxGroup; ++g) {
          if (g >= G) continue;
          const float pr = p_s[(warp * G + g) * kTile + pp];
          acc[g][j][0] += pr * vf.x;
          acc[g][j][1] += pr * vf.y;
        }
      }
    }
    __syncwarp();
  }
  if (!active) return;
#pragma unroll
  for (int g = 0; g < kMaxGroup; ++g) {
    if (g >= G) continue;
    const float inv_l = 1.0f / l[g];
    bf16* out = a.out + (static_cast<size_t>(t) * a.H + kvh * G + g) * hd;
#pragma unroll
    for (int j = 0; j < kMaxDimPairs; ++j) {
      const int dim = 2 * lane + 64 * j;
      if (dim < hd) {
        *reinterpret_cast<__nv_bfloat162*>(out + dim) =
            __floats2bfloat162_rn(acc[g][j][0] * inv_l, acc[g][j][1] * inv_l);
      }
    }
  }
}

}  // namespace

cudaError_t PagedAttention(const PagedAttentionArgs& a, cudaStream_t stream) {
  if (a.num_tiles == 0) return cudaSuccess;
  if (a.KV <= 0 || a.H % a.KV != 0 || a.H / a.KV > kMaxGroup || a.hd % 8 != 0 ||
      a.hd > 64 * kMaxDimPairs || a.max_tile_rows < 1 || a.max_tile_rows > kMaxTileRows) {
    return cudaErrorInvalidValue;
  }
  const size_t bytes = Smem::Bytes(a.max_tile_rows, a.H / a.KV, a.hd);
  static bool raised = false;
  if (!raised) {
    if (auto e = cudaFuncSetAttribute(PagedAttentionKernel,
                                      cudaFuncAttributeMaxDynamicSharedMemorySize, 200 * 1024);
        e != cudaSuccess) {
      return e;
    }
    raised = true;
  }
  PagedAttentionKernel<<<dim3(a.num_tiles, a.KV), 32 * a.max_tile_rows, bytes, stream>>>(a);
  return cudaGetLastError();
}

}  // namespace attnres::kernels
