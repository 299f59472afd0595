// Owning device allocations (cudaMalloc/cudaFree, pinned host memory), streams and events, and a
// bump allocator that carves one allocation into aligned tensors. No kernels, no model knowledge.
#pragma once

#include <cuda_runtime.h>

#include <algorithm>
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
struct CudaStreamDestroy {
  void operator()(cudaStream_t s) const { cudaStreamDestroy(s); }
};
struct CudaEventDestroy {
  void operator()(cudaEvent_t e) const { cudaEventDestroy(e); }
};
using DevicePtr = std::unique_ptr<void, CudaFree>;
using PinnedPtr = std::unique_ptr<void, CudaFreeHost>;
using StreamPtr = std::unique_ptr<CUstream_st, CudaStreamDestroy>;
using EventPtr = std::unique_ptr<CUevent_st, CudaEventDestroy>;

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

// A non-blocking stream and an event (timing-free by default: fork/join of side work; pass
// cudaEventDefault for one that times) on the current device.
inline absl::StatusOr<StreamPtr> StreamCreate() {
  cudaStream_t s = nullptr;
  ATTNRES_CUDA_RETURN(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking));
  return StreamPtr(s);
}

inline absl::StatusOr<EventPtr> EventCreate(unsigned flags = cudaEventDisableTiming) {
  cudaEvent_t e = nullptr;
  ATTNRES_CUDA_RETURN(cudaEventCreateWithFlags(&e, flags));
  return EventPtr(e);
}

// Byte offsets of consecutive sections of one buffer, each at a 256-byte boundary.
class Sections {
 public:
  size_t Take(size_t bytes) {
    end_ = (end_ + 255) / 256 * 256;
    const size_t at = end_;
    end_ += bytes;
    return at;
  }
  size_t size() const { return end_; }

 private:
  size_t end_ = 0;
};

// A pinned host buffer and a device buffer of one size, for data packed on the host and moved
// with one copy. Reserve grows both (to at least twice the old size), keeping nothing: call it
// only once the previous copy is done.
class StagingBuffers {
 public:
  absl::Status Reserve(size_t bytes) {
    if (bytes <= capacity_) return absl::OkStatus();
    const size_t cap = std::max(bytes, 2 * capacity_);
    auto h = PinnedAlloc(cap);
    if (!h.ok()) return h.status();
    auto d = DeviceAlloc(cap);
    if (!d.ok()) return d.status();
    host_ = std::move(*h);
    device_ = std::move(*d);
    capacity_ = cap;
    return absl::OkStatus();
  }
  char* host() const { return static_cast<char*>(host_.get()); }
  char* device() const { return static_cast<char*>(device_.get()); }

 private:
  PinnedPtr host_;
  DevicePtr device_;
  size_t capacity_ = 0;
};

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
