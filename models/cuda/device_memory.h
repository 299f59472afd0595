// Owning device allocations (cudaMalloc/cudaFree, pinned host memory) and a bump allocator that
// carves one allocation into aligned tensors. No kernels, no model knowledge.
#pragma once

#include <cuda_runtime.h>

#include <cstddef>
#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "models/cuda/cuda_check.h"

namespace attnres::cuda {

struct CudaFree {
  void operator()(void* p) const { cudaFree(p); }
};
struct CudaFreeHost {
  void operator()(void* p) const { cudaFreeHost(p); }
};
using DevicePtr = std::unique_ptr<void, CudaFree>;
using PinnedPtr = std::unique_ptr<void, CudaFreeHost>;

inline absl::StatusOr<DevicePtr> DeviceAlloc(size_t bytes) {
  void* p = nullptr;
  ATTNRES_CUDA_RETURN(cudaMalloc(&p, bytes == 0 ? 256 : bytes));
  return DevicePtr(p);
}

inline absl::StatusOr<PinnedPtr> PinnedAlloc(size_t bytes) {
  void* p = nullptr;
  ATTNRES_CUDA_RETURN(cudaMallocHost(&p, bytes == 0 ? 256 : bytes));
  return PinnedPtr(p);
}

// Two passes over the same sequence of Take calls: first with base == nullptr to measure, then
// with the real base to hand out pointers.
class Arena {
 public:
  explicit Arena(void* base = nullptr) : base_(static_cast<char*>(base)) {}
  template <typename T>
  T* Take(size_t count) {
    offset_ = (offset_ + 255) / 256 * 256;
    T* p = base_ ? reinterpret_cast<T*>(base_ + offset_) : nullptr;
    offset_ += count * sizeof(T);
    return p;
  }
  size_t bytes() const { return offset_; }

 private:
  char* base_;
  size_t offset_ = 0;
};

}  // namespace attnres::cuda
