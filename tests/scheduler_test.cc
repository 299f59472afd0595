// Scheduler and BlockManager policy, without a model (a fake executor appends tokens):
// admission, token budget, chunked prefill, page accounting, preemption order and recompute,
// prefix sharing (also while the first request is still prefilling), cancellation at every
// stage with shared pages.
#include "server/engine/scheduler.h"

#include "gtest/gtest.h"
#include "models/tools/random_model.h"

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
  // A prompt of distinct tokens first, first + 1, ...
  std::unique_ptr<Sequence> SeqFrom(int prompt_len, int32_t first, int max_tokens = 8) {
    auto seq = Seq(prompt_len, max_tokens);
    for (int i = 0; i < prompt_len; ++i) seq->tokens[i] = first + i;
    seq->request.prompt_ids = seq->tokens;
    return seq;
  }
  std::unique_ptr<Tokenizer> tokenizer_;
};

// The fake executor: computes the scheduled tokens and samples a token for sampling entries.
void FakeExecute(Scheduler& s, const ScheduleResult& r) {
  for (const ScheduledSeq& ss : r.seqs) {
    ss.seq->num_computed += ss.num_tokens;
    s.OnComputed(ss.seq);
    if (ss.sample) ss.seq->tokens.push_back(200 + ss.seq->num_generated());
  }
}

const ScheduledSeq* Find(const ScheduleResult& r, const Sequence* seq) {
  for (const ScheduledSeq& ss : r.seqs) {
    if (ss.seq == seq) return &ss;
  }
  return nullptr;
}

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
  EXPECT_EQ(steps, 3);              // 10 + 10 + 5
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

TEST_F(SchedulerTest, IdenticalPromptSharesFullPagesAndRecomputesTheRest) {
  EngineConfig cfg;
  BlockManager blocks(32, 4);
  Scheduler s(cfg, &blocks);
  auto a = SeqFrom(20, 0), b = SeqFrom(20, 0);
  Sequence *pa = a.get(), *pb = b.get();
  s.AddWaiting(std::move(a));
  FakeExecute(s, s.Schedule());
  EXPECT_EQ(blocks.num_cached(), 5);
  s.AddWaiting(std::move(b));
  ScheduleResult r = s.Schedule();
  const ScheduledSeq* sb = Find(r, pb);
  ASSERT_NE(sb, nullptr);
  // 16 of 20 tokens from the cache (a fully cached prompt still computes its last page).
  EXPECT_EQ(pb->num_computed, 16);
  EXPECT_EQ(pb->num_cached_tokens, 16);
  EXPECT_EQ(sb->num_tokens, 4);
  EXPECT_TRUE(sb->sample);
  EXPECT_EQ(r.prefix_query_tokens, 20);
  EXPECT_EQ(r.prefix_hit_tokens, 16);
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(pb->pages[i], pa->pages[i]);
    EXPECT_EQ(blocks.ref_count(pa->pages[i]), 2);
  }
  EXPECT_NE(pb->pages[4], pa->pages[4]);  // b writes its own last prompt page
  const StepBatch batch = BuildStepBatch(r, 4);
  EXPECT_EQ(batch.seqs[1].start_pos, 16);  // b's entry: 4 new tokens after 16 cached
  FakeExecute(s, r);
  EXPECT_EQ(pb->num_generated(), 1);
}

TEST_F(SchedulerTest, LateArrivalCatchesUpOnPagesPublishedDuringChunkedPrefill) {
  EngineConfig cfg;
  cfg.max_num_batched_tokens = 12;
  BlockManager blocks(32, 4);
  Scheduler s(cfg, &blocks);
  auto a = SeqFrom(24, 0), b = SeqFrom(24, 0);
  Sequence* pb = b.get();
  s.AddWaiting(std::move(a));
  FakeExecute(s, s.Schedule());  // a: 12 of 24 prompt tokens
  EXPECT_EQ(blocks.num_cached(), 3);
  s.AddWaiting(std::move(b));
  ScheduleResult r = s.Schedule();  // a's second chunk takes the whole budget
  EXPECT_EQ(Find(r, pb), nullptr);
  FakeExecute(s, r);
  r = s.Schedule();  // a decodes 1, b is admitted with 20 cached tokens and computes 4
  const ScheduledSeq* sb = Find(r, pb);
  ASSERT_NE(sb, nullptr);
  EXPECT_EQ(pb->num_cached_tokens, 20);
  EXPECT_EQ(sb->num_tokens, 4);
  EXPECT_EQ(r.num_tokens, 5);
}

