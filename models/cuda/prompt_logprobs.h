// Prompt logprobs on rank 0's device, the CUDA runner's path for
// SequenceBatchEntry::prompt_logprobs: for the logit rows the head writes chunk by chunk, each
// row's top-n alternatives and log-sum-exp (kernels::RawLogprobs) and the logprob of the prompt
// token that follows the row's position (kernels::ChosenLogprobs, with those tokens as the
// chosen ones). One upload of every row and token, the kernels per chunk, one copy back of every
// result and one wait; the buffers grow to the largest prompt seen. Twin: models/sampler.h
// ComputeLogprob (what the host path runs).
#pragma once

#include <cstdint>
#include <span>

#include "absl/status/statusor.h"
#include "kernels/logit_edits.h"
#include "models/cuda/device_memory.h"

namespace attnres::cuda {

class PromptLogprobs {
 public:
  struct Row {
    int32_t target = 0;  // the prompt token the row predicts, in [0, V)
    int32_t top_n = 0;   // alternatives, [0, kernels::kMaxTopLogprobs]
  };

  // Checks and uploads rows (row j's logits will be row j % chunk_rows of the chunk that holds
  // it: chunks of chunk_rows rows in order, the last one shorter).
  absl::Status Begin(std::span<const Row> rows, int V, int chunk_rows, cudaStream_t stream);
  // The kernels of the chunk starting at row `first` (a multiple of chunk_rows), whose logits
  // [count, V] fp32 the head has just written on `stream`. chunked: RawLogprobs' form of each
  // row cut over many blocks.
  absl::Status Chunk(const float* logits, int first, bool chunked, cudaStream_t stream);
  // Every row's results, copied back; waits for `stream`. Valid until the next Begin.
  absl::StatusOr<std::span<const kernels::LogprobOut>> Finish(cudaStream_t stream);

 private:
  StagingBuffers staging_;  // the rows and targets (uploaded), then lse, temp and the results
  PinnedPtr results_;       // [capacity_] LogprobOut
  size_t capacity_ = 0;
  // The prompt since Begin: its rows, chunk size, the largest top n, and where its sections lie.
  int rows_ = 0, V_ = 0, chunk_rows_ = 0, max_top_n_ = 0;
  size_t rows_at_ = 0, targets_at_ = 0, lse_at_ = 0, temp_at_ = 0, out_at_ = 0, temp_bytes_ = 0;
};

}  // namespace attnres::cuda
