// CUDA graphs of decode steps: one instantiated graph per (batch bucket, split-KV count),
// captured lazily on first use from a callback that enqueues the step's kernels, replayed on
// later steps. Graphs bake in device pointers, so they are dropped whenever the caller's input
// layout moves (a new layout generation).
#pragma once

#include <cuda_runtime.h>

#include <cstdint>
#include <functional>
#include <map>
#include <utility>

#include "absl/status/status.h"

namespace attnres::cuda {

// The decode batch buckets: the smallest power of two >= rows (at most 256), capped at
// max_rows; 0 when rows does not fit one.
int DecodeBucket(int rows, int max_rows);

class DecodeGraphs {
 public:
  DecodeGraphs() = default;
  DecodeGraphs(const DecodeGraphs&) = delete;
  DecodeGraphs& operator=(const DecodeGraphs&) = delete;
  ~DecodeGraphs() { Clear(); }

  // Launches the graph for (bucket, splits) on `stream`, capturing `body` first when there is
  // none for this key and layout generation. body must only enqueue work on the stream it gets.
  absl::Status Launch(int bucket, int splits, uint64_t generation,
                      const std::function<absl::Status(cudaStream_t)>& body,
                      cudaStream_t stream);
  int captured() const { return static_cast<int>(graphs_.size()); }
  void Clear();

 private:
  std::map<std::pair<int, int>, cudaGraphExec_t> graphs_;
  uint64_t generation_ = 0;
};

}  // namespace attnres::cuda