TEST_F(SchedulerTest, CancellationAtEveryStageFreesPagesButNotSharedOnes) {
  EngineConfig cfg;
  cfg.max_num_batched_tokens = 8;
  cfg.max_num_seqs = 3;
  BlockManager blocks(32, 4);
  Scheduler s(cfg, &blocks);
  auto decoding = SeqFrom(8, 0), sharer = SeqFrom(12, 0), prefilling = SeqFrom(30, 50);
  auto waiting = SeqFrom(8, 90);
  Sequence *pd = decoding.get(), *ps = sharer.get(), *pp = prefilling.get();
  Sequence* pw = waiting.get();
  s.AddWaiting(std::move(decoding));
  FakeExecute(s, s.Schedule());  // decoding: prompt done, 2 pages published
  s.AddWaiting(std::move(sharer));
  s.AddWaiting(std::move(prefilling));
  s.AddWaiting(std::move(waiting));
  FakeExecute(s, s.Schedule());  // decode 1 + sharer (8 cached, 4 new) + prefilling chunk of 3
  ASSERT_EQ(ps->num_cached_tokens, 8);
  ASSERT_TRUE(pp->in_prefill());
  ASSERT_GT(pp->num_computed, 0);
  ASSERT_EQ(s.num_waiting(), 1);  // the seq cap holds the fourth back
  const int32_t shared = pd->pages[0];
  ASSERT_EQ(blocks.ref_count(shared), 2);

  s.Remove(pw);  // waiting: holds nothing
  s.Remove(pd);  // decoding: its shared pages survive for the sharer
  EXPECT_EQ(blocks.ref_count(shared), 1);
  EXPECT_EQ(ps->pages[0], shared);
  s.Remove(pp);  // mid-prefill
  ScheduleResult r = s.Schedule();
  ASSERT_EQ(r.seqs.size(), 1u);
  EXPECT_EQ(r.seqs[0].seq, ps);
  FakeExecute(s, r);
  s.Remove(ps);
  EXPECT_TRUE(s.idle());
  EXPECT_EQ(blocks.num_used(), 0);
  EXPECT_EQ(blocks.num_free(), 32);
}

TEST_F(SchedulerTest, PreemptedSequenceRecomputesFromItsCachedPrompt) {
  EngineConfig cfg;
  BlockManager blocks(6, 4);
  Scheduler s(cfg, &blocks);
  auto a = SeqFrom(8, 0, 100), b = SeqFrom(8, 50, 100);
  Sequence *pa = a.get(), *pb = b.get();
  s.AddWaiting(std::move(a));
  s.AddWaiting(std::move(b));
  std::vector<int32_t> b_tokens;
  while (true) {
    ScheduleResult r = s.Schedule();
    if (!r.preempted.empty()) {
      ASSERT_EQ(r.preempted[0], pb);
      b_tokens = pb->tokens;
      FakeExecute(s, r);
      break;
    }
    FakeExecute(s, r);
  }
  EXPECT_EQ(pb->num_computed, 0);
  EXPECT_EQ(pb->num_preemptions, 1);
  s.Remove(pa);
  ScheduleResult r = s.Schedule();
  ASSERT_EQ(r.seqs.size(), 1u);
  EXPECT_EQ(r.seqs[0].seq, pb);
  EXPECT_EQ(r.prefix_hit_tokens, 8);  // its prompt pages were still cached
  EXPECT_EQ(r.seqs[0].num_tokens, static_cast<int>(b_tokens.size()) - 8);
  EXPECT_TRUE(r.seqs[0].sample);
  EXPECT_EQ(pb->num_cached_tokens, 0);  // usage reports the first admission's hits
}

TEST_F(SchedulerTest, PromptLogprobsAndDisabledCacheBypassTheCache) {
  for (bool enabled : {true, false}) {
    EngineConfig cfg;
    BlockManager blocks(32, 4, enabled);
    Scheduler s(cfg, &blocks);
    s.AddWaiting(SeqFrom(12, 0));
    FakeExecute(s, s.Schedule());
    auto lp = SeqFrom(12, 0);
    lp->request.output.prompt_logprobs = 0;
    s.AddWaiting(std::move(lp));
    s.AddWaiting(SeqFrom(12, 0));
    ScheduleResult r = s.Schedule();
    EXPECT_EQ(r.prefix_hit_tokens, enabled ? 8 : 0);  // only the third request hits
  }
}

}  // namespace
}  // namespace attnres
