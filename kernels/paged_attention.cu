// Paged causal attention for decode and chunked prefill on tensor cores (FlashAttention-2 style,
// mma.sync m16n8k16 bf16 -> fp32). A block owns one query tile and one KV head; its "M" rows are
// (tile row, query head of the GQA group) pairs, 16 per warp, so a K/V tile in shared memory is
// shared by the whole group. K/V pages stream through a 2-stage cp.async pipeline, 64 keys at a
// time (32 in the small decode form, whose blocks fit 5 per SM instead of 3; see WithForm).
// Split-KV (flash-decoding): grid.z splits each tile's keys; a combine kernel merges them.
// Decode steps can fuse RoPE and the new K/V's page write in (ROPE; ops.h
// PagedAttentionArgs::rope).
#include <algorithm>
#include <cmath>

#include "kernels/common.cuh"
#include "kernels/env_switch.h"
#include "kernels/mma.cuh"
#include "kernels/ops.h"
#include "kernels/rotate_head.cuh"

namespace attnres::kernels {
namespace {

constexpr int kStages = 2;
constexpr int kMaxGroup = 8;  // query heads per KV head
constexpr int kMaxSplits = 32;  // <= 32: CombineKernel gives each split a lane
// Keys per split block at least. Smaller splits leave each block too little work for its fixed
// costs and double the partials the combine reads; larger ones leave each block more keys to
// stream alone. At 512-token contexts (bench/BENCHMARKS.md runs 45 and 48): 64 keys timed within
// noise of 128, 256 0.7-1.4% slower at batch 1, no split 6-8% slower. ATTNRES_MIN_SPLIT_KEYS=N
// (at least 16) sets it, to measure the rule.
constexpr int kMinSplitKeys = 128;

int MinSplitKeys() {
  static const int keys = std::max(16, EnvInt("ATTNRES_MIN_SPLIT_KEYS", kMinSplitKeys));
  return keys;
}
constexpr float kLog2e = 1.4426950408889634f;

__device__ inline uint32_t PackBf16(float lo, float hi) {
  const __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
  return *reinterpret_cast<const uint32_t*>(&v);
}

// Dims d, d + 1 of M row r of a tile: the normalized output (one split) or the split's partial
// state (unnormalized acc, and m, l when with_ml) in the workspace.
__device__ inline void StoreOut(const PagedAttentionArgs& a, float2* part_ml, float* part_acc,
                                int first, int kvh, int r, int d, float v0, float v1, float m,
                                float l, bool with_ml) {
  const int G = a.H / a.KV;
  const size_t row = static_cast<size_t>(first + r / G) * a.H + kvh * G + r % G;
  if (gridDim.z == 1) {
    const float inv = 1.0f / l;
    *reinterpret_cast<__nv_bfloat162*>(a.out + row * a.hd + d) =
        __floats2bfloat162_rn(v0 * inv, v1 * inv);
    return;
  }
  const size_t prow = static_cast<size_t>(blockIdx.z) * a.T * a.H + row;
  if (with_ml) part_ml[prow] = make_float2(m, l);
  *reinterpret_cast<float2*>(part_acc + prow * a.hd + d) = make_float2(v0, v1);
}

// KEYS keys per shared-memory tile; KSPLIT warps share each 16 M rows and take KEYS / KSPLIT
// (a multiple of 16) keys of every tile each (decode: one row per tile), merging their softmax
// states through shared memory at the end. ROPE (decode forms only): the fused form of
// PagedAttentionArgs::rope.
template <int HD, int KSPLIT, int KEYS, bool ROPE>
__global__ void __launch_bounds__(256, HD <= 128 ? 2 : 1) FlashKernel(PagedAttentionArgs a, float2* part_ml,
                                                   float* part_acc) {
  static_assert(!ROPE || KSPLIT > 1, "the fused form serves one-row decode tiles");
  constexpr int kKeys = KEYS;
  static_assert(KEYS % (16 * KSPLIT) == 0, "each warp's key slice is whole mma tiles");
  constexpr int kStride = HD + 8;  // bf16 per shared row (16-byte pad: no ldmatrix conflicts)
  constexpr int kChunks = HD / 8;  // 16-byte chunks per row
  constexpr int kW = kKeys / KSPLIT;  // keys per warp per tile
  extern __shared__ uint4 smem_raw[];
  const int lane = threadIdx.x & 31, warp = (threadIdx.x >> 5) / KSPLIT;
  const int wk = (threadIdx.x >> 5) % KSPLIT, warps = (blockDim.x >> 5) / KSPLIT;
  bf16* q_s = reinterpret_cast<bf16*>(smem_raw);  // [warps * 16][kStride]
  bf16* kv_s = q_s + warps * 16 * kStride;        // [stage][K, V][kKeys][kStride]
  bf16* new_kv_s = kv_s + kStages * 2 * kKeys * kStride;  // ROPE: [K, V][kStride], the new key
  const int G = a.H / a.KV, kvh = blockIdx.y, z = blockIdx.z, splits = gridDim.z;
  const int tile = a.num_tiles - 1 - blockIdx.x;  // later (longer) tiles first
  const int seq = a.tiles[3 * tile], first = a.tiles[3 * tile + 1], rows = a.tiles[3 * tile + 2];
  const int m_rows = rows * G;
  const int n_keys = a.positions[first + rows - 1] + 1;
  const int chunk = ((n_keys + splits - 1) / splits + kKeys - 1) / kKeys * kKeys;
  const int k_begin = z * chunk, k_end = min(n_keys, k_begin + chunk);
  const int* pages = a.kv_page_indices + a.kv_page_indptr[seq];
  // The step's indices above are uploaded data, read before the wait (kernels/common.cuh's
  // rule); q and this step's K/V come from the previous kernel. ROPE: the only key this step
  // adds is the row's own position, taken from qkv; all others are older, so their K/V loads
  // below go out before the wait, and only the rotations wait.
  const int new_key = ROPE ? n_keys - 1 : -1;
  if constexpr (!ROPE) {
    WaitForPrevious();
    LetNextStart();
    for (int i = threadIdx.x; i < warps * 16 * kChunks; i += blockDim.x) {
      const int r = i / kChunks, c = i % kChunks;
      const bool valid = r < m_rows;
      const size_t src =
          valid ? (static_cast<size_t>(first + r / G) * a.H + kvh * G + r % G) * HD + c * 8 : 0;
      CpAsync16(q_s + r * kStride + c * 8, a.q + src, valid);
    }
  }
  // Each thread copies the same 16-byte chunk c of keys key0, key0 + kstep, ... of every tile,
  // so its column offset is fixed and a key's source is one page lookup and a multiply-add.
  // Power-of-two page sizes (the usual 16) split a position by shift and mask: the address
  // arithmetic was most of a decode block's instructions (ncu, bench/BENCHMARKS.md run 14).
  const int ps = a.page_size, page_shift = __ffs(ps) - 1;
  const bool pow2 = (ps & (ps - 1)) == 0;
  const int c = threadIdx.x % kChunks, key0 = threadIdx.x / kChunks, kstep = blockDim.x / kChunks;
  const size_t slot_stride = static_cast<size_t>(a.KV) * HD;
  const size_t col = static_cast<size_t>(kvh) * HD + c * 8;
  auto key_row = [&](int p) {  // element offset of key p's [KV][hd] row in the caches
    const int page = pow2 ? p >> page_shift : p / ps;
    return (static_cast<size_t>(pages[page]) * ps + (p - page * ps)) * slot_stride;
  };
  auto load_tile = [&](int stage, int kv0) {
    bf16* k_dst = kv_s + stage * 2 * kKeys * kStride + c * 8;
    bf16* v_dst = k_dst + kKeys * kStride;
    for (int key = key0; key < kKeys; key += kstep) {
      const int p = kv0 + key;
      const bool valid = p < k_end && (!ROPE || p != new_key);  // (zero-filled, then replaced)
      const size_t src = valid ? key_row(p) + col : 0;
      CpAsync16(k_dst + key * kStride, a.k_cache + src, valid);
      CpAsync16(v_dst + key * kStride, a.v_cache + src, valid);
    }
  };
  if (k_begin < k_end) load_tile(0, k_begin);
  CpAsyncCommit();
  // ROPE: the split that holds the new key writes its K and V into their page slot (for later
  // steps) and into its tile (in the loop below).
  const bool owns_new_key = ROPE && k_begin <= new_key && new_key < k_end;
  size_t new_slot = 0;
  if constexpr (ROPE) {
    if (owns_new_key) new_slot = key_row(new_key) + static_cast<size_t>(kvh) * HD;
    WaitForPrevious();
    LetNextStart();
    // One warp per head: the group's G query heads into q_s rows 0..G-1 (decode: m_rows == G),
    // then the owner's K (rotated) and V. Rows G..15 are zeros, as the plain form's copy
    // leaves them.
    const int width = (a.H + 2 * a.KV) * HD;
    const bf16* qkv = a.rope.qkv + static_cast<size_t>(first) * width;
    const float2* rope = a.rope.table + static_cast<size_t>(first) * (HD / 2);
    const int nw = blockDim.x >> 5, wid = threadIdx.x >> 5;
    for (int h = wid; h < G + (owns_new_key ? 2 : 0); h += nw) {
      if (h < G) {
        RotateHead(qkv + (kvh * G + h) * HD, rope, a.rope.q_norm, HD, a.rope.eps,
                   q_s + h * kStride);
      } else if (h == G) {
        RotateHead(qkv + (a.H + kvh) * HD, rope, a.rope.k_norm, HD, a.rope.eps, new_kv_s);
      } else {
        const bf16* v = qkv + (a.H + a.KV + kvh) * HD;
        for (int i = lane; i < HD; i += 32) new_kv_s[kStride + i] = v[i];
      }
    }
    for (int i = threadIdx.x; i < (16 - G) * kChunks; i += blockDim.x) {
      *reinterpret_cast<uint4*>(q_s + (G + i / kChunks) * kStride + (i % kChunks) * 8) =
          make_uint4(0, 0, 0, 0);
    }
  }

  const int r0 = warp * 16 + (lane >> 2), r1 = r0 + 8;
  const int pos0 = r0 < m_rows ? a.positions[first + r0 / G] : -1;
  const int pos1 = r1 < m_rows ? a.positions[first + r1 / G] : -1;
  const bool active = warp * 16 < m_rows;
  const float sl2 = a.scale * kLog2e;
  float o[HD / 8][4];
#pragma unroll
  for (int n = 0; n < HD / 8; ++n) o[n][0] = o[n][1] = o[n][2] = o[n][3] = 0.0f;
  float m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};

