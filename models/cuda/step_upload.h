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
  // samples: parameters of the rows the GPU sampler draws (may be empty). A sequence with at
  // least dense_min_rows rows (0: none) and a context of at most dense_max_context becomes a
  // DeviceBatch::DenseChunk (CudaForward's cuDNN attention).
  absl::StatusOr<DeviceBatch> Upload(const StepBatch& batch, const std::vector<int>& logit_rows,
                                     const std::vector<kernels::SampleParams>& samples,
                                     const ModelConfig& config, const KvPool& pool,
                                     cudaStream_t stream, int dense_min_rows = 0,
                                     int dense_max_context = 0);
  // Device copy of `samples` from the last Upload or UploadDecode.
  const kernels::SampleParams* device_samples() const { return device_samples_; }

  // A pure-decode batch (every sequence one token, every one sampled) padded to `bucket` rows in
  // a fixed layout for CUDA graph replays: the device pointers stay the same from call to call
  // until the page list outgrows its room, which bumps layout_generation(). Padded row r is a
  // sequence of its own at position 0 whose one page is `dummy_page` (its K/V land there) and
  // whose logit row is r (ignored by the caller). max_rows: the largest bucket.
  absl::StatusOr<DeviceBatch> UploadDecode(const StepBatch& batch,
                                           const std::vector<kernels::SampleParams>& samples,
                                           int bucket, int max_rows, int32_t dummy_page,
                                           const ModelConfig& config, const KvPool& pool,
                                           cudaStream_t stream);
  uint64_t layout_generation() const { return generation_; }

 private:
  StagingBuffers staging_;
  const kernels::SampleParams* device_samples_ = nullptr;
  // The fixed decode layout: its own buffers, sized for max_rows and page_room pages.
  PinnedPtr fixed_host_;
  DevicePtr fixed_device_;
  int fixed_rows_ = 0;
  size_t page_room_ = 0;
  uint64_t generation_ = 0;
};

}  // namespace attnres::cuda
