// Random bf16 device data for the standalone GPU probes (attnres-overlap-bench,
// attnres-chain-bench): a counter hash, so a buffer is the same for a seed on every run.
#pragma once

#include <cuda_bf16.h>

#include <cstddef>
#include <cstdint>

namespace attnres::bench {

// p[i] uniform in [-scale, scale) from a hash of i and seed.
__global__ void FillRandom(__nv_bfloat16* p, size_t n, uint32_t seed, float scale = 1.0f) {
  for (size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += size_t(gridDim.x) * blockDim.x) {
    uint32_t h = uint32_t(i) * 2654435761u ^ seed;
    h ^= h >> 15;
    h *= 2246822519u;
    h ^= h >> 13;
    h *= 3266489917u;
    h ^= h >> 16;
    p[i] = __float2bfloat16((float(h >> 8) * (2.0f / 16777216.0f) - 1.0f) * scale);
  }
}

}  // namespace attnres::bench
