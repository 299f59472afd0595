// The CUDA runner's sampling with logit edits on the device (ATTNRES_GPU_EDITS, on by default)
// against its host path: each decode step of four sequences (penalties over their history, a
// logit bias with suppressed ids, a token mask with top-k, and a plain row; all with logprobs,
// and on even steps mix weights for one) runs twice, once as is (on the GPU sampler; odd steps
// replay CUDA graphs when they are on) and once with prompt logprobs of more alternatives than
// the device returns asked for one sequence (none to return at a decode step), which sends the
// step to the host sampler over the same logits. Tokens and mix weights must be identical,
// logprobs within the rounding of the log-sum-exp's order, for 40 steps, with CUDA graphs off
// and on, and logprob rows in one block each (ATTNRES_LOGPROB_CHUNKS=0) and in chunks (the
// default). Prompt logprobs on the device (chunked prefills, more prompt rows than one head
// call takes, beside sampled rows) against a runner with ATTNRES_GPU_EDITS=0 (the host path).
#include <cstdlib>
#include <random>

#include "absl/strings/str_cat.h"
#include "kernels/logit_edits.h"
#include "models/cuda/cuda_runner.h"
#include "tests/gpu/gpu_test_util.h"

namespace attnres {
namespace {

using gpu_testing::PagedBatch;

void ExpectSameLogprob(const TokenLogprob& got, const TokenLogprob& want, const std::string& at) {
  EXPECT_EQ(got.token_id, want.token_id) << at;
  EXPECT_NEAR(got.logprob, want.logprob, 1e-5f * (1.0f + std::fabs(want.logprob))) << at;
  ASSERT_EQ(got.top.size(), want.top.size()) << at;
  for (size_t t = 0; t < want.top.size(); ++t) {
    EXPECT_EQ(got.top[t].first, want.top[t].first) << at << " alt " << t;
    EXPECT_NEAR(got.top[t].second, want.top[t].second,
                1e-5f * (1.0f + std::fabs(want.top[t].second)))
        << at << " alt " << t;
  }
}

TEST(CudaRunnerSampling, EditsAndLogprobsOnTheDeviceMatchTheHostPath) {
  ATTNRES_REQUIRE_GPU();
  for (int mode = 0; mode < 4; ++mode) {
    const bool graphs = mode & 1, chunks = mode & 2;
    RunnerOptions o;
    o.cuda_graphs = graphs;
    o.kv_cache_bytes = 64 << 20;
    o.max_num_seqs = 8;
    o.max_num_batched_tokens = 256;
    setenv("ATTNRES_GPU_EDITS", "1", 1);  // both read at creation
    setenv("ATTNRES_LOGPROB_CHUNKS", chunks ? "1" : "0", 1);
    auto runner = CreateCudaRunner("models/bundled/attnres-tiny-stories", o);
    unsetenv("ATTNRES_GPU_EDITS");
    unsetenv("ATTNRES_LOGPROB_CHUNKS");
    ASSERT_TRUE(runner.ok()) << runner.status();
    const int V = (*runner)->config().vocab_size, ps = (*runner)->kv_page_size(), per_seq = 16;
    SamplingParams penalised, biased, masked, plain;
    penalised.temperature = 0.8f;
    penalised.seed = 3;
    penalised.repetition_penalty = 1.3f;
    penalised.presence_penalty = 0.4f;
    penalised.frequency_penalty = 0.3f;
    biased.temperature = 0.0f;
    biased.logit_bias = {{11, 2.5f}, {262, -100.0f}, {329, 1.5f}};
    masked.temperature = 1.0f;
    masked.top_k = 20;
    masked.seed = 9;
    plain.temperature = 0.0f;
    const std::vector<int32_t> suppressed = {11, 612};
    TokenBitmask mask(V);
    std::mt19937 rng(5);
    for (int32_t id = 0; id < V; ++id) {
      if (rng() % 10 < 3) mask.Set(id);
    }
    const SamplingParams* params[] = {&penalised, &biased, &masked, &plain};
    const int logprobs[] = {5, 0, 20, 3};
    std::vector<std::vector<int32_t>> ids = {
        {0, 410, 1167, 329}, {0, 262, 1110, 11, 612}, {0, 329}, {0, 1110, 410}};
    const std::vector<int> prompt_len = {4, 5, 2, 3};
    std::vector<int> start(ids.size(), 0);
    for (int step = 0; step < 40; ++step) {
      StepBatch b = PagedBatch(ids, start, ps, per_seq);
      for (size_t s = 0; s < ids.size(); ++s) {
        SequenceBatchEntry& e = b.seqs[s];
        e.sample = true;
        e.sampling = params[s];
        e.sample_index = step;
        e.logprobs = logprobs[s];
        e.history = &ids[s];
        e.prompt_len = prompt_len[s];
      }
      b.seqs[1].suppressed = step % 2 == 0 ? &suppressed : nullptr;
      b.seqs[2].allowed = &mask;
      b.seqs[0].return_mix_weights = step % 2 == 0;
      auto device = (*runner)->Execute(b);
      ASSERT_TRUE(device.ok()) << device.status();
      // More alternatives than the device returns: the whole step on the host sampler.
      b.seqs[3].prompt_logprobs = kernels::kMaxTopLogprobs + 1;
      auto host = (*runner)->Execute(b);
      ASSERT_TRUE(host.ok()) << host.status();
      // None at a decode step (the first step, the prompts' prefill, has them).
      if (step > 0) {
        EXPECT_TRUE(host->seqs[3].prompt_logprobs.empty()) << "step " << step;
      }
      EXPECT_EQ(device->seqs[0].mix_weights, host->seqs[0].mix_weights) << "step " << step;
      EXPECT_EQ(device->seqs[0].mix_weights.empty(), step % 2 != 0) << "step " << step;
      for (size_t s = 0; s < ids.size(); ++s) {
        const std::string at = absl::StrCat(graphs ? "graphs" : "eager", chunks ? " chunked" : "",
                                            " step ", step, " seq ", s);
        ASSERT_EQ(device->seqs[s].token_id, host->seqs[s].token_id) << at;
        ExpectSameLogprob(device->seqs[s].logprob, host->seqs[s].logprob, at);
        if (s == 2) {
          EXPECT_TRUE(mask.Has(device->seqs[s].token_id)) << at;
        }
        start[s] = static_cast<int>(ids[s].size());
        ids[s].push_back(device->seqs[s].token_id);
      }
    }
  }
}

// Three sequences over two steps: a 40-token prompt with 5 alternatives per prompt token in two
// chunks (the first ends with the next chunk's token to predict), then sampled; a 7-token
// prompt with none, sampled at the first step; a 9-token prompt without prompt logprobs, sampled
// with 3 logprob alternatives. 30 prompt rows at the first step: head calls of 24 rows and 6
// (prompt chunks take the sampler's whole head buffer, 3 x max_num_seqs rows).
TEST(CudaRunnerSampling, PromptLogprobsOnTheDeviceMatchTheHostPath) {
  ATTNRES_REQUIRE_GPU();
  std::unique_ptr<ModelRunner> runners[2];
  for (int device = 0; device < 2; ++device) {
    RunnerOptions o;
    o.kv_cache_bytes = 64 << 20;
    o.max_num_seqs = 8;
    o.max_num_batched_tokens = 256;
    setenv("ATTNRES_GPU_EDITS", device ? "1" : "0", 1);
    auto runner = CreateCudaRunner("models/bundled/attnres-tiny-stories", o);
    unsetenv("ATTNRES_GPU_EDITS");
    ASSERT_TRUE(runner.ok()) << runner.status();
    runners[device] = std::move(*runner);
  }
  const int ps = runners[0]->kv_page_size(), per_seq = 16;
  std::mt19937 rng(12);
  std::vector<std::vector<int32_t>> prompts(3);
  for (auto [s, len] : {std::pair{0, 40}, {1, 7}, {2, 9}}) {
    prompts[s].push_back(0);
    for (int i = 1; i < len; ++i) prompts[s].push_back(static_cast<int32_t>(rng() % 2000));
  }
  SamplingParams greedy, warm;
  greedy.temperature = 0.0f;
  warm.temperature = 0.9f;
  warm.seed = 4;
  StepOutput outputs[2][2];  // [host, device][step]
  for (int device = 0; device < 2; ++device) {
    // Step 0: seq 0's first 24 tokens, seqs 1 and 2 whole; step 1: seq 0's other 16.
    std::vector<std::vector<int32_t>> ids = {
        {prompts[0].begin(), prompts[0].begin() + 24}, prompts[1], prompts[2]};
    std::vector<int> start = {0, 0, 0};
    for (int step = 0; step < 2; ++step) {
      if (step == 1) {
        ids = {prompts[0], {}, {}};
        start = {24, 0, 0};
      }
      std::vector<std::vector<int32_t>> batch_ids;
      std::vector<int> batch_start;
      for (int s = 0; s < 3; ++s) {
        if (ids[s].empty()) continue;
        batch_ids.push_back(ids[s]);
        batch_start.push_back(start[s]);
      }
      StepBatch b = PagedBatch(batch_ids, batch_start, ps, per_seq);
      SequenceBatchEntry& first = b.seqs[0];
      first.prompt_logprobs = 5;
      first.sample = step == 1;
      first.sampling = &warm;
      first.sample_index = 0;
      if (step == 0) {
        first.next_prompt_token = prompts[0][24];
        b.seqs[1].prompt_logprobs = 0;
        b.seqs[1].sample = true;
        b.seqs[1].sampling = &greedy;
        b.seqs[2].sample = true;
        b.seqs[2].sampling = &warm;
        b.seqs[2].logprobs = 3;
      }
      auto out = runners[device]->Execute(b);
      ASSERT_TRUE(out.ok()) << out.status();
      outputs[device][step] = std::move(*out);
    }
  }
  const std::vector<size_t> expected[2] = {{24, 6, 0}, {15}};  // prompt logprobs per sequence
  for (int step = 0; step < 2; ++step) {
    const StepOutput& host = outputs[0][step];
    const StepOutput& device = outputs[1][step];
    ASSERT_EQ(device.seqs.size(), host.seqs.size());
    for (size_t s = 0; s < host.seqs.size(); ++s) {
      const std::string at = absl::StrCat("step ", step, " seq ", s);
      EXPECT_EQ(device.seqs[s].token_id, host.seqs[s].token_id) << at;
      ExpectSameLogprob(device.seqs[s].logprob, host.seqs[s].logprob, at);
      ASSERT_EQ(host.seqs[s].prompt_logprobs.size(), expected[step][s]) << at;
      ASSERT_EQ(device.seqs[s].prompt_logprobs.size(), expected[step][s]) << at;
      for (size_t k = 0; k < expected[step][s]; ++k) {
        const std::string where = absl::StrCat(at, " prompt token ", k);
        ExpectSameLogprob(device.seqs[s].prompt_logprobs[k], host.seqs[s].prompt_logprobs[k],
                          where);
        EXPECT_EQ(device.seqs[s].prompt_logprobs[k].top.size(), s == 0 ? 5u : 0u) << where;
      }
    }
  }
  // The tokens predicted are the prompt's.
  EXPECT_EQ(outputs[1][0].seqs[0].prompt_logprobs[23].token_id, prompts[0][24]);
  EXPECT_EQ(outputs[1][1].seqs[0].prompt_logprobs[14].token_id, prompts[0][39]);
}

}  // namespace
}  // namespace attnres
