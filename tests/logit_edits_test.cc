// The GPU sampler's edit plan against the host sampler: the plan built from a step, applied by
// its CPU twin (the kernels' reference), gives bit for bit the rows EditRowOnHost gives, keeps
// each edited id's raw value, and names the logprob rows; rows it has no business with stay as
// they were.
#include "models/logit_edits.h"

#include <cstring>
#include <set>

#include "gtest/gtest.h"
#include "models/sampler.h"
#include "tests/logit_edit_cases.h"

namespace attnres {
namespace {

using testing::EditCase;
using testing::MakeEditCase;

// Whether a sequence's row is the plan's: it samples and does not ask for prompt logprobs.
bool Planned(const SequenceBatchEntry& e) { return e.sample && e.prompt_logprobs < 0; }

TEST(LogitEditPlan, TwinMatchesHostSamplerBitForBit) {
  for (int V : {1, 7, 64, 65, 733, 50257}) {
    LogitEditPlanner planner(V);
    for (uint32_t seed = 1; seed <= 12; ++seed) {
      const EditCase c = MakeEditCase(seed * 7919u + V, V, 1 + static_cast<int>(seed % 9) * 3);
      const LogitEditPlan plan = planner.Plan(c.batch, c.rows);
      std::vector<float> edited = c.logits, raw(plan.edits.size());
      ApplyLogitEdits(plan, V, edited, raw);
      for (int s = 0; s < c.batch.num_seqs(); ++s) {
        const SequenceBatchEntry& e = c.batch.seqs[s];
        const int first = c.rows.first_row[s];
        if (first < 0) continue;
        const int rows = e.prompt_logprobs >= 0 ? e.num_new_tokens : 1;
        for (int r = first; r < first + rows; ++r) {
          std::vector<float> want(c.logits.begin() + static_cast<size_t>(r) * V,
                                  c.logits.begin() + static_cast<size_t>(r + 1) * V);
          if (Planned(e)) EditRowOnHost(e, want);
          ASSERT_EQ(std::memcmp(want.data(), edited.data() + static_cast<size_t>(r) * V,
                                sizeof(float) * V),
                    0)
              << "V=" << V << " seed " << seed << " seq " << s << " row " << r;
        }
      }
      for (size_t i = 0; i < plan.edits.size(); ++i) {
        const auto& ed = plan.edits[i];
        const auto& row = plan.rows[ed.edited_row];
        EXPECT_GE(i, static_cast<size_t>(row.begin));
        EXPECT_LT(i, static_cast<size_t>(row.end));
        EXPECT_EQ(raw[i], c.logits[static_cast<size_t>(row.logit_row) * V + ed.id]);
      }
      for (const auto& row : plan.rows) {  // one edit per id of a row
        std::set<int32_t> ids;
        for (int32_t i = row.begin; i < row.end; ++i) ids.insert(plan.edits[i].id);
        EXPECT_EQ(ids.size(), static_cast<size_t>(row.end - row.begin));
      }
      // The logprob rows: every planned sequence that asks, in order, with its edited row.
      size_t k = 0;
      for (int s = 0; s < c.batch.num_seqs(); ++s) {
        const SequenceBatchEntry& e = c.batch.seqs[s];
        if (!Planned(e) || e.logprobs < 0) continue;
        ASSERT_LT(k, plan.logprobs.size());
        const kernels::LogprobRow& lr = plan.logprobs[k++];
        EXPECT_EQ(lr.logit_row, c.rows.first_row[s]);
        EXPECT_EQ(lr.top_n, e.logprobs);
        if (lr.edited_row >= 0) {
          EXPECT_EQ(plan.rows[lr.edited_row].logit_row, lr.logit_row);
        } else {
          for (const auto& row : plan.rows) EXPECT_NE(row.logit_row, lr.logit_row);
        }
      }
      EXPECT_EQ(k, plan.logprobs.size());
    }
  }
}

// The tokens and logprobs the GPU sampler derives from a plan (SampleToken on the edited row,
// ComputeLogprob on the raw one, the sampled id's raw value from the edits when edited) are the
// host sampler's.
TEST(LogitEditPlan, SampledTokensAndLogprobsMatchSampleOnHost) {
  const int V = 733;
  LogitEditPlanner planner(V);
  for (uint32_t seed = 1; seed <= 20; ++seed) {
    const EditCase c = MakeEditCase(seed, V, 17);
    StepOutput host;
    SampleOnHost(c.batch, c.rows, c.logits, V, {}, 0, &host);
    const LogitEditPlan plan = planner.Plan(c.batch, c.rows);
    std::vector<float> edited = c.logits, raw(plan.edits.size());
    ApplyLogitEdits(plan, V, edited, raw);
    size_t k = 0;
    for (int s = 0; s < c.batch.num_seqs(); ++s) {
      const SequenceBatchEntry& e = c.batch.seqs[s];
      if (!Planned(e)) continue;
      const int r = c.rows.first_row[s];
      const std::span<const float> row(edited.data() + static_cast<size_t>(r) * V, V);
      const int32_t token = SampleToken(*e.sampling, e.sample_index, row);
      EXPECT_EQ(token, host.seqs[s].token_id) << "seed " << seed << " seq " << s;
      if (e.logprobs < 0) continue;
      const kernels::LogprobRow& lr = plan.logprobs[k++];
      float token_raw = c.logits[static_cast<size_t>(r) * V + token];
      if (lr.edited_row >= 0) {  // the id's value before its edits, as the kernel looks it up
        const auto& er = plan.rows[lr.edited_row];
        for (int32_t i = er.begin; i < er.end; ++i) {
          if (plan.edits[i].id == token) token_raw = raw[i];
        }
      }
      EXPECT_EQ(token_raw, c.logits[static_cast<size_t>(r) * V + token]);
      const TokenLogprob want = host.seqs[s].logprob;
      const TokenLogprob got = ComputeLogprob(
          std::span<const float>(c.logits.data() + static_cast<size_t>(r) * V, V), token, lr.top_n);
      EXPECT_EQ(got.logprob, want.logprob);
      EXPECT_EQ(got.top, want.top);
    }
  }
}

TEST(LogitEditPlan, StepsWithoutEditsPlanNothing) {
  const int V = 100;
  SamplingParams greedy;
  greedy.temperature = 0.0f;
  StepBatch b;
  b.token_ids = {1, 2, 3};
  b.query_indptr = {0, 1, 3};
  b.seqs.resize(2);
  for (auto& e : b.seqs) {
    e.sample = true;
    e.sampling = &greedy;
  }
  b.seqs[1].num_new_tokens = 2;
  LogitEditPlanner planner(V);
  EXPECT_TRUE(planner.Plan(b, LogitRows::For(b)).empty());
  // Penalties without a history, and a history without penalties, edit nothing either.
  const std::vector<int32_t> history = {5, 5, 6};
  b.seqs[0].history = &history;
  SamplingParams penalised = greedy;
  penalised.presence_penalty = 0.5f;
  b.seqs[1].sampling = &penalised;
  EXPECT_TRUE(planner.Plan(b, LogitRows::For(b)).empty());
}

}  // namespace
}  // namespace attnres
