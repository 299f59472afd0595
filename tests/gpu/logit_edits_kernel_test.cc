// The GPU sampler's logit edits and logprobs against their twins, over steps whose rows ask for
// penalties, logit bias, suppressed ids, token masks and logprobs (tests/logit_edit_cases.h):
// EditLogits gives the rows ApplyLogitEdits gives bit for bit (and each edit's raw value), the
// tokens sampled from them are SampleToken's, and RawLogprobs + ChosenLogprobs give
// ComputeLogprob's alternatives (ids exactly) and logprobs (within the rounding of a
// differently ordered double sum), with rows in one block each and cut into chunks.
// Vocabularies of 1, 7, 733, 50257 and 128256 ids.
#include <cstring>

#include "kernels/ops.h"
#include "models/logit_edits.h"
#include "models/sampler.h"
#include "tests/gpu/gpu_test_util.h"
#include "tests/logit_edit_cases.h"

namespace attnres {
namespace {

using gpu_testing::DeviceArray;

template <typename T>
std::unique_ptr<DeviceArray<T>> OnDevice(const std::vector<T>& v) {
  auto d = std::make_unique<DeviceArray<T>>(v.size());
  d->Upload(v);
  return d;
}

TEST(LogitEditsKernel, MatchesTwinAndHostSampler) {
  ATTNRES_REQUIRE_GPU();
  for (int V : {1, 7, 733, 50257, 128256}) {
    LogitEditPlanner planner(V);
    for (uint32_t seed = 1; seed <= 4; ++seed) {
      const testing::EditCase c = testing::MakeEditCase(seed * 31u + V, V, 5 + 7 * seed);
      const LogitEditPlan plan = planner.Plan(c.batch, c.rows);
      const int R = static_cast<int>(c.rows.rows.size());
      const int E = static_cast<int>(plan.edits.size()), L = static_cast<int>(plan.logprobs.size());
      if (R == 0) continue;
      // The twin.
      std::vector<float> want = c.logits, want_raw(E);
      ApplyLogitEdits(plan, V, want, want_raw);
      // The kernels, on poisoned outputs.
      auto logits = OnDevice(c.logits);
      auto rows = OnDevice(plan.rows);
      auto edits = OnDevice(plan.edits);
      auto masked = OnDevice(plan.masked);
      auto words = OnDevice(plan.mask_words);
      auto lp_rows = OnDevice(plan.logprobs);
      DeviceArray<float> raw(E);
      DeviceArray<double> lse(L);
      DeviceArray<kernels::LogprobOut> out(L);
      // Both forms: one block per row (no temp; even seeds), rows cut into chunks (odd).
      const size_t lp_bytes = kernels::RawLogprobsTempBytes(L);
      DeviceArray<char> lp_temp(lp_bytes);
      // Stale partials that would win a merge (3.4e38 values) if any were read unwritten.
      ASSERT_CUDA(cudaMemset(lp_temp.get(), 0x7f, lp_bytes));
      ASSERT_CUDA(kernels::RawLogprobs(logits->get(), V, lp_rows->get(), L,
                                       kernels::MaxTopN(plan.logprobs.data(), plan.logprobs.size()),
                                       out.get(), lse.get(), seed % 2 ? lp_temp.get() : nullptr,
                                       lp_bytes, nullptr));
      ASSERT_CUDA(kernels::EditLogits(logits->get(), V, rows->get(), edits->get(), E, raw.get(),
                                      masked->get(), static_cast<int>(plan.masked.size()),
                                      words->get(), nullptr));
      ASSERT_CUDA(cudaDeviceSynchronize());
      const std::vector<float> got = logits->Download();
      ASSERT_EQ(std::memcmp(got.data(), want.data(), sizeof(float) * want.size()), 0)
          << "V=" << V << " seed " << seed;
      if (E > 0) {
        EXPECT_EQ(raw.Download(), want_raw);
      }
      // Sample every row on the device (the planned rows' parameters; others greedy).
      std::vector<kernels::SampleParams> params(R);
      for (int s = 0; s < c.batch.num_seqs(); ++s) {
        const SequenceBatchEntry& e = c.batch.seqs[s];
        if (c.rows.first_row[s] < 0 || !e.sample || e.prompt_logprobs >= 0) continue;
        const SamplingParams& p = *e.sampling;
        params[c.rows.first_row[s]] = {p.temperature, p.top_k, p.top_p,
                                       p.min_p,       p.seed,  e.sample_index};
      }
      std::vector<int32_t> offsets(R + 1);
      for (int r = 0; r <= R; ++r) offsets[r] = r * V;
      auto d_params = OnDevice(params);
      auto d_offsets = OnDevice(offsets);
      DeviceArray<float> sorted(static_cast<size_t>(R) * V);
      DeviceArray<int32_t> ids(static_cast<size_t>(R) * V), tokens(R);
      const size_t sort_bytes = kernels::SortRowsTempBytes(R, V);
      DeviceArray<char> sort_temp(sort_bytes);
      ASSERT_CUDA(kernels::SortRowsDescending(logits->get(), R, V, d_offsets->get(), sorted.get(),
                                              ids.get(), sort_temp.get(), sort_bytes, nullptr));
      ASSERT_CUDA(kernels::SampleRows(logits->get(), sorted.get(), ids.get(), d_params->get(), R, V,
                                      tokens.get(), nullptr, 0, nullptr));
      ASSERT_CUDA(kernels::ChosenLogprobs(logits->get(), V, lp_rows->get(), L, rows->get(),
                                          edits->get(), raw.get(), tokens.get(), lse.get(),
                                          out.get(), nullptr));
      ASSERT_CUDA(cudaDeviceSynchronize());
      const std::vector<int32_t> sampled = tokens.Download();
      const std::vector<kernels::LogprobOut> lps = out.Download();
      int j = 0;
      for (int s = 0; s < c.batch.num_seqs(); ++s) {
        const SequenceBatchEntry& e = c.batch.seqs[s];
        const int r = c.rows.first_row[s];
        if (r < 0 || !e.sample || e.prompt_logprobs >= 0) continue;
        const std::span<const float> edited_row(want.data() + static_cast<size_t>(r) * V, V);
        EXPECT_EQ(sampled[r], SampleToken(*e.sampling, e.sample_index, edited_row))
            << "V=" << V << " seed " << seed << " seq " << s;
        if (e.logprobs < 0) continue;
        const TokenLogprob host =
            ComputeLogprob(std::span<const float>(c.logits.data() + static_cast<size_t>(r) * V, V),
                           sampled[r], e.logprobs);
        const kernels::LogprobOut& lo = lps[j++];
        EXPECT_EQ(lo.token, sampled[r]);
        EXPECT_NEAR(lo.logprob, host.logprob, 1e-5f * (1.0f + std::fabs(host.logprob)))
            << "V=" << V << " seed " << seed << " seq " << s;
        ASSERT_EQ(host.top.size(), static_cast<size_t>(std::min(e.logprobs, V)));
        for (size_t t = 0; t < host.top.size(); ++t) {
          EXPECT_EQ(lo.ids[t], host.top[t].first) << "V=" << V << " seq " << s << " alt " << t;
          EXPECT_NEAR(lo.logprobs[t], host.top[t].second,
                      1e-5f * (1.0f + std::fabs(host.top[t].second)));
        }
      }
      EXPECT_EQ(j, L);
    }
  }
}

}  // namespace
}  // namespace attnres
