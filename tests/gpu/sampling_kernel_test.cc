// The GPU sampler against models/sampler.cc SampleToken on identical fp32 logits: greedy (with
// ties), temperature, top-k, top-p, min-p and combinations, per-row seeds, in both forms (one
// block per row, and rows cut into chunks over many blocks); and the device copy of the
// counter-based uniform against SampleUniform.
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
    // Both forms: one block per row, and the wide one (chunks over many blocks).
    const size_t sample_bytes = kernels::SampleRowsTempBytes(R);
    DeviceArray<char> d_sample_temp(sample_bytes);
    for (bool wide : {false, true}) {
      d_tokens.Poison();
      ASSERT_CUDA(kernels::SampleRows(d_logits.get(), d_sorted.get(), d_ids.get(),
                                      d_params.get(), R, V, d_tokens.get(),
                                      wide ? d_sample_temp.get() : nullptr,
                                      wide ? sample_bytes : 0, nullptr));
      ASSERT_CUDA(cudaDeviceSynchronize());
      const auto tokens = d_tokens.Download();
      for (int r = 0; r < R; ++r) {
        SamplingParams s = configs[r % configs.size()];
        s.seed = params[r].seed;
        const int32_t want = SampleToken(
            s, params[r].index, std::span<const float>(&logits[size_t(r) * V], V));
        EXPECT_EQ(tokens[r], want) << (wide ? "wide" : "one block per row") << " V=" << V
                                   << " row " << r << " t=" << s.temperature << " k=" << s.top_k
                                   << " p=" << s.top_p << " m=" << s.min_p;
      }
    }
  }
}

// The wide form at batch 1 and a few rows, where each row is cut into many chunks: greedy maxima
// tied across chunk boundaries (the lowest id wins) and a maximum at the last id; then
// temperature draws over many seeds; each against the CPU sampler.
TEST(SampleRowsKernel, WideFormMatchesCpuSamplerAcrossChunks) {
  ATTNRES_REQUIRE_GPU();
  const int V = 128256;
  for (int R : {1, 3, 7}) {
    std::vector<float> plain(size_t(R) * V);
    std::mt19937 rng(R);
    std::normal_distribution<float> n(0.0f, 2.0f);
    for (float& x : plain) x = n(rng);
    std::vector<float> spiked = plain;
    spiked[size_t(V) - 1] = 40.0f;  // row 0: the last id
    if (R > 1) {  // row 1: the same maximum in many chunks; the lowest id is 2005
      for (int id : {V - 5, 90001, 2005, 64000, 2006}) spiked[size_t(V) + id] = 45.0f;
    }
    DeviceArray<float> d_logits(plain.size());
    DeviceArray<kernels::SampleParams> d_params(R);
    DeviceArray<int32_t> d_tokens(R);
    const size_t bytes = kernels::SampleRowsTempBytes(R);
    DeviceArray<char> d_temp(bytes);
    for (int draw = -1; draw < 40; ++draw) {  // draw -1: greedy over the spiked rows
      const std::vector<float>& logits = draw < 0 ? spiked : plain;
      if (draw <= 0) d_logits.Upload(logits);
      std::vector<kernels::SampleParams> step(R);
      for (int r = 0; r < R; ++r) {
        const float t = draw < 0 ? 0.0f : ((draw + r) % 3 == 0 ? 0.6f : 1.0f);
        step[r] = {t, 0, 1.0f, 0.0f, 77u + static_cast<uint64_t>((draw + 1) * R + r),
                   3u * static_cast<uint64_t>(draw + 1)};
      }
      d_params.Upload(step);
      d_tokens.Poison();
      ASSERT_CUDA(kernels::SampleRows(d_logits.get(), nullptr, nullptr, d_params.get(), R, V,
                                      d_tokens.get(), d_temp.get(), bytes, nullptr));
      ASSERT_CUDA(cudaDeviceSynchronize());
      const auto tokens = d_tokens.Download();
      for (int r = 0; r < R; ++r) {
        SamplingParams s;
        s.temperature = step[r].temperature;
        s.seed = step[r].seed;
        const int32_t want = SampleToken(s, step[r].index,
                                         std::span<const float>(&logits[size_t(r) * V], V));
        EXPECT_EQ(tokens[r], want) << "R=" << R << " draw " << draw << " row " << r
                                   << " t=" << s.temperature;
      }
    }
  }
}

}  // namespace
}  // namespace attnres