  for (int t = 0, kv0 = k_begin; kv0 < k_end; ++t, kv0 += kKeys) {
    if (kv0 + kKeys < k_end) load_tile((t + 1) & 1, kv0 + kKeys);
    CpAsyncCommit();
    CpAsyncWait<1>();
    __syncthreads();
    if constexpr (ROPE) {
      // The owner's tile with the new key's (zero-filled) row: K and V from new_kv_s.
      if (owns_new_key && kv0 <= new_key && new_key < kv0 + kKeys) {
        bf16* k_row = kv_s + (t & 1) * 2 * kKeys * kStride + (new_key - kv0) * kStride;
        for (int i = threadIdx.x; i < 2 * kChunks; i += blockDim.x) {
          const int kv = i / kChunks, c8 = (i % kChunks) * 8;
          const uint4 v = *reinterpret_cast<const uint4*>(new_kv_s + kv * kStride + c8);
          *reinterpret_cast<uint4*>(k_row + kv * kKeys * kStride + c8) = v;
          *reinterpret_cast<uint4*>((kv == 0 ? a.k_cache : a.v_cache) + new_slot + c8) = v;
        }
        __syncthreads();
      }
    }
    if (active) {
      const bf16* k_s = kv_s + (t & 1) * 2 * kKeys * kStride;
      const bf16* v_s = k_s + kKeys * kStride;
      float s[kW / 8][4];
#pragma unroll
      for (int n = 0; n < kW / 8; ++n) s[n][0] = s[n][1] = s[n][2] = s[n][3] = 0.0f;
#pragma unroll
      for (int kk = 0; kk < HD / 16; ++kk) {
        uint32_t qa[4];
        LdMatrixX4(qa, q_s + (warp * 16 + (lane & 15)) * kStride + kk * 16 + (lane >> 4) * 8);
#pragma unroll
        for (int j = 0; j < kW / 16; ++j) {
          uint32_t kb[4];
          LdMatrixX4(kb, k_s + (wk * kW + j * 16 + (lane & 7) + (lane >> 4) * 8) * kStride + kk * 16 +
                             ((lane >> 3) & 1) * 8);
          Mma(s[2 * j], qa, kb[0], kb[1]);
          Mma(s[2 * j + 1], qa, kb[2], kb[3]);
        }
      }
      float mx[2] = {-INFINITY, -INFINITY};
      // Keys of this warp's slice that every one of the thread's rows sees (below the causal
      // diagonal, inside the split) need no mask: most tiles of a long prefill.
      const int last_key = kv0 + wk * kW + kW - 1;
      if (last_key < k_end && last_key <= min(pos0, pos1)) {
#pragma unroll
        for (int n = 0; n < kW / 8; ++n) {
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            s[n][e] *= sl2;
            mx[e >> 1] = fmaxf(mx[e >> 1], s[n][e]);
          }
        }
      } else {
#pragma unroll
        for (int n = 0; n < kW / 8; ++n) {
#pragma unroll
          for (int e = 0; e < 4; ++e) {
            const int key = kv0 + wk * kW + n * 8 + (lane & 3) * 2 + (e & 1);
            const bool vis = key <= (e < 2 ? pos0 : pos1) && key < k_end;
            s[n][e] = vis ? s[n][e] * sl2 : -INFINITY;
            mx[e >> 1] = fmaxf(mx[e >> 1], s[n][e]);
          }
        }
      }
      float base[2], alpha[2];
#pragma unroll
      for (int i = 0; i < 2; ++i) {
        mx[i] = fmaxf(mx[i], __shfl_xor_sync(0xffffffffu, mx[i], 1));
        mx[i] = fmaxf(mx[i], __shfl_xor_sync(0xffffffffu, mx[i], 2));
        const float m_new = fmaxf(m[i], mx[i]);
        base[i] = m_new == -INFINITY ? 0.0f : m_new;
        alpha[i] = exp2f(m[i] - base[i]);
        m[i] = m_new;
        l[i] *= alpha[i];
      }
#pragma unroll
      for (int n = 0; n < HD / 8; ++n) {
        o[n][0] *= alpha[0];
        o[n][1] *= alpha[0];
        o[n][2] *= alpha[1];
        o[n][3] *= alpha[1];
      }
#pragma unroll
      for (int n = 0; n < kW / 8; ++n) {
#pragma unroll
        for (int e = 0; e < 4; ++e) {
          s[n][e] = exp2f(s[n][e] - base[e >> 1]);
          l[e >> 1] += s[n][e];
        }
      }
#pragma unroll
      for (int kk = 0; kk < kW / 16; ++kk) {
        const uint32_t pa[4] = {PackBf16(s[2 * kk][0], s[2 * kk][1]),
                                PackBf16(s[2 * kk][2], s[2 * kk][3]),
                                PackBf16(s[2 * kk + 1][0], s[2 * kk + 1][1]),
                                PackBf16(s[2 * kk + 1][2], s[2 * kk + 1][3])};
#pragma unroll
        for (int jd = 0; jd < HD / 16; ++jd) {
          uint32_t vb[4];
          LdMatrixX4Trans(vb, v_s + (wk * kW + kk * 16 + (lane & 7) + ((lane >> 3) & 1) * 8) * kStride +
                                  jd * 16 + (lane >> 4) * 8);
          Mma(o[2 * jd], pa, vb[0], vb[1]);
          Mma(o[2 * jd + 1], pa, vb[2], vb[3]);
        }
      }
    }
    __syncthreads();  // this stage is consumed before the next iteration refills it
  }
  CpAsyncWait<0>();
  if (!active) return;
#pragma unroll
  for (int i = 0; i < 2; ++i) {
    l[i] += __shfl_xor_sync(0xffffffffu, l[i], 1);
    l[i] += __shfl_xor_sync(0xffffffffu, l[i], 2);
  }
  if constexpr (KSPLIT == 1) {
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      const int r = i == 0 ? r0 : r1;
      if (r >= m_rows) continue;
#pragma unroll
      for (int n = 0; n < HD / 8; ++n) {
        StoreOut(a, part_ml, part_acc, first, kvh, r, n * 8 + (lane & 3) * 2, o[n][2 * i],
                 o[n][2 * i + 1], m[i], l[i], (lane & 3) == 0 && n == 0);
      }
    }
  } else {
    // Merge the KSPLIT warps' states (the K/V stages are free now): warps == 1 here.
    __syncthreads();
    float2* ml_s = reinterpret_cast<float2*>(kv_s);  // [KSPLIT][16]
    float* o_s = reinterpret_cast<float*>(ml_s + KSPLIT * 16);  // [KSPLIT][16][HD]
#pragma unroll
    for (int i = 0; i < 2; ++i) {
      const int rr = (lane >> 2) + 8 * i;
      if ((lane & 3) == 0) ml_s[wk * 16 + rr] = make_float2(m[i], l[i]);
#pragma unroll
      for (int n = 0; n < HD / 8; ++n) {
        *reinterpret_cast<float2*>(o_s + (wk * 16 + rr) * HD + n * 8 + (lane & 3) * 2) =
            make_float2(o[n][2 * i], o[n][2 * i + 1]);
      }
    }
    __syncthreads();
    for (int idx = threadIdx.x; idx < 16 * HD / 2; idx += blockDim.x) {
      const int r = idx / (HD / 2), d = (idx % (HD / 2)) * 2;
      if (r >= m_rows) continue;
      float mx = -INFINITY;
#pragma unroll
      for (int w = 0; w < KSPLIT; ++w) mx = fmaxf(mx, ml_s[w * 16 + r].x);
      const float base = mx == -INFINITY ? 0.0f : mx;
      float lsum = 0.0f, v0 = 0.0f, v1 = 0.0f;
#pragma unroll
      for (int w = 0; w < KSPLIT; ++w) {
        const float f = exp2f(ml_s[w * 16 + r].x - base);
        lsum += f * ml_s[w * 16 + r].y;
        v0 += f * o_s[(w * 16 + r) * HD + d];
        v1 += f * o_s[(w * 16 + r) * HD + d + 1];
      }
      StoreOut(a, part_ml, part_acc, first, kvh, r, d, v0, v1, mx, lsum, d == 0);
    }
  }
}

