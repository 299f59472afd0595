// One step's logit edit plan (models/logit_edits.h) on rank 0's device: packed into one pinned
// buffer and moved with one cudaMemcpyAsync, beside room for the kernels' scratch (each edit's
// raw value, each logprob row's log-sum-exp). The buffers grow to the largest step seen.
#pragma once

#include "absl/status/status.h"
#include "kernels/logit_edits.h"
#include "kernels/ops.h"
#include "models/cuda/device_memory.h"
#include "models/logit_edits.h"

namespace attnres::cuda {

class EditUpload {
 public:
  // Queues the copy on `stream`; the pinned buffer must not be rewritten before it is done, so
  // the caller synchronizes the stream within the step (the runner does, for the tokens).
  absl::Status Upload(const LogitEditPlan& plan, cudaStream_t stream);

  // Device views of the last Upload.
  const kernels::EditedRow* rows() const { return rows_; }
  const kernels::LogitEdit* edits() const { return edits_; }
  const kernels::MaskedRow* masked() const { return masked_; }
  const uint64_t* mask_words() const { return mask_words_; }
  const kernels::LogprobRow* logprob_rows() const { return logprob_rows_; }
  float* raw() const { return raw_; }   // [edits]
  double* lse() const { return lse_; }  // [logprob rows]
  void* logprob_temp() const { return logprob_temp_; }  // kernels::RawLogprobsTempBytes(rows)
  size_t logprob_temp_bytes() const { return logprob_temp_bytes_; }

 private:
  StagingBuffers staging_;
  const kernels::EditedRow* rows_ = nullptr;
  const kernels::LogitEdit* edits_ = nullptr;
  const kernels::MaskedRow* masked_ = nullptr;
  const uint64_t* mask_words_ = nullptr;
  const kernels::LogprobRow* logprob_rows_ = nullptr;
  float* raw_ = nullptr;
  double* lse_ = nullptr;
  void* logprob_temp_ = nullptr;
  size_t logprob_temp_bytes_ = 0;
};

}  // namespace attnres::cuda
