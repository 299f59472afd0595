// Sampler: greedy, seeded reproducibility, distribution, truncation rules, penalties, logit bias,
// suppressed ids, logprobs.
#include "models/sampler.h"

#include <cmath>
#include <limits>
#include <map>
#include <random>

#include "gtest/gtest.h"
#include "models/host_sampler.h"

namespace attnres {
namespace {

SamplingParams Params(float t) {
  SamplingParams p;
  p.temperature = t;
  p.seed = 42;
  return p;
}

TEST(Sampler, GreedyPicksArgmaxLowestIdOnTies) {
  const std::vector<float> l = {0.5f, 2.0f, 2.0f, -1.0f};
  EXPECT_EQ(SampleToken(Params(0), 0, l), 1);
}

TEST(Sampler, SameSeedAndIndexSameToken) {
  std::vector<float> l(50);
  for (int i = 0; i < 50; ++i) l[i] = std::sin(i * 1.3f);
  for (uint64_t idx = 0; idx < 20; ++idx) {
    EXPECT_EQ(SampleToken(Params(1), idx, l), SampleToken(Params(1), idx, l));
  }
  int differ = 0;
  SamplingParams other = Params(1);
  other.seed = 43;
  for (uint64_t idx = 0; idx < 50; ++idx) {
    differ += SampleToken(Params(1), idx, l) != SampleToken(other, idx, l);
  }
  EXPECT_GT(differ, 10);
}

TEST(Sampler, FrequenciesFollowTheSoftmax) {
  const std::vector<float> l = {std::log(0.5f), std::log(0.3f), std::log(0.15f), std::log(0.05f)};
  std::map<int, int> count;
  const int n = 40000;
  for (int i = 0; i < n; ++i) ++count[SampleToken(Params(1), i, l)];
  EXPECT_NEAR(count[0] / double(n), 0.5, 0.01);
  EXPECT_NEAR(count[1] / double(n), 0.3, 0.01);
  EXPECT_NEAR(count[2] / double(n), 0.15, 0.01);
  EXPECT_NEAR(count[3] / double(n), 0.05, 0.006);
  // Temperature 0.5 squares the odds.
  std::map<int, int> cold;
  for (int i = 0; i < n; ++i) ++cold[SampleToken(Params(0.5f), i, l)];
  const double z = 0.25 + 0.09 + 0.0225 + 0.0025;
  EXPECT_NEAR(cold[0] / double(n), 0.25 / z, 0.01);
}

TEST(Sampler, TruncationRules) {
  const std::vector<float> l = {std::log(0.5f), std::log(0.3f), std::log(0.15f), std::log(0.05f)};
  SamplingParams p = Params(1);
  p.top_k = 2;
  for (int i = 0; i < 2000; ++i) EXPECT_LT(SampleToken(p, i, l), 2);
  p = Params(1);
  p.top_p = 0.79f;  // 0.5 + 0.3 reaches it: keep two
  for (int i = 0; i < 2000; ++i) EXPECT_LT(SampleToken(p, i, l), 2);
  p.top_p = 0.2f;  // the top token alone
  for (int i = 0; i < 200; ++i) EXPECT_EQ(SampleToken(p, i, l), 0);
  p = Params(1);
  p.min_p = 0.25f;  // keep p >= 0.125: three tokens
  std::map<int, int> c;
  for (int i = 0; i < 4000; ++i) ++c[SampleToken(p, i, l)];
  EXPECT_EQ(c.count(3), 0u);
  EXPECT_GT(c[2], 0);
}

// The truncating draw sorts only a growing prefix of the row; a reference that sorts it whole
// (the rule as documented: top-k, min-p relative to the top, top-p over what is left, the draw in
// probability order) picks the same tokens over sizes, ties, -inf logits and parameter mixes.
int32_t FullSortReference(const SamplingParams& p, uint64_t index, const std::vector<float>& l) {
  const int V = static_cast<int>(l.size());
  std::vector<int32_t> ids(V);
  for (int i = 0; i < V; ++i) ids[i] = i;
  std::sort(ids.begin(), ids.end(),
            [&](int32_t a, int32_t b) { return l[a] > l[b] || (l[a] == l[b] && a < b); });
  int n = p.top_k > 0 && p.top_k < V ? p.top_k : V;
  std::vector<double> prob(n);
  for (int k = 0; k < n; ++k) prob[k] = std::exp((l[ids[k]] - l[ids[0]]) / double(p.temperature));
  if (p.min_p > 0.0f) {
    int keep = 1;
    while (keep < n && prob[keep] >= p.min_p * prob[0]) ++keep;
    n = keep;
  }
  if (p.top_p < 1.0f) {
    double kept = 0.0;
    for (int k = 0; k < n; ++k) kept += prob[k];
    double cum = 0.0;
    int k = 0;
    while (k < n) {
      cum += prob[k++];
      if (cum >= p.top_p * kept) break;
    }
    n = k;
  }
  double total = 0.0;
  for (int k = 0; k < n; ++k) total += prob[k];
  const double target = SampleUniform(p.seed, index) * total;
  double cum = 0.0;
  for (int k = 0; k < n; ++k) {
    cum += prob[k];
    if (target < cum) return ids[k];
  }
  return ids[n - 1];
}

TEST(Sampler, TruncationMatchesAFullSort) {
  std::mt19937 rng(11);
  int draws = 0;
  for (int V : {1, 2, 7, 255, 256, 257, 1000, 5003}) {
    for (int trial = 0; trial < 40; ++trial) {
      std::vector<float> l(V);
      std::normal_distribution<float> normal(0.0f, (trial / 2) % 2 ? 1.0f : 6.0f);
      for (float& x : l) x = rng() % 7 == 0 ? std::round(normal(rng)) : normal(rng);  // ties
      if (V > 3 && trial % 5 == 0) l[rng() % V] = -std::numeric_limits<float>::infinity();
      SamplingParams p = Params(trial % 3 == 0 ? 0.5f : 1.2f);
      p.top_k = trial % 4 == 0 ? 1 + static_cast<int>(rng() % V) : 0;
      p.top_p = trial % 2 == 0 ? 0.3f + (rng() % 70) / 100.0f : 1.0f;
      p.min_p = trial % 3 == 1 ? (rng() % 30) / 100.0f : 0.0f;
      if (p.top_k == 0 && p.top_p >= 1.0f && p.min_p <= 0.0f) p.min_p = 0.01f;
      for (uint64_t index = 0; index < 10; ++index, ++draws) {
        ASSERT_EQ(SampleToken(p, index, l), FullSortReference(p, index, l))
            << "V=" << V << " trial " << trial << " k=" << p.top_k << " p=" << p.top_p
            << " m=" << p.min_p;
      }
    }
  }
  EXPECT_EQ(draws, 8 * 40 * 10);
}

TEST(Sampler, Penalties) {
  std::vector<float> l = {2.0f, -2.0f, 1.0f, 1.0f};
  SamplingParams p = Params(1);
  p.repetition_penalty = 2.0f;
  p.presence_penalty = 0.5f;
  p.frequency_penalty = 0.25f;
  const std::vector<int32_t> history = {0, 1, 2, 2};  // prompt {0, 1}, generated {2, 2}
  ApplyPenalties(p, history, 2, l);
  EXPECT_FLOAT_EQ(l[0], 1.0f);    // repetition only (prompt)
  EXPECT_FLOAT_EQ(l[1], -4.0f);   // negative: multiplied
  EXPECT_FLOAT_EQ(l[2], 0.5f - 0.5f - 0.5f);  // 1/2, then presence, then 2 * frequency
  EXPECT_FLOAT_EQ(l[3], 1.0f);    // unseen
}

TEST(Sampler, LogitBiasAddsToTheNamedLogits) {
  std::vector<float> l = {2.0f, -2.0f, 1.0f, 1.0f};
  SamplingParams p = Params(0);
  p.logit_bias = {{1, 5.0f}, {3, -0.5f}};
  ApplyLogitBias(p, l);
  EXPECT_EQ(l, (std::vector<float>{2.0f, 3.0f, 1.0f, 0.5f}));
  EXPECT_EQ(SampleToken(p, 0, l), 1);
}

TEST(Sampler, SuppressedTokensAreNeverSampled) {
  const std::vector<float> base = {std::log(0.5f), std::log(0.3f), std::log(0.15f),
                                   std::log(0.05f)};
  const std::vector<int32_t> suppressed = {0, 2};
  for (float t : {0.0f, 0.7f, 1.0f}) {
    for (int variant = 0; variant < 4; ++variant) {
      SamplingParams p = Params(t);
      if (variant == 1) p.top_k = 2;
      if (variant == 2) p.top_p = 0.5f;
      if (variant == 3) p.min_p = 0.9f;
      p.repetition_penalty = 1.5f;  // penalties after suppression keep it at -inf
      p.frequency_penalty = 1.0f;
      std::vector<float> l = base;
      SuppressTokens(suppressed, l);
      ApplyPenalties(p, std::vector<int32_t>{0, 2, 3}, 1, l);
      EXPECT_TRUE(std::isinf(l[0]) && std::isinf(l[2]));
      std::map<int, int> c;
      for (int i = 0; i < 500; ++i) ++c[SampleToken(p, i, l)];
      EXPECT_EQ(c.count(0) + c.count(2), 0u) << "t=" << t << " variant " << variant;
    }
  }
}

// SampleOnHost applies the bias and the suppression to the draw but reports logprobs of the
// unmodified distribution.
TEST(Sampler, HostSamplerBiasesTheDrawNotTheLogprobs) {
  const int V = 5;
  const std::vector<float> logits = {3.0f, 1.0f, 0.0f, -1.0f, 2.0f};
  StepBatch b;
  b.token_ids = {7};
  b.positions = {0};
  b.query_indptr = {0, 1};
  SamplingParams p = Params(0);
  p.logit_bias = {{2, 10.0f}};
  const std::vector<int32_t> suppressed = {2};
  SequenceBatchEntry e;
  e.num_new_tokens = 1;
  e.sample = true;
  e.sampling = &p;
  e.logprobs = 1;
  b.seqs = {e};
  const LogitRows plan = LogitRows::For(b);
  StepOutput out;
  SampleOnHost(b, plan, logits, V, {}, 0, &out);
  EXPECT_EQ(out.seqs[0].token_id, 2);  // the bias beats token 0's lead
  const TokenLogprob unbiased = ComputeLogprob(logits, 2, 1);
  EXPECT_FLOAT_EQ(out.seqs[0].logprob.logprob, unbiased.logprob);
  EXPECT_EQ(out.seqs[0].logprob.top, unbiased.top);
  b.seqs[0].suppressed = &suppressed;  // suppression wins over the bias
  SampleOnHost(b, plan, logits, V, {}, 0, &out);
  EXPECT_EQ(out.seqs[0].token_id, 0);
}

TEST(Sampler, KeepAllowedLeavesOnlyTheMaskedIds) {
  std::vector<float> l(130, 1.0f);
  TokenBitmask allowed(100);  // ids 100..129 lie past the mask: never allowed
  for (int32_t id : {0, 63, 64, 99}) allowed.Set(id);
  EXPECT_EQ(allowed.capacity(), 128);
  EXPECT_FALSE(allowed.Has(-1));
  EXPECT_FALSE(allowed.Has(128));
  KeepAllowed(allowed, l);
  for (int id = 0; id < 130; ++id) {
    const bool kept = id == 0 || id == 63 || id == 64 || id == 99;
    EXPECT_EQ(std::isinf(l[id]), !kept) << id;
  }
}

// The mask decides the draw after bias and penalties, at every temperature and truncation, and
// the logprobs stay those of the unmodified distribution.
TEST(Sampler, HostSamplerDrawsOnlyAllowedTokens) {
  const int V = 70;
  std::vector<float> logits(V);
  for (int i = 0; i < V; ++i) logits[i] = std::sin(0.37f * i) * 3.0f;
  TokenBitmask allowed(V);
  for (int32_t id : {5, 41, 66}) allowed.Set(id);
  StepBatch b;
  b.token_ids = {7};
  b.positions = {0};
  b.query_indptr = {0, 1};
  SequenceBatchEntry e;
  e.num_new_tokens = 1;
  e.sample = true;
  e.logprobs = 0;
  e.allowed = &allowed;
  for (float t : {0.0f, 0.8f, 1.5f}) {
    SamplingParams p = Params(t);
    p.top_k = 2;
    p.logit_bias = {{3, 100.0f}};  // the bias cannot bring back a token the mask refuses
    e.sampling = &p;
    std::map<int, int> c;
    for (uint64_t i = 0; i < 300; ++i) {
      e.sample_index = i;
      b.seqs = {e};
      StepOutput out;
      SampleOnHost(b, LogitRows::For(b), logits, V, {}, 0, &out);
      const int32_t id = out.seqs[0].token_id;
      ++c[id];
      EXPECT_FLOAT_EQ(out.seqs[0].logprob.logprob, ComputeLogprob(logits, id, 0).logprob);
    }
    for (const auto& [id, n] : c) EXPECT_TRUE(allowed.Has(id)) << "t=" << t << " drew " << id;
    if (t > 0) {
      EXPECT_EQ(c.size(), 2u) << "top_k 2 of the three allowed";
    }
  }
}

TEST(Sampler, LogprobsNormalisedAndSorted) {
  const std::vector<float> l = {1.0f, 3.0f, 2.0f, 3.0f, -5.0f};
  TokenLogprob lp = ComputeLogprob(l, 2, 3);
  double z = 0;
  for (float x : l) z += std::exp(x);
  EXPECT_NEAR(lp.logprob, 2.0 - std::log(z), 1e-6);
  ASSERT_EQ(lp.top.size(), 3u);
  EXPECT_EQ(lp.top[0].first, 1);
  EXPECT_EQ(lp.top[1].first, 3);
  EXPECT_EQ(lp.top[2].first, 2);
  EXPECT_GE(lp.top[0].second, lp.top[1].second);
}

TEST(Sampler, UniformIsInUnitInterval) {
  double sum = 0;
  for (uint64_t i = 0; i < 10000; ++i) {
    const double u = SampleUniform(7, i);
    ASSERT_GE(u, 0.0);
    ASSERT_LT(u, 1.0);
    sum += u;
  }
  EXPECT_NEAR(sum / 10000, 0.5, 0.01);
}

}  // namespace
}  // namespace attnres