// One warp per (row, head): out = sum_z 2^(m_z - M) acc_z / sum_z 2^(m_z - M) l_z. Lane z
// (splits <= kMaxSplits = 32) loads split z's (m, l) and holds its weight, so the max and the
// normalizer are two warp reductions after one round of loads, not serial loops of loads. The
// partials of the first kCombinePreload splits (decode's usual 2-8) at the first 2 x 64 dims go
// out in that same round, so a decode combine waits for L2 once, not twice (it sits on batch 1's
// latency-bound chain between attention and the o projection).
constexpr int kCombinePreload = 8;
constexpr int kCombinePreIters = 2;  // 64 dims each (hd <= 128)
__global__ void CombineKernel(const float2* part_ml, const float* part_acc, int splits, int rows,
                              int hd, bf16* out) {
  WaitForPrevious();
  const int row = blockIdx.x * (blockDim.x >> 5) + (threadIdx.x >> 5), lane = threadIdx.x & 31;
  if (row >= rows) return;
  auto acc_of = [&](int z, int d) {
    return *reinterpret_cast<const float2*>(part_acc + (static_cast<size_t>(z) * rows + row) * hd +
                                            d);
  };
  float2 pre[kCombinePreIters][kCombinePreload];
#pragma unroll
  for (int it = 0; it < kCombinePreIters; ++it) {
    const int d = it * 64 + 2 * lane;
#pragma unroll
    for (int z = 0; z < kCombinePreload; ++z) {
      pre[it][z] = z < splits && d < hd ? acc_of(z, d) : make_float2(0.0f, 0.0f);
    }
  }
  const float2 ml = lane < splits ? part_ml[static_cast<size_t>(lane) * rows + row]
                                  : make_float2(-INFINITY, 0.0f);
  const float mx = WarpMax(ml.x);
  const float w = lane < splits ? exp2f(ml.x - mx) : 0.0f;
  const float inv = 1.0f / WarpSum(w * ml.y);
  constexpr int kMaxIters = 256 / 64;  // hd <= 256
#pragma unroll
  for (int it = 0; it < kMaxIters; ++it) {  // every lane runs the loops: the shuffles need all
    const int d = it * 64 + 2 * lane;
    if (it * 64 >= hd) break;
    const bool mine = d < hd;
    float2 acc = make_float2(0.0f, 0.0f);
#pragma unroll
    for (int z = 0; z < kCombinePreload; ++z) {  // in z order, as the loop below continues it
      const float wz = __shfl_sync(0xffffffffu, w, z);
      if (!mine || z >= splits) continue;
      // (pre's index stays in bounds in the unrolled iterations that never read it)
      const float2 v =
          it < kCombinePreIters ? pre[it < kCombinePreIters ? it : 0][z] : acc_of(z, d);
      acc.x += wz * v.x;
      acc.y += wz * v.y;
    }
#pragma unroll 4
    for (int z = kCombinePreload; z < splits; ++z) {
      const float wz = __shfl_sync(0xffffffffu, w, z);
      if (!mine) continue;
      const float2 v = acc_of(z, d);
      acc.x += wz * v.x;
      acc.y += wz * v.y;
    }
    if (mine) {
      *reinterpret_cast<__nv_bfloat162*>(out + static_cast<size_t>(row) * hd + d) =
          __floats2bfloat162_rn(acc.x * inv, acc.y * inv);
    }
  }
  // The next kernel (the o projection's Gemv, 2 blocks an SM) is scheduled only now. Scheduled
  // at the wait, its blocks found room for one, not two, on each SM that held one of this grid's
  // blocks, so at 8B b8 (64 blocks here) some ran as a second wave: 20 us instead of 13 in half
  // the layers (bench/BENCHMARKS.md run 43).
  LetNextStart();
}

