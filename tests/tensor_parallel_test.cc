// Tensor parallelism on the CPU: the collectives, the plan's divisibility errors, and every
// rank's arithmetic (sharded weights, all-reduce after o_proj/down_proj, vocab-split head)
// against the single-device forward, for standard, Block and Full AttnRes models.
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "models/model_runner.h"
#include "models/parallel/communicator.h"
#include "models/parallel/tensor_parallel.h"
#include "tests/test_models.h"

namespace attnres {
namespace {

using ::testing::HasSubstr;

TEST(ThreadCommunicator, Collectives) {
  const int world = 3, n = 5;
  auto comms = CreateThreadCommunicators(world);
  std::vector<std::vector<float>> reduced(world), gathered(world), scattered(world);
  std::vector<std::thread> threads;
  for (int r = 0; r < world; ++r) {
    threads.emplace_back([&, r] {
      Communicator& c = *comms[r];
      std::vector<float> x(n);
      for (int i = 0; i < n; ++i) x[i] = r * 10 + i;
      reduced[r] = x;
      c.AllReduceSum(reduced[r].data(), n);
      gathered[r].resize(world * n);
      c.AllGather(x.data(), n, gathered[r].data());
      std::vector<float> big(world * 2);
      for (int i = 0; i < world * 2; ++i) big[i] = r + i;
      scattered[r].resize(2);
      c.ReduceScatterSum(big.data(), 2, scattered[r].data());
    });
  }
  for (auto& t : threads) t.join();
  for (int r = 0; r < world; ++r) {
    for (int i = 0; i < n; ++i) EXPECT_EQ(reduced[r][i], 30 + 3 * i);
    for (int k = 0; k < world; ++k) EXPECT_EQ(gathered[r][k * n + 1], k * 10 + 1);
    for (int i = 0; i < 2; ++i) EXPECT_EQ(scattered[r][i], 3 + 3 * (r * 2 + i));
  }
}

TEST(TensorParallelPlan, ErrorsNameTheKey) {
  ModelConfig c = *RandomModelPreset("tiny-block");  // 4 heads, 2 KV heads
  auto p = PlanTensorParallel(c, 4, 0);
  ASSERT_FALSE(p.ok());
  EXPECT_THAT(std::string(p.status().message()), HasSubstr("num_key_value_heads (2)"));
  p = PlanTensorParallel(c, 2, 1);
  ASSERT_TRUE(p.ok());
  EXPECT_EQ(p->local.num_heads, 2);
  EXPECT_EQ(p->local.intermediate_size, 80);
  EXPECT_EQ(p->vocab_begin, 150);
}

// Logits of every position from `world` ranks run on their own threads.
std::vector<std::vector<float>> ShardedLogits(const testing::LoadedCpuModel& m, int world,
                                              const std::vector<int32_t>& ids,
                                              int seq_shard_min_tokens,
                                              std::vector<float>* mix_weights) {
  auto comms = CreateThreadCommunicators(world);
  std::vector<std::vector<std::vector<float>>> per_rank(world);
  std::vector<std::thread> threads;
  for (int r = 0; r < world; ++r) {
    threads.emplace_back([&, r] {
      auto plan = PlanTensorParallel(m.config, world, r);
      ASSERT_TRUE(plan.ok()) << plan.status();
      testing::LoadedCpuModel shard;
      shard.config = plan->local;
      shard.weights = ShardCpuWeights(m.weights, m.config, *plan);
      std::vector<float> mix;
      per_rank[r] = testing::AllLogits(shard, ids, {7, 1, 1, 3}, 4, &mix, comms[r].get(),
                                       seq_shard_min_tokens);
      if (r == 0) *mix_weights = mix;
    });
  }
  for (auto& t : threads) t.join();
  for (int r = 1; r < world; ++r) EXPECT_EQ(per_rank[r], per_rank[0]) << "rank " << r;
  return per_rank[0];
}

TEST(TensorParallel, EveryRankMatchesTheSingleDeviceForward) {
  for (ResidualMode mode : {ResidualMode::kStandard, ResidualMode::kBlock, ResidualMode::kFull}) {
    ModelConfig c = *RandomModelPreset("tiny-block");
    c.residual_mode = mode;
    c.num_heads = 8;
    c.num_kv_heads = 4;
    c.head_dim = 8;
    RandomModelOptions o;
    o.seed = 21;
    o.qk_norm = mode == ResidualMode::kFull;
    auto model = testing::LoadCpuModel(
        testing::MakeModel(std::string("tp_") + ResidualModeName(mode), c, o));
    std::vector<int32_t> ids;
    for (int i = 0; i < 12; ++i) ids.push_back((i * 37 + 5) % c.vocab_size);
    std::vector<float> single_mix;
    const auto single = testing::AllLogits(model, ids, {7, 1, 1, 3}, 4, &single_mix);
    // Sequence sharding on for every chunk (min 1 token: even 1-token steps where some ranks own
    // no row), then off (all-reduce form).
    for (int min_tokens : {1, 1000}) {
      for (int world : {1, 2, 4}) {
        std::vector<float> mix;
        const auto tp = ShardedLogits(model, world, ids, min_tokens, &mix);
        ASSERT_EQ(tp.size(), single.size());
        for (size_t t = 0; t < ids.size(); ++t) {
          EXPECT_LT(testing::RelL2(tp[t], single[t]), 1e-5)
              << ResidualModeName(mode) << " world " << world << " position " << t
              << " seq_shard_min " << min_tokens;
        }
        ASSERT_EQ(mix.size(), single_mix.size());
        for (size_t k = 0; k < mix.size(); ++k) EXPECT_NEAR(mix[k], single_mix[k], 1e-6);
      }
    }
  }
}

TEST(TensorParallel, CpuRunnerGreedyTokensMatchAcrossWorldSizes) {
  RandomModelOptions o;
  ModelConfig c = *RandomModelPreset("tiny-block");
  auto dir = testing::MakeModel("tp_runner", c, o);
  std::vector<int32_t> expect;
  for (int world : {1, 2}) {
    RunnerOptions ro;
    ro.tensor_parallel = world;
    ro.kv_page_size = 4;
    auto runner = CreateModelRunner(dir, ro);
    ASSERT_TRUE(runner.ok()) << runner.status();
    SamplingParams greedy;
    greedy.temperature = 0;
    std::vector<int32_t> seq = {1, 2, 3, 4, 5};
    std::vector<int32_t> got;
    for (int step = 0; step < 6; ++step) {
      StepBatch b;
      const int start = step == 0 ? 0 : static_cast<int>(seq.size()) - 1;
      for (int p = start; p < static_cast<int>(seq.size()); ++p) {
        b.token_ids.push_back(seq[p]);
        b.positions.push_back(p);
      }
      b.query_indptr = {0, static_cast<int32_t>(b.token_ids.size())};
      const int len = static_cast<int>(seq.size()), pages = (len + 3) / 4;
      for (int i = 0; i < pages; ++i) b.kv_page_indices.push_back(i);
      b.kv_page_indptr = {0, pages};
      b.kv_last_page_len = {len - (pages - 1) * 4};
      SequenceBatchEntry e;
      e.num_new_tokens = b.num_tokens();
      e.start_pos = start;
      e.sample = true;
      e.sampling = &greedy;
      b.seqs.push_back(e);
      auto out = (*runner)->Execute(b);
      ASSERT_TRUE(out.ok()) << out.status();
      got.push_back(out->seqs[0].token_id);
      seq.push_back(out->seqs[0].token_id);
    }
    if (world == 1) expect = got; else EXPECT_EQ(got, expect);
  }
  RunnerOptions bad;
  bad.tensor_parallel = 3;
  auto r = CreateModelRunner(dir, bad);
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("--tensor-parallel 3"));
}

}  // namespace
}  // namespace attnres
