// Scheduler and BlockManager policy, without a model: admission, token budget, chunked prefill,
// page accounting, preemption order and recompute.
#include "gtest/gtest.h"
#include "models/tools/random_model.h"
#include "server/engine/scheduler.h"

namespace attnres {
namespace {

class SchedulerTest : public ::testing::Test {
 protected:
  SchedulerTest() {
    auto tok = Tokenizer::FromJsonText(ByteLevelTokenizerJson(), "byte-level");
    tokenizer_ = std::move(*tok);
  }
  std::unique_ptr<Sequence> Seq(int prompt_len, int max_tokens = 8) {
    GenerationRequest r;
    r.prompt_ids.assign(prompt_len, 65);
    r.stop.max_tokens = max_tokens;
    return std::make_unique<Sequence>(std::move(r), nullptr, std::make_shared<RequestHandle>(),
                                      *tokenizer_);
  }
  std::unique_ptr<Tokenizer> tokenizer_;
};

TEST_F(SchedulerTest, ChunkedPrefillUnderTokenBudget) {
  EngineConfig cfg;
  cfg.max_num_batched_tokens = 10;
  cfg.max_num_seqs = 4;
  BlockManager blocks(100, 4);
  Scheduler s(cfg, &blocks);
  auto a = Seq(25);
  Sequence* pa = a.get();
  s.AddWaiting(std::move(a));
  int steps = 0;
  while (pa->in_prefill()) {
    ScheduleResult r = s.Schedule();
    ASSERT_EQ(r.seqs.size(), 1u);
    EXPECT_LE(r.num_tokens, 10);
    EXPECT_EQ(r.seqs[0].sample, pa->num_computed + r.seqs[0].num_tokens == 25);
    pa->num_computed += r.seqs[0].num_tokens;
    ++steps;
  }
  EXPECT_EQ(steps, 3);  // 10 + 10 + 5
  EXPECT_EQ(blocks.num_used(), 7);  // ceil(25 / 4)
}

TEST_F(SchedulerTest, DecodesFirstThenAdmitsInOrderUpToSeqCap) {
  EngineConfig cfg;
  cfg.max_num_batched_tokens = 100;
  cfg.max_num_seqs = 2;
  BlockManager blocks(100, 4);
  Scheduler s(cfg, &blocks);
  std::vector<Sequence*> seqs;
  for (int i = 0; i < 3; ++i) {
    auto q = Seq(5 + i);
    seqs.push_back(q.get());
    s.AddWaiting(std::move(q));
  }
  ScheduleResult r = s.Schedule();
  ASSERT_EQ(r.seqs.size(), 2u);
  EXPECT_EQ(r.seqs[0].seq, seqs[0]);
  EXPECT_EQ(r.seqs[1].seq, seqs[1]);
  EXPECT_EQ(s.num_waiting(), 1);
  for (auto& x : r.seqs) {
    x.seq->num_computed += x.num_tokens;
    x.seq->tokens.push_back(1);  // sampled
  }
  r = s.Schedule();
  ASSERT_EQ(r.seqs.size(), 2u);
  EXPECT_EQ(r.seqs[0].num_tokens, 1);
  // Finishing one frees a slot for the third.
  for (auto& x : r.seqs) x.seq->num_computed += x.num_tokens;
  s.Remove(seqs[0]);
  r = s.Schedule();
  ASSERT_EQ(r.seqs.size(), 2u);
  EXPECT_EQ(r.seqs[1].seq, seqs[2]);
}

TEST_F(SchedulerTest, PreemptsNewestWhenPagesRunOut) {
  EngineConfig cfg;
  cfg.max_num_batched_tokens = 100;
  BlockManager blocks(4, 4);  // 16 token slots in all
  Scheduler s(cfg, &blocks);
  auto a = Seq(8), b = Seq(8);
  Sequence *pa = a.get(), *pb = b.get();
  s.AddWaiting(std::move(a));
  s.AddWaiting(std::move(b));
  ScheduleResult r = s.Schedule();
  ASSERT_EQ(r.seqs.size(), 2u);
  EXPECT_EQ(blocks.num_free(), 0);
  for (auto& x : r.seqs) {
    x.seq->num_computed += x.num_tokens;
    x.seq->tokens.push_back(7);
  }
  // Both need a fifth page for position 8: the newest (b) is preempted, a continues.
  r = s.Schedule();
  ASSERT_EQ(r.preempted.size(), 1u);
  EXPECT_EQ(r.preempted[0], pb);
  EXPECT_EQ(pb->num_computed, 0);
  EXPECT_EQ(pb->num_preemptions, 1);
  ASSERT_EQ(r.seqs.size(), 1u);
  EXPECT_EQ(r.seqs[0].seq, pa);
  pa->num_computed += 1;
  // Once a finishes, b is recomputed from prompt + generated tokens (9 tokens) and samples.
  s.Remove(pa);
  r = s.Schedule();
  ASSERT_EQ(r.seqs.size(), 1u);
  EXPECT_EQ(r.seqs[0].seq, pb);
  EXPECT_EQ(r.seqs[0].num_tokens, 9);
  EXPECT_TRUE(r.seqs[0].sample);
}

TEST_F(SchedulerTest, StepBatchPageTablesAreCsr) {
  EngineConfig cfg;
  BlockManager blocks(10, 4);
  Scheduler s(cfg, &blocks);
  s.AddWaiting(Seq(6));
  s.AddWaiting(Seq(3));
  ScheduleResult r = s.Schedule();
  StepBatch b = BuildStepBatch(r, 4);
  EXPECT_EQ(b.query_indptr, (std::vector<int32_t>{0, 6, 9}));
  EXPECT_EQ(b.kv_page_indptr, (std::vector<int32_t>{0, 2, 3}));
  EXPECT_EQ(b.kv_last_page_len, (std::vector<int32_t>{2, 3}));
  EXPECT_EQ(b.positions[6], 0);
  EXPECT_TRUE(b.seqs[0].sample && b.seqs[1].sample);
}

}  // namespace
}  // namespace attnres
