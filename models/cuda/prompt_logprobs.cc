// Prompt logprobs of a chunk of logit rows on the device (see prompt_logprobs.h).
#include "models/cuda/prompt_logprobs.h"

#include "absl/strings/str_cat.h"
#include "kernels/ops.h"
#include "models/cuda/cuda_check.h"

namespace attnres::cuda {

absl::StatusOr<std::span<const kernels::LogprobOut>> PromptLogprobs::Run(const float* logits, int V,
                                                                         std::span<const Row> rows,
                                                                         bool chunked,
                                                                         cudaStream_t stream) {
  const int L = static_cast<int>(rows.size());
  if (L == 0) return std::span<const kernels::LogprobOut>();
  for (const Row& r : rows) {
    if (r.target < 0 || r.target >= V || r.top_n < 0 || r.top_n > kernels::kMaxTopLogprobs) {
      return absl::InvalidArgumentError(
          absl::StrCat("prompt logprob row: token ", r.target, " (vocab ", V, "), top ", r.top_n));
    }
  }
  // Rows and targets (copied), then the scratch and results.
  Sections sections;
  const size_t rows_at = sections.Take(L * sizeof(kernels::LogprobRow)),
               targets_at = sections.Take(L * 4);
  const size_t uploaded = sections.size();
  const size_t temp_bytes = kernels::RawLogprobsTempBytes(L);
  const size_t lse_at = sections.Take(L * sizeof(double)), temp_at = sections.Take(temp_bytes),
               out_at = sections.Take(L * sizeof(kernels::LogprobOut));
  if (auto st = staging_.Reserve(sections.size()); !st.ok()) return st;
  if (capacity_ < static_cast<size_t>(L)) {
    auto pinned = PinnedAlloc(L * sizeof(kernels::LogprobOut));
    if (!pinned.ok()) return pinned.status();
    results_ = std::move(*pinned);
    capacity_ = L;
  }
  auto* host_rows = reinterpret_cast<kernels::LogprobRow*>(staging_.host() + rows_at);
  auto* host_targets = reinterpret_cast<int32_t*>(staging_.host() + targets_at);
  for (int j = 0; j < L; ++j) {
    host_rows[j] = {.logit_row = j, .top_n = rows[j].top_n, .edited_row = -1};
    host_targets[j] = rows[j].target;
  }
  char* d = staging_.device();
  const auto* d_rows = reinterpret_cast<const kernels::LogprobRow*>(d + rows_at);
  const auto* d_targets = reinterpret_cast<const int32_t*>(d + targets_at);
  auto* lse = reinterpret_cast<double*>(d + lse_at);
  auto* out = reinterpret_cast<kernels::LogprobOut*>(d + out_at);
  ATTNRES_CUDA_RETURN(
      cudaMemcpyAsync(d, staging_.host(), uploaded, cudaMemcpyHostToDevice, stream));
  ATTNRES_CUDA_RETURN(kernels::RawLogprobs(logits, V, d_rows, L, out, lse,
                                           chunked ? d + temp_at : nullptr, temp_bytes, stream));
  ATTNRES_CUDA_RETURN(kernels::ChosenLogprobs(logits, V, d_rows, L, nullptr, nullptr, nullptr,
                                              d_targets, lse, out, stream));
  ATTNRES_CUDA_RETURN(cudaMemcpyAsync(results_.get(), out, L * sizeof(kernels::LogprobOut),
                                      cudaMemcpyDeviceToHost, stream));
  ATTNRES_CUDA_RETURN(cudaStreamSynchronize(stream));
  return std::span<const kernels::LogprobOut>(
      static_cast<const kernels::LogprobOut*>(results_.get()), L);
}

}  // namespace attnres::cuda
