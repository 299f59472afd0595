// Tensor parallelism on the CPU: the collectives, the plan's divisibility errors, every rank's
// arithmetic (sharded weights, all-reduce after o_proj/down_proj, vocab-split head) against the
// single-device forward for standard, Block and Full AttnRes models, the GPU loader's host side
// (checkpoint blocks read as bf16) against ShardCpuWeights, and the rank threads.
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "models/model_runner.h"
#include "models/half.h"
#include "models/parallel/checkpoint_shards.h"
#include "models/parallel/communicator.h"
#include "models/parallel/rank_workers.h"
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

// bf16 bits of the row-wise concatenation of fp32 matrices.
std::vector<uint16_t> Bf16Of(std::initializer_list<const std::vector<float>*> parts) {
  std::vector<uint16_t> out;
  for (const auto* p : parts) {
    for (float x : *p) out.push_back(F32ToBf16(x));
  }
  return out;
}

std::vector<uint16_t> Read(const SafetensorsStore& store, const ShardMatrix& m) {
  std::vector<uint16_t> out(static_cast<size_t>(m.elements()), 0xFFFF);
  const absl::Status st = ReadBf16(store, m, out.data());
  EXPECT_TRUE(st.ok()) << st;
  return out;
}

// The GPU loader's blocks of every fused matrix, read from the checkpoint, equal the bf16 of the
// CPU slices (fp32, fp16 and bf16 checkpoints; tied and untied heads; worlds 1, 2 and 4).
TEST(CheckpointShards, DeviceMatricesMatchShardCpuWeights) {
  for (DType dtype : {DType::kF32, DType::kF16, DType::kBF16}) {
    for (bool tied : {true, false}) {
      ModelConfig c = *RandomModelPreset("tiny-block");
      c.num_heads = 8;
      c.num_kv_heads = 4;
      c.head_dim = 8;
      c.tie_word_embeddings = tied;
      RandomModelOptions o;
      o.seed = 5;
      o.dtype = dtype;
      auto m = testing::LoadCpuModel(testing::MakeModel(
          absl::StrCat("shards_", DTypeName(dtype), tied ? "_tied" : "_untied"), c, o));
      EXPECT_EQ(Read(*m.store, EmbedMatrix(c)), Bf16Of({&m.weights.embed}));
      for (int world : {1, 2, 4}) {
        for (int r = 0; r < world; ++r) {
          SCOPED_TRACE(::testing::Message() << DTypeName(dtype) << (tied ? " tied" : " untied")
                                            << " rank " << r << " of " << world);
          const TensorParallelPlan plan = *PlanTensorParallel(c, world, r);
          const CpuWeights shard = ShardCpuWeights(m.weights, c, plan);
          const ModelConfig& l = plan.local;
          const ShardMatrix head = LmHeadMatrix(c, plan);
          EXPECT_EQ(head.rows(), plan.vocab_local);
          EXPECT_EQ(Read(*m.store, head), Bf16Of({&shard.lm_head}));
          for (int layer = 0; layer < c.num_layers; ++layer) {
            const LayerShardMatrices d = LayerShardMatricesFor(c, plan, layer);
            const CpuLayerWeights& L = shard.layers[layer];
            EXPECT_EQ(d.qkv.rows(), l.q_dim() + 2 * l.kv_dim());
            EXPECT_EQ(d.qkv.cols(), c.hidden_size);
            EXPECT_EQ(d.o.rows(), c.hidden_size);
            EXPECT_EQ(d.o.cols(), l.q_dim());
            EXPECT_EQ(d.gate_up.rows(), 2 * l.intermediate_size);
            EXPECT_EQ(d.down.cols(), l.intermediate_size);
            EXPECT_EQ(Read(*m.store, d.qkv), Bf16Of({&L.wq, &L.wk, &L.wv}));
            EXPECT_EQ(Read(*m.store, d.o), Bf16Of({&L.wo}));
            EXPECT_EQ(Read(*m.store, d.gate_up), Bf16Of({&L.w_gate, &L.w_up}));
            EXPECT_EQ(Read(*m.store, d.down), Bf16Of({&L.w_down}));
          }
        }
      }
    }
  }
}

TEST(CheckpointShards, ShapeErrorsNameTheTensor) {
  ModelConfig c = *RandomModelPreset("tiny-block");
  auto m = testing::LoadCpuModel(testing::MakeModel("shards_error", c, RandomModelOptions{}));
  ModelConfig wrong = c;
  wrong.intermediate_size = 80;
  const LayerShardMatrices d = LayerShardMatricesFor(wrong, *PlanTensorParallel(wrong, 1, 0), 3);
  std::vector<uint16_t> out(static_cast<size_t>(d.gate_up.elements()));
  const absl::Status st = ReadBf16(*m.store, d.gate_up, out.data());
  ASSERT_FALSE(st.ok());
  EXPECT_THAT(std::string(st.message()), HasSubstr("model.layers.3.mlp.gate_proj.weight"));
  EXPECT_THAT(std::string(st.message()), HasSubstr("expected [80, 64]"));
}

TEST(RankWorkers, PersistentThreadsAgreementAndErrors) {
  RankWorkers one(1);
  const std::thread::id caller = std::this_thread::get_id();
  int calls = 0;
  const absl::Status single = one.Run([&](int r) {
    ++calls;
    EXPECT_EQ(std::this_thread::get_id(), caller);
    return one.Agree(true) ? absl::OkStatus() : absl::InternalError("disagreed");
  });
  EXPECT_TRUE(single.ok()) << single;
  EXPECT_EQ(calls, 1);

  const int world = 4;
  RankWorkers w(world);
  std::vector<std::thread::id> first(world), seen(world);
  for (int step = 0; step < 200; ++step) {
    std::vector<int> verdicts(world, -1);
    const absl::Status st = w.Run([&](int r) {
      seen[r] = std::this_thread::get_id();
      const bool a = w.Agree(!(step % 3 == 1 && r == 2));  // rank 2 fails every third step
      const bool b = w.Agree(true);                          // a later round starts clean
      verdicts[r] = a + 2 * b;
      return absl::OkStatus();
    });
    ASSERT_TRUE(st.ok()) << st;
    for (int r = 0; r < world; ++r) EXPECT_EQ(verdicts[r], step % 3 == 1 ? 2 : 3) << step;
    if (step == 0) first = seen;
    EXPECT_EQ(seen, first) << "threads are persistent";
  }
  EXPECT_EQ(first[0], caller) << "rank 0 runs on the caller";
  EXPECT_EQ(std::set<std::thread::id>(first.begin(), first.end()).size(), size_t{world});
  const absl::Status st = w.Run([](int r) {
    return r >= 2 ? absl::InternalError(absl::StrCat("rank ", r)) : absl::OkStatus();
  });
  EXPECT_EQ(st.message(), "rank 2");  // the lowest failing rank
}

}  // namespace
}  // namespace attnres