// Dynamic shared memory of a block of `warps` M-row warps: their Q rows and the K/V stages
// (and the fused form's new K and V rows).
template <int HD, int KEYS, bool ROPE = false>
constexpr size_t SmemBytes(int warps) {
  return sizeof(bf16) * (warps * 16 + kStages * 2 * KEYS + (ROPE ? 2 : 0)) * (HD + 8);
}

template <int HD, int KSPLIT, int KEYS, bool ROPE>
cudaError_t LaunchFlash(const PagedAttentionArgs& a, int warps, int splits, float2* ml,
                        float* acc, cudaStream_t stream) {
  constexpr int kMostSmem = static_cast<int>(SmemBytes<HD, KEYS, ROPE>(256 / 32 / KSPLIT));
  if (cudaError_t e = AllowDynamicSmem<FlashKernel<HD, KSPLIT, KEYS, ROPE>>(kMostSmem);
      e != cudaSuccess) {
    return e;
  }
  return LaunchPdl(FlashKernel<HD, KSPLIT, KEYS, ROPE>, dim3(a.num_tiles, a.KV, splits),
                   32 * warps * KSPLIT, SmemBytes<HD, KEYS, ROPE>(warps), stream, a, ml, acc);
}

template <int HD, int KSPLIT, int KEYS>
cudaError_t Launch(const PagedAttentionArgs& a, int warps, int splits, cudaStream_t stream) {
  float2* ml = splits > 1 ? static_cast<float2*>(a.workspace) : nullptr;
  float* acc = splits > 1 ? reinterpret_cast<float*>(ml + static_cast<size_t>(splits) * a.T * a.H)
                          : nullptr;
  cudaError_t e = cudaErrorInvalidValue;
  if (!a.rope.qkv) {
    e = LaunchFlash<HD, KSPLIT, KEYS, false>(a, warps, splits, ml, acc, stream);
  } else if constexpr (KSPLIT > 1) {
    e = LaunchFlash<HD, KSPLIT, KEYS, true>(a, warps, splits, ml, acc, stream);
  }
  if (e != cudaSuccess || splits == 1) return e;
  const int rows = a.T * a.H;
  return LaunchPdl(CombineKernel, (rows + 3) / 4, 128, 0, stream, ml, acc, splits, rows, HD,
                   a.out);
}

