// Packs a LogitEditPlan into the staging buffers and queues its one host-to-device copy.
#include "models/cuda/edit_upload.h"

#include <algorithm>
#include <cstring>
#include <vector>

namespace attnres::cuda {

absl::Status EditUpload::Upload(const LogitEditPlan& p, cudaStream_t stream) {
  // The plan's arrays (copied), then the scratch (not copied).
  Sections sections;
  auto take = [&](size_t n) { return sections.Take(n); };
  auto size_of = [](const auto& v) { return v.size() * sizeof(v[0]); };
  const size_t rows_at = take(size_of(p.rows)), edits_at = take(size_of(p.edits)),
               masked_at = take(size_of(p.masked)), words_at = take(size_of(p.mask_words)),
               logprobs_at = take(size_of(p.logprobs));
  const size_t uploaded = sections.size();
  const int L = static_cast<int>(p.logprobs.size());
  const size_t raw_at = take(p.edits.size() * sizeof(float)), lse_at = take(L * sizeof(double)),
               temp_at = take(kernels::RawLogprobsTempBytes(L));
  if (auto st = staging_.Reserve(sections.size()); !st.ok()) return st;
  char* host = staging_.host();
  char* device = staging_.device();
  auto put = [&](size_t at, const auto& v) {
    std::memcpy(host + at, v.data(), size_of(v));
    return reinterpret_cast<const typename std::decay_t<decltype(v)>::value_type*>(device + at);
  };
  rows_ = put(rows_at, p.rows);
  edits_ = put(edits_at, p.edits);
  masked_ = put(masked_at, p.masked);
  mask_words_ = put(words_at, p.mask_words);
  logprob_rows_ = put(logprobs_at, p.logprobs);
  raw_ = reinterpret_cast<float*>(device + raw_at);
  lse_ = reinterpret_cast<double*>(device + lse_at);
  logprob_temp_ = device + temp_at;
  logprob_temp_bytes_ = kernels::RawLogprobsTempBytes(L);
  ATTNRES_CUDA_RETURN(cudaMemcpyAsync(device, host, uploaded, cudaMemcpyHostToDevice, stream));
  return absl::OkStatus();
}

}  // namespace attnres::cuda
