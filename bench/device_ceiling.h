// This card's own copy ceiling, measured where a benchmark runs: the decode bound of
// bench/BENCHMARKS.md is the H200's 4.28 TB/s (../shared/docs/GPU_MACHINE.md, the issue's
// measure), and on another card (an H100's HBM3 copies ~3.0 TB/s) a figure against it says
// little about how close that card's step came to its own memory system.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
#include <vector>

namespace attnres {

// Bytes read + written per second by a 1 GiB device-to-device copy (as the H200 figure is
// counted): CUDA events, the median of 7 after 2 untimed copies. 0 if the device cannot hold
// the two buffers.
inline double MeasuredCopyBytesPerS() {
  constexpr size_t kBytes = size_t(1) << 30;
  void* a = nullptr;
  void* b = nullptr;
  if (cudaMalloc(&a, kBytes) != cudaSuccess) return 0.0;
  if (cudaMalloc(&b, kBytes) != cudaSuccess) {
    cudaFree(a);
    return 0.0;
  }
  cudaEvent_t start, stop;
  cudaEventCreate(&start);
  cudaEventCreate(&stop);
  std::vector<float> ms;
  for (int i = 0; i < 9; ++i) {
    cudaEventRecord(start);
    cudaMemcpyAsync(b, a, kBytes, cudaMemcpyDeviceToDevice);
    cudaEventRecord(stop);
    cudaEventSynchronize(stop);
    float t = 0.0f;
    cudaEventElapsedTime(&t, start, stop);
    if (i >= 2) ms.push_back(t);
  }
  cudaEventDestroy(start);
  cudaEventDestroy(stop);
  cudaFree(a);
  cudaFree(b);
  std::sort(ms.begin(), ms.end());
  const float median = ms[ms.size() / 2];
  return median > 0.0f ? 2.0 * kBytes / (median * 1e-3) : 0.0;
}

}  // namespace attnres
