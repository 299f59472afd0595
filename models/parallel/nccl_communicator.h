// NcclCommunicator: the tensor-parallel collectives over device buffers on one host, through
// NCCL (NVLink multicast stays off: NCCL_NVLS_ENABLE=0 is set before the first communicator).
// One communicator per GPU, created together by one process (ncclCommInitAll); each rank's calls
// are enqueued on that rank's stream. Built only with the CUDA backend.
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

#include <cuda_runtime.h>

#include "absl/status/statusor.h"

namespace attnres {

enum class CollectiveDType { kF32, kBF16 };

class NcclCommunicator {
 public:
  // One communicator per device in `devices` (ranks in that order).
  static absl::StatusOr<std::vector<std::unique_ptr<NcclCommunicator>>> CreateAll(
      const std::vector<int>& devices);
  ~NcclCommunicator();

  int rank() const { return rank_; }
  int world_size() const { return world_; }
  int device() const { return device_; }

  // In place: buf[i] = sum over ranks. count elements of dtype.
  absl::Status AllReduceSum(void* buf, size_t count, CollectiveDType dtype, cudaStream_t stream);
  // out[r * count + i] = rank r's in[i].
  absl::Status AllGather(const void* in, void* out, size_t count, CollectiveDType dtype,
                         cudaStream_t stream);
  // out[i] = sum over ranks of in[rank * count + i].
  absl::Status ReduceScatterSum(const void* in, void* out, size_t count, CollectiveDType dtype,
                                cudaStream_t stream);

  // Collectives of several ranks issued from one thread must be grouped.
  static absl::Status GroupStart();
  static absl::Status GroupEnd();

 private:
  struct Impl;
  NcclCommunicator(std::unique_ptr<Impl> impl, int rank, int world, int device);
  std::unique_ptr<Impl> impl_;
  int rank_;
  int world_;
  int device_;
};

}  // namespace attnres