// Blocks of the (HD, KSPLIT, warps) form that the device holds resident at once.
template <int HD, int KSPLIT, int KEYS>
int FlashResidentBlocks(int warps) {
  constexpr auto kKernel = FlashKernel<HD, KSPLIT, KEYS, false>;
  constexpr int kMostSmem = static_cast<int>(SmemBytes<HD, KEYS>(256 / 32 / KSPLIT));
  if (warps < 1 || warps > 8 || AllowDynamicSmem<kKernel>(kMostSmem) != cudaSuccess) return 0;
  return ResidentBlocks<kKernel>(32 * warps * KSPLIT, SmemBytes<HD, KEYS>(warps));
}

// Calls f.Run<HD, KSPLIT, KEYS>() for head dim hd, or returns `invalid` for an unsupported one.
template <int KSPLIT, int KEYS, typename F, typename R>
R WithHeadDim(int hd, const F& f, R invalid) {
  switch (hd) {
    case 16: return f.template Run<16, KSPLIT, KEYS>();
    case 32: return f.template Run<32, KSPLIT, KEYS>();
    case 64: return f.template Run<64, KSPLIT, KEYS>();
    case 128: return f.template Run<128, KSPLIT, KEYS>();
    case 256: return f.template Run<256, KSPLIT, KEYS>();
    default: return invalid;
  }
}

