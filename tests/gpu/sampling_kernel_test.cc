// The GPU sampler against models/sampler.cc SampleToken on identical fp32 logits: greedy (with
// ties), temperature, top-k, top-p, min-p and combinations, per-row seeds; and the device copy of
// the counter-based uniform against SampleUniform.
#include <random>

#include "kernels/ops.h"
#include "models/sampler.h"
#include "tests/gpu/gpu_test_util.h"

namespace attnres {
namespace {

using gpu_testing::DeviceArray;

TEST(SampleUniform, DeviceFormulaMatchesHost) {
  for (uint64_t seed : {0ull, 1ull, 42ull, 0xFFFFFFFFFFFFull}) {
    for (uint64_t i = 0; i < 1000; ++i) {
      ASSERT_EQ(kernels::SampleUniformBits(seed, i), SampleUniform(seed, i));
    }
  }
}

TEST(SampleRowsKernel, MatchesCpuSampler) {
  ATTNRES_REQUIRE_GPU();
  std::vector<SamplingParams> configs;
  auto add = [&](float t, int k, float p, float m) {
    SamplingParams s;
    s.temperature = t;
    s.top_k = k;
    s.top_p = p;
    s.min_p = m;
    configs.push_back(s);
  };
  add(0.0f, 0, 1.0f, 0.0f);   // greedy
  add(1.0f, 0, 1.0f, 0.0f);   // plain
  add(0.7f, 0, 1.0f, 0.0f);
  add(1.0f, 50, 1.0f, 0.0f);  // top-k
  add(0.8f, 0, 0.9f, 0.0f);   // top-p
  add(1.3f, 0, 1.0f, 0.05f);  // min-p
  add(0.9f, 40, 0.95f, 0.02f);
  add(1.0f, 1, 1.0f, 0.0f);
  for (int V : {257, 8192, 128256}) {
    const int R = static_cast<int>(configs.size()) * 3;
    std::vector<float> logits(size_t(R) * V);
    std::mt19937 rng(V);
    std::normal_distribution<float> n(0.0f, 3.0f);
    for (float& x : logits) x = n(rng);
    for (int i = 0; i < 10; ++i) logits[size_t(V) * 0 + 100 + i] = 50.0f;  // greedy tie: id 100
    // Greedy row 8: maxima that one thread meets in different unrolled loads (ids 7 and 4103
    // of a 1024-thread block) and at the row's last id: id 7.
    for (int id : {V - 1, 4103 % V, 7}) logits[size_t(V) * 8 + id] = 60.0f;
    std::vector<kernels::SampleParams> params(R);
    for (int r = 0; r < R; ++r) {
      const SamplingParams& s = configs[r % configs.size()];
      params[r] = {s.temperature, s.top_k, s.top_p, s.min_p, 1000u + r, 7u * r};
    }
    DeviceArray<float> d_logits(logits.size()), d_sorted(logits.size());
    DeviceArray<int32_t> d_ids(logits.size()), d_offsets(R + 1), d_tokens(R);
    DeviceArray<kernels::SampleParams> d_params(R);
    const size_t temp_bytes = kernels::SortRowsTempBytes(R, V);
    DeviceArray<char> d_temp(temp_bytes);
    std::vector<int32_t> offsets(R + 1);
    for (int r = 0; r <= R; ++r) offsets[r] = r * V;
    d_logits.Upload(logits);
    d_offsets.Upload(offsets);
    d_params.Upload(params);
    ASSERT_CUDA(kernels::SortRowsDescending(d_logits.get(), R, V, d_offsets.get(), d_sorted.get(),
                                            d_ids.get(), d_temp.get(), temp_bytes, nullptr));
    ASSERT_CUDA(kernels::SampleRows(d_logits.get(), d_sorted.get(), d_ids.get(), d_params.get(),
                                    R, V, d_tokens.get(), nullptr));
    ASSERT_CUDA(cudaDeviceSynchronize());
    const auto tokens = d_tokens.Download();
    for (int r = 0; r < R; ++r) {
      SamplingParams s = configs[r % configs.size()];
      s.seed = params[r].seed;
      const int32_t want = SampleToken(
          s, params[r].index, std::span<const float>(&logits[size_t(r) * V], V));
      EXPECT_EQ(tokens[r], want) << "V=" << V << " row " << r << " t=" << s.temperature
                                 << " k=" << s.top_k << " p=" << s.top_p << " m=" << s.min_p;
    }
  }
}

}  // namespace
}  // namespace attnres
