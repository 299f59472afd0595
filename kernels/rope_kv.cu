// RoPE (rotate-half, from the per-step cos/sin table) with the optional Qwen3 q/k RMSNorm, and
// the write of the new tokens' K and V into their KV pages. One warp per (token row, head)
// (RotateHead), a few heads per block (so a single row still spreads over many SMs). Decode
// steps fuse this into the attention kernel (ops.h PagedAttentionArgs::rope); prefill and mixed
// steps run it. GatherKv copies a sequence's K/V out of its pages.
#include <algorithm>

#include "kernels/common.cuh"
#include "kernels/ops.h"
#include "kernels/rotate_head.cuh"

namespace attnres::kernels {
namespace {

constexpr int kHeadsPerBlock = 4;

__global__ void RopeKvWriteKernel(RopeKvWriteArgs a) {
  const int t = blockIdx.x, h = blockIdx.y * kHeadsPerBlock + (threadIdx.x >> 5);
  const int lane = threadIdx.x & 31;
  const int hd = a.hd, width = (a.H + 2 * a.KV) * hd;
  const bf16* qkv = a.rope.qkv + static_cast<size_t>(t) * width;
  const float2* rope = a.rope.table + static_cast<size_t>(t) * (hd / 2);
  // A K or V head's slot in its sequence's KV page, looked up in the step's uploaded indices
  // before the wait (kernels/common.cuh's rule); qkv is the previous kernel's output.
  const size_t slot = h >= a.H && h < a.H + 2 * a.KV ? KvSlot(a, t) : 0;
  WaitForPrevious();
  LetNextStart();
  if (h >= a.H + 2 * a.KV) return;
  if (h < a.H) {
    RotateHead(qkv + h * hd, rope, a.rope.q_norm, hd, a.rope.eps,
               a.q_out + static_cast<size_t>(t) * a.H * hd + h * hd);
  } else if (h < a.H + a.KV) {
    RotateHead(qkv + h * hd, rope, a.rope.k_norm, hd, a.rope.eps,
               a.k_cache + slot + (h - a.H) * hd);
  } else {
    const int g = h - a.H - a.KV;
    const bf16* src = qkv + h * hd;
    bf16* dst = a.v_cache + slot + g * hd;
    for (int i = lane; i < hd; i += 32) dst[i] = src[i];
  }
}

// One 16-byte chunk of K and of V per thread and step of a grid-stride loop.
__global__ void GatherKvKernel(const GatherKvArgs a) {
  WaitForPrevious();  // the newest positions come from the RoPE kernel just before
  LetNextStart();
  const int chunks = a.kv_dim / 8;
  const size_t total = static_cast<size_t>(a.n) * chunks;
  for (size_t i = blockIdx.x * static_cast<size_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<size_t>(gridDim.x) * blockDim.x) {
    const int pos = static_cast<int>(i / chunks), c = static_cast<int>(i % chunks);
    const int page = __ldg(a.pages + pos / a.page_size);
    const size_t src =
        (static_cast<size_t>(page) * a.page_size + pos % a.page_size) * a.kv_dim + c * 8;
    const size_t dst = static_cast<size_t>(pos) * a.kv_dim + c * 8;
    *reinterpret_cast<uint4*>(a.k_out + dst) = LoadProduced(a.k_cache + src);
    *reinterpret_cast<uint4*>(a.v_out + dst) = LoadProduced(a.v_cache + src);
  }
}

}  // namespace

cudaError_t GatherKv(const GatherKvArgs& a, cudaStream_t stream) {
  if (a.n == 0) return cudaSuccess;
  if (a.kv_dim % 8 != 0 || a.page_size < 1) return cudaErrorInvalidValue;
  const size_t total = static_cast<size_t>(a.n) * (a.kv_dim / 8);
  const int threads = 256;
  const int blocks = static_cast<int>(
      std::min<size_t>((total + threads - 1) / threads, static_cast<size_t>(NumSms()) * 16));
  return LaunchPdl(GatherKvKernel, dim3(blocks), dim3(threads), 0, stream, a);
}

cudaError_t RopeKvWrite(const RopeKvWriteArgs& a, cudaStream_t stream) {
  if (a.T == 0) return cudaSuccess;
  if (a.hd % 2 != 0 || a.hd > 2 * 32 * kMaxRopePairsPerLane) return cudaErrorInvalidValue;
  const int heads = a.H + 2 * a.KV;
  return LaunchPdl(RopeKvWriteKernel, dim3(a.T, (heads + kHeadsPerBlock - 1) / kHeadsPerBlock),
                   32 * kHeadsPerBlock, 0, stream, a);
}

}  // namespace attnres::kernels