// The two uses of the kernel forms.
struct ResidentOf {
  int warps;
  template <int HD, int KSPLIT, int KEYS>
  int Run() const { return FlashResidentBlocks<HD, KSPLIT, KEYS>(warps); }
};
struct LaunchOf {
  const PagedAttentionArgs& a;
  int warps, splits;
  cudaStream_t stream;
  template <int HD, int KSPLIT, int KEYS>
  cudaError_t Run() const { return Launch<HD, KSPLIT, KEYS>(a, warps, splits, stream); }
};

// The kernel form that serves tiles of `warps` M-row warps, `blocks` of them (tiles x KV heads,
// before splits). Prefill tiles: 64 keys, each warp all of them. Decode-like tiles (one warp):
// - 64-key tiles split between 4 warps (128 threads; 74 KiB at hd 128, 3 blocks per SM);
// - or 32-key tiles split between 2 warps (64 threads; 39 KiB, 5 per SM).
// The small form takes twice the tile steps, each a round of load latency, so it loses where
// latency rules (8B batch 1: 4.47 against 4.36 ms per step). It serves only grids that it runs
// in fewer waves (8B batch 64: 512 blocks in one wave instead of two, 43.8 against 55.0 us per
// layer); see bench/BENCHMARKS.md run 20.
template <typename F, typename R>
R WithForm(int hd, int warps, int blocks, const F& f, R invalid) {
  if (warps != 1) return WithHeadDim<1, 64>(hd, f, invalid);
  const int big = WithHeadDim<4, 64>(hd, ResidentOf{1}, 0);
  const int small = WithHeadDim<2, 32>(hd, ResidentOf{1}, 0);
  const bool fewer_waves =
      big > 0 && small > 0 && (blocks + small - 1) / small < (blocks + big - 1) / big;
  return fewer_waves ? WithHeadDim<2, 32>(hd, f, invalid) : WithHeadDim<4, 64>(hd, f, invalid);
}

