// Communicator: the collectives tensor parallelism needs (all-reduce, all-gather,
// reduce-scatter), over host fp32 buffers. ThreadCommunicators connects ranks that are threads of
// one process (the CPU backend's --tensor-parallel, and the tests that check every rank's
// arithmetic); the GPU backend uses NCCL over device buffers (nccl_communicator.h).
#pragma once

#include <cstddef>
#include <memory>
#include <vector>

namespace attnres {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int world_size() const = 0;
  // data[i] = sum over ranks of data[i]; every rank passes n elements.
  virtual void AllReduceSum(float* data, size_t n) = 0;
  // out[r * n + i] = rank r's in[i]; out holds world_size * n elements.
  virtual void AllGather(const float* in, size_t n, float* out) = 0;
  // out[i] = sum over ranks of in[rank() * n + i]; in holds world_size * n elements.
  virtual void ReduceScatterSum(const float* in, size_t n, float* out) = 0;
};

// world_size communicators sharing one rendezvous; give each to its own thread. Every rank must
// call the same collectives in the same order (they block until all ranks arrive).
std::vector<std::unique_ptr<Communicator>> CreateThreadCommunicators(int world_size);

}  // namespace attnres
