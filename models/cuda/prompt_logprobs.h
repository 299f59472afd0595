// Prompt logprobs on rank 0's device, the CUDA runner's path for
// SequenceBatchEntry::prompt_logprobs: for a chunk of logit rows the head wrote, each row's top-n
// alternatives and log-sum-exp (kernels::RawLogprobs) and the logprob of the prompt token that
// follows the row's position (kernels::ChosenLogprobs, with those tokens as the chosen ones).
// One upload of the rows and tokens, one copy back of the results; the buffers grow to the
// largest chunk seen. Twin: models/sampler.h ComputeLogprob (what the host path runs).
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

  // logits: [rows.size(), V] fp32 on the device, rows in order. chunked: RawLogprobs' form of
  // each row cut over many blocks. Waits for `stream`; the result is valid until the next call.
  absl::StatusOr<std::span<const kernels::LogprobOut>> Run(const float* logits, int V,
                                                           std::span<const Row> rows, bool chunked,
                                                           cudaStream_t stream);

 private:
  StagingBuffers staging_;  // the rows and targets (uploaded), then lse, temp and the results
  PinnedPtr results_;       // [capacity_] LogprobOut
  size_t capacity_ = 0;
};

}  // namespace attnres::cuda