int TileWarps(const PagedAttentionArgs& a) { return (a.max_tile_rows * (a.H / a.KV) + 15) / 16; }

}  // namespace

size_t PagedAttentionSplitBytes(int T, int H, int hd) {
  return sizeof(float) * static_cast<size_t>(T) * H * (hd + 2);
}

// Splits only fill the resident-block slots that the unsplit grid leaves empty: as many as keep
// the whole grid in one wave. A second, partial wave costs more than the parallelism buys
// (8B heads at 512-token contexts: 16 sequences 23.9 us at 4 splits vs 18.8 at 3, 32 sequences
// 33.4 us at 3 vs 26.4 at 1; bench/BENCHMARKS.md run 16).
int PagedAttentionSplitCount(const PagedAttentionArgs& a) {
  if (a.splits > 0) return std::min(a.splits, kMaxSplits);
  const int min_keys = MinSplitKeys();
  if (!a.workspace || a.max_context <= min_keys || a.KV <= 0 || a.H % a.KV != 0) return 1;
  const int warps = TileWarps(a);
  const int blocks = a.num_tiles * a.KV;
  const int wave = WithForm(a.hd, warps, blocks, ResidentOf{warps}, 0);
  if (blocks < 1 || wave / blocks < 2) return 1;
  const size_t fit = a.workspace_bytes / PagedAttentionSplitBytes(a.T, a.H, a.hd);
  const int splits = std::min({wave / blocks, (a.max_context + min_keys - 1) / min_keys, kMaxSplits,
                               static_cast<int>(std::min<size_t>(fit, kMaxSplits))});
  return std::max(splits, 1);
}

cudaError_t PagedAttention(const PagedAttentionArgs& a, cudaStream_t stream) {
  if (a.num_tiles == 0) return cudaSuccess;
  if (a.KV <= 0 || a.H % a.KV != 0 || a.H / a.KV > kMaxGroup || a.T < 1 ||
      a.max_tile_rows < 1 || a.max_tile_rows > kMaxTileRows ||
      a.max_tile_rows * (a.H / a.KV) > 128) {  // at most 8 warps of 16 M rows
    return cudaErrorInvalidValue;
  }
  if (a.rope.qkv && (!a.rope.table || a.max_tile_rows != 1 || a.num_tiles != a.T)) {
    return cudaErrorInvalidValue;
  }
  const int warps = TileWarps(a);
  const int splits = PagedAttentionSplitCount(a);
  if (splits > 1 && (!a.workspace || a.workspace_bytes < static_cast<size_t>(splits) *
                                                            PagedAttentionSplitBytes(a.T, a.H, a.hd))) {
    return cudaErrorInvalidValue;
  }
  return WithForm(a.hd, warps, a.num_tiles * a.KV, LaunchOf{a, warps, splits, stream},
                  cudaErrorInvalidValue);
}

}  // namespace attnres::kernels
