// Prompt logprobs of a prompt's logit rows on the device, chunk by chunk (see prompt_logprobs.h).
#include "models/cuda/prompt_logprobs.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "kernels/ops.h"
#include "models/cuda/cuda_check.h"

namespace attnres::cuda {

absl::Status PromptLogprobs::Begin(std::span<const Row> rows, int V, int chunk_rows,
                                   cudaStream_t stream) {
  const int L = static_cast<int>(rows.size());
  rows_ = 0;
  if (chunk_rows < 1) return absl::InvalidArgumentError("prompt logprobs: chunks of no rows");
  for (const Row& r : rows) {
    if (r.target < 0 || r.target >= V || r.top_n < 0 || r.top_n > kernels::kMaxTopLogprobs) {
      return absl::InvalidArgumentError(
          absl::StrCat("prompt logprob row: token ", r.target, " (vocab ", V, "), top ", r.top_n));
    }
  }
  if (L == 0) return absl::OkStatus();
  // Rows and targets (copied), then the scratch (one chunk's) and results.
  Sections sections;
  rows_at_ = sections.Take(L * sizeof(kernels::LogprobRow));
  targets_at_ = sections.Take(L * 4);
  const size_t uploaded = sections.size();
  temp_bytes_ = kernels::RawLogprobsTempBytes(std::min(L, chunk_rows));
  lse_at_ = sections.Take(L * sizeof(double));
  temp_at_ = sections.Take(temp_bytes_);
  out_at_ = sections.Take(L * sizeof(kernels::LogprobOut));
  if (auto st = staging_.Reserve(sections.size()); !st.ok()) return st;
  if (capacity_ < static_cast<size_t>(L)) {
    auto pinned = PinnedAlloc(L * sizeof(kernels::LogprobOut));
    if (!pinned.ok()) return pinned.status();
    results_ = std::move(*pinned);
    capacity_ = L;
  }
  auto* host_rows = reinterpret_cast<kernels::LogprobRow*>(staging_.host() + rows_at_);
  auto* host_targets = reinterpret_cast<int32_t*>(staging_.host() + targets_at_);
  for (int j = 0; j < L; ++j) {
    host_rows[j] = {.logit_row = j % chunk_rows, .top_n = rows[j].top_n, .edited_row = -1};
    host_targets[j] = rows[j].target;
  }
  ATTNRES_CUDA_RETURN(cudaMemcpyAsync(staging_.device(), staging_.host(), uploaded,
                                      cudaMemcpyHostToDevice, stream));
  rows_ = L;
  V_ = V;
  chunk_rows_ = chunk_rows;
  max_top_n_ = kernels::MaxTopN(host_rows, L);
  return absl::OkStatus();
}

absl::Status PromptLogprobs::Chunk(const float* logits, int first, bool chunked,
                                   cudaStream_t stream) {
  if (first < 0 || first >= rows_ || first % chunk_rows_ != 0) {
    return absl::InvalidArgumentError(absl::StrCat("prompt logprobs: no chunk at row ", first,
                                                   " of ", rows_, " in chunks of ", chunk_rows_));
  }
  const int count = std::min(chunk_rows_, rows_ - first);
  char* d = staging_.device();
  const auto* rows = reinterpret_cast<const kernels::LogprobRow*>(d + rows_at_) + first;
  // ChosenLogprobs reads the chosen token at each row's logit row: the chunk's targets.
  const auto* targets = reinterpret_cast<const int32_t*>(d + targets_at_) + first;
  auto* lse = reinterpret_cast<double*>(d + lse_at_) + first;
  auto* out = reinterpret_cast<kernels::LogprobOut*>(d + out_at_) + first;
  ATTNRES_CUDA_RETURN(kernels::RawLogprobs(logits, V_, rows, count, max_top_n_, out, lse,
                                           chunked ? d + temp_at_ : nullptr, temp_bytes_, stream));
  ATTNRES_CUDA_RETURN(kernels::ChosenLogprobs(logits, V_, rows, count, nullptr, nullptr, nullptr,
                                              targets, lse, out, stream));
  return absl::OkStatus();
}

absl::StatusOr<std::span<const kernels::LogprobOut>> PromptLogprobs::Finish(cudaStream_t stream) {
  if (rows_ == 0) return std::span<const kernels::LogprobOut>();
  ATTNRES_CUDA_RETURN(cudaMemcpyAsync(results_.get(), staging_.device() + out_at_,
                                      rows_ * sizeof(kernels::LogprobOut), cudaMemcpyDeviceToHost,
                                      stream));
  ATTNRES_CUDA_RETURN(cudaStreamSynchronize(stream));
  return std::span<const kernels::LogprobOut>(
      static_cast<const kernels::LogprobOut*>(results_.get()), rows_);
}

}  // namespace attnres::cuda
