// One step's host -> device upload: validates a StepBatch against the model and the KV pool
// (token ids, page coverage, page range: the kernels trust these), derives the per-row sequence
// index, the attention query tiles and the logit-row bookkeeping, packs everything plus the
// sampling parameters into one pinned buffer, and moves it with one cudaMemcpyAsync.
#pragma once

#include <vector>

#include "absl/status/statusor.h"
#include "kernels/ops.h"
#include "models/cuda/cuda_forward.h"
#include "models/model_runner.h"

namespace attnres::cuda {

class StepUpload {
 public:
  // samples: parameters of the rows the GPU sampler draws (may be empty).
  absl::StatusOr<DeviceBatch> Upload(const StepBatch& batch, const std::vector<int>& logit_rows,
                                     const std::vector<kernels::SampleParams>& samples,
                                     const ModelConfig& config, const KvPool& pool,
                                     cudaStream_t stream);
  // Device copy of `samples` from the last Upload.
  const kernels::SampleParams* device_samples() const { return device_samples_; }

 private:
  absl::Status Reserve(size_t bytes);

  PinnedPtr host_;
  DevicePtr device_;
  size_t capacity_ = 0;
  const kernels::SampleParams* device_samples_ = nullptr;
};

}  // namespace attnres::cuda
