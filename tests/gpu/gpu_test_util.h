// Helpers for GPU tests: skip without a device, seeded bf16/fp32 data, device buffers that are
// poisoned (NaN) before each kernel so unwritten outputs fail, comparison metrics, and greedy
// generation through a ModelRunner.
#pragma once

#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "gtest/gtest.h"
#include "models/cuda/cuda_runner.h"
#include "models/half.h"
#include "models/model_runner.h"

namespace attnres::gpu_testing {

#define ATTNRES_REQUIRE_GPU() \
  if (!::attnres::CudaDeviceAvailable()) GTEST_SKIP() << "no CUDA device"

#define ASSERT_CUDA(expr) ASSERT_EQ((expr), cudaSuccess) << #expr

// Values uniform in [-scale, scale], rounded to bf16 (so CPU and GPU see the same inputs).
inline std::vector<float> RandomBf16Values(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-scale, scale);
  std::vector<float> v(n);
  for (float& x : v) x = RoundBf16(u(rng));
  return v;
}

template <typename T>
class DeviceArray {
 public:
  explicit DeviceArray(size_t n) : n_(n) {
    EXPECT_EQ(cudaMalloc(&p_, std::max<size_t>(1, n) * sizeof(T)), cudaSuccess);
    Poison();
  }
  ~DeviceArray() { cudaFree(p_); }
  DeviceArray(const DeviceArray&) = delete;
  T* get() const { return p_; }
  void Poison() { cudaMemset(p_, 0xFF, n_ * sizeof(T)); }  // NaN in bf16 and fp32
  void Upload(const std::vector<T>& v) {
    EXPECT_EQ(cudaMemcpy(p_, v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice), cudaSuccess);
  }
  std::vector<T> Download() const {
    std::vector<T> v(n_);
    EXPECT_EQ(cudaMemcpy(v.data(), p_, n_ * sizeof(T), cudaMemcpyDeviceToHost), cudaSuccess);
    return v;
  }

 private:
  T* p_ = nullptr;
  size_t n_;
};

inline std::vector<uint16_t> ToBf16(const std::vector<float>& v) {
  std::vector<uint16_t> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = F32ToBf16(v[i]);
  return out;
}
inline std::vector<float> FromBf16(const std::vector<uint16_t>& v) {
  std::vector<float> out(v.size());
  for (size_t i = 0; i < v.size(); ++i) out[i] = Bf16ToF32(v[i]);
  return out;
}

// ||a - b|| / ||b||; NaN in a gives NaN (never passes a < tolerance check).
inline double RelL2(const float* a, const float* b, size_t n) {
  double num = 0, den = 0;
  for (size_t i = 0; i < n; ++i) {
    num += (double(a[i]) - b[i]) * (double(a[i]) - b[i]);
    den += double(b[i]) * b[i];
  }
  return std::sqrt(num / std::max(den, 1e-30));
}
inline double Cosine(const float* a, const float* b, size_t n) {
  double ab = 0, aa = 0, bb = 0;
  for (size_t i = 0; i < n; ++i) {
    ab += double(a[i]) * b[i];
    aa += double(a[i]) * a[i];
    bb += double(b[i]) * b[i];
  }
  return ab / std::sqrt(std::max(aa * bb, 1e-300));
}

// Greedy generation through the ModelRunner interface: the prompt in one step, then one token
// per step (pages 0, 1, ... of the runner's pool); steps + 1 tokens. logprobs >= 0 asks for them
// (the host sampling path).
inline std::vector<int32_t> Generate(ModelRunner& runner, std::vector<int32_t> ids, int steps,
                                     int logprobs = -1) {
  const int ps = runner.kv_page_size();
  SamplingParams greedy;
  greedy.temperature = 0.0f;
  std::vector<int32_t> out;
  int start = 0;
  for (int step = 0; step <= steps; ++step) {
    StepBatch b;
    const int end = static_cast<int>(ids.size()), used = (end + ps - 1) / ps;
    for (int p = start; p < end; ++p) {
      b.token_ids.push_back(ids[p]);
      b.positions.push_back(p);
    }
    b.query_indptr = {0, end - start};
    for (int i = 0; i < used; ++i) b.kv_page_indices.push_back(i);
    b.kv_page_indptr = {0, used};
    b.kv_last_page_len = {end - (used - 1) * ps};
    SequenceBatchEntry e;
    e.num_new_tokens = end - start;
    e.start_pos = start;
    e.sample = true;
    e.sampling = &greedy;
    e.sample_index = out.size();
    e.logprobs = logprobs;
    b.seqs.push_back(e);
    auto o = runner.Execute(b);
    EXPECT_TRUE(o.ok()) << o.status();
    if (!o.ok()) return out;
    out.push_back(o->seqs[0].token_id);
    ids.push_back(o->seqs[0].token_id);
    start = end;
  }
  return out;
}

// Tokens ids[s][start[s]:] of every sequence s, whose KV pages are [s * per_seq, (s + 1) *
// per_seq).
inline StepBatch PagedBatch(const std::vector<std::vector<int32_t>>& ids,
                            const std::vector<int>& start, int page_size, int per_seq) {
  StepBatch b;
  b.query_indptr = {0};
  b.kv_page_indptr = {0};
  for (size_t s = 0; s < ids.size(); ++s) {
    const int end = static_cast<int>(ids[s].size()), used = (end + page_size - 1) / page_size;
    for (int p = start[s]; p < end; ++p) {
      b.token_ids.push_back(ids[s][p]);
      b.positions.push_back(p);
    }
    b.query_indptr.push_back(b.num_tokens());
    for (int i = 0; i < used; ++i)
      b.kv_page_indices.push_back(static_cast<int32_t>(s) * per_seq + i);
    b.kv_page_indptr.push_back(static_cast<int32_t>(b.kv_page_indices.size()));
    b.kv_last_page_len.push_back(end - (used - 1) * page_size);
    SequenceBatchEntry e;
    e.num_new_tokens = end - start[s];
    e.start_pos = start[s];
    b.seqs.push_back(e);
  }
  return b;
}

}  // namespace attnres::gpu_testing
