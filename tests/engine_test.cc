// The engine end to end on the real CPU runner: determinism, continuous batching equal to one-at-
// a-time runs (also under preemption), prefix cache hits, stop criteria and finish reasons,
// cancellation, deadlines, the queue bound, and what the observer sees.
#include "server/engine/engine.h"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <mutex>
#include <regex>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "models/model_runner.h"
#include "nlohmann/json.hpp"
#include "server/structured/json_schema_grammar.h"
#include "server/structured/token_constraint.h"
#include "tests/test_models.h"

namespace attnres {
namespace {

using ::testing::HasSubstr;

class CollectingSink : public RequestSink {
 public:
  void OnDelta(GenerationDelta d) override {
    std::lock_guard<std::mutex> lock(mu_);
    text_ += d.text;
    tokens_.insert(tokens_.end(), d.token_ids.begin(), d.token_ids.end());
    prompt_logprobs_.insert(prompt_logprobs_.end(), d.prompt_logprobs.begin(),
                            d.prompt_logprobs.end());
    ++num_deltas_;
    if (d.finished) {
      final_ = d;
      done_ = true;
      cv_.notify_all();
    }
  }
  GenerationDelta Wait() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return done_; });
    return final_;
  }
  std::string text() { std::lock_guard<std::mutex> l(mu_); return text_; }
  std::vector<int32_t> tokens() { std::lock_guard<std::mutex> l(mu_); return tokens_; }
  int num_deltas() { std::lock_guard<std::mutex> l(mu_); return num_deltas_; }
  std::vector<TokenLogprob> prompt_logprobs() {
    std::lock_guard<std::mutex> l(mu_);
    return prompt_logprobs_;
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::string text_;
  std::vector<int32_t> tokens_;
  std::vector<TokenLogprob> prompt_logprobs_;
  int num_deltas_ = 0;
  bool done_ = false;
  GenerationDelta final_;
};

struct Result {
  std::string text;
  std::vector<int32_t> tokens;
  FinishReason reason;
  std::string stop_reason;
  Usage usage;
};

// Records what the engine reports (thread-safe, as the interface requires).
class RecordingObserver : public EngineObserver {
 public:
  void OnStep(const StepStats& s) override {
    std::lock_guard<std::mutex> l(mu);
    ++steps;
    prefix_hits += s.prefix_hit_tokens;
    generated += s.num_generated_tokens;
  }
  void OnState(const EngineState& s) override {
    std::lock_guard<std::mutex> l(mu);
    last_state = s;
  }
  void OnFirstToken(double) override { std::lock_guard<std::mutex> l(mu); ++first_tokens; }
  void OnRequestFinished(const RequestStats& r) override {
    std::lock_guard<std::mutex> l(mu);
    finished.push_back(r);
  }
  void OnRejected(absl::StatusCode code) override {
    std::lock_guard<std::mutex> l(mu);
    rejected.push_back(code);
  }
  std::mutex mu;
  int steps = 0, prefix_hits = 0, generated = 0, first_tokens = 0;
  EngineState last_state;
  std::vector<RequestStats> finished;
  std::vector<absl::StatusCode> rejected;
};

class EngineTest : public ::testing::Test {
 protected:
  void SetUpEngine(int64_t kv_bytes = 0, int max_seqs = 64,
                   const std::function<void(EngineConfig&)>& tweak = nullptr,
                   std::shared_ptr<EngineObserver> observer = nullptr) {
    static const std::filesystem::path dir = [] {
      RandomModelOptions o;
      o.seed = 3;
      return testing::MakeModel("engine_model", *RandomModelPreset("tiny-block"), o);
    }();
    auto tok = Tokenizer::FromFile(dir / "tokenizer.json");
    ASSERT_TRUE(tok.ok()) << tok.status();
    tokenizer_ = std::move(*tok);
    RunnerOptions ro;
    ro.kv_page_size = 4;
    ro.kv_cache_bytes = kv_bytes;
    auto runner = CreateModelRunner(dir, ro);
    ASSERT_TRUE(runner.ok()) << runner.status();
    EngineConfig ec;
    ec.max_num_seqs = max_seqs;
    ec.max_num_batched_tokens = 64;
    if (tweak) tweak(ec);
    auto engine = Engine::Create(ec, std::move(*runner), tokenizer_.get(), std::move(observer));
    ASSERT_TRUE(engine.ok()) << engine.status();
    engine_ = std::move(*engine);
  }

  GenerationRequest Request(const std::string& prompt, int max_tokens, float temperature = 0,
                            uint64_t seed = 0) {
    GenerationRequest r;
    r.request_id = prompt.substr(0, 8);
    r.prompt_ids = tokenizer_->Encode(prompt, true);
    r.stop.max_tokens = max_tokens;
    r.stop.ignore_eos = true;
    r.sampling.temperature = temperature;
    r.sampling.seed = seed;
    return r;
  }

  Result Run(GenerationRequest r) {
    auto sink = std::make_shared<CollectingSink>();
    auto h = engine_->Submit(std::move(r), sink);
    EXPECT_TRUE(h.ok()) << h.status();
    GenerationDelta d = sink->Wait();
    return {sink->text(), sink->tokens(), d.finish_reason, d.stop_reason, d.usage};
  }

  // Submits every request at once (one batch where they fit); the results in request order.
  std::vector<Result> RunTogether(const std::vector<GenerationRequest>& reqs) {
    std::vector<std::shared_ptr<CollectingSink>> sinks;
    for (const GenerationRequest& r : reqs) {
      sinks.push_back(std::make_shared<CollectingSink>());
      auto h = engine_->Submit(r, sinks.back());
      EXPECT_TRUE(h.ok()) << h.status();
      if (!h.ok()) {  // refused: nothing to wait for
        GenerationDelta refused;
        refused.finished = true;
        sinks.back()->OnDelta(std::move(refused));
      }
    }
    std::vector<Result> out;
    for (const auto& sink : sinks) {
      GenerationDelta d = sink->Wait();
      out.push_back({sink->text(), sink->tokens(), d.finish_reason, d.stop_reason, d.usage});
    }
    return out;
  }

  std::unique_ptr<Tokenizer> tokenizer_;
  std::unique_ptr<Engine> engine_;
};

TEST_F(EngineTest, GreedyIsDeterministicAndTextIsTheDecodedTokens) {
  SetUpEngine();
  Result a = Run(Request("Once upon a time", 24));
  Result b = Run(Request("Once upon a time", 24));
  EXPECT_EQ(a.tokens, b.tokens);
  EXPECT_EQ(a.tokens.size(), 24u);
  EXPECT_EQ(a.reason, FinishReason::kLength);
  EXPECT_EQ(a.text, tokenizer_->Decode(a.tokens, true));
}

TEST_F(EngineTest, ConcurrentBatchesEqualSoloRunsEvenWithPreemption) {
  for (int64_t kv_bytes : {int64_t{0}, int64_t{40} * 2 * 5 * 4 * 32 * 4}) {
    // Second pass: a pool of 40 pages of 4 tokens (5 layers, kv_dim 32, fp32) cannot hold all
    // 12 sequences at once, so the newest are preempted and recomputed.
    SetUpEngine(kv_bytes);
    std::vector<GenerationRequest> reqs;
    for (int i = 0; i < 12; ++i) {
      reqs.push_back(Request(std::string(1 + i * 3, 'a' + i) + " story", 10 + i * 2,
                             i % 2 ? 0.8f : 0.0f, 100 + i));
      if (i % 3 == 0) reqs.back().sampling.repetition_penalty = 1.3f;
      if (i % 4 == 1) reqs.back().sampling.logit_bias = {{5, 2.0f}, {9, -3.0f}};
    }
    std::vector<Result> solo;
    for (const auto& r : reqs) solo.push_back(Run(r));
    const std::vector<Result> together = RunTogether(reqs);
    for (size_t i = 0; i < reqs.size(); ++i) {
      EXPECT_EQ(together[i].tokens, solo[i].tokens) << "request " << i << " kv=" << kv_bytes;
      EXPECT_EQ(together[i].text, solo[i].text) << "request " << i;
    }
  }
}

TEST_F(EngineTest, SeedsReproduceAndDiffer) {
  SetUpEngine();
  Result a = Run(Request("The dog", 20, 1.0f, 7));
  Result b = Run(Request("The dog", 20, 1.0f, 7));
  Result c = Run(Request("The dog", 20, 1.0f, 8));
  EXPECT_EQ(a.tokens, b.tokens);
  EXPECT_NE(a.tokens, c.tokens);
}

TEST_F(EngineTest, StopStringCutsTextAndStopTokenEnds) {
  SetUpEngine();
  Result full = Run(Request("Hello", 30));
  // Use a piece of the greedy text as a stop string.
  ASSERT_GE(full.text.size(), 12u);
  const std::string stop = full.text.substr(6, 3);
  GenerationRequest r = Request("Hello", 30);
  r.stop.stop_strings = {stop};
  Result cut = Run(r);
  EXPECT_EQ(cut.reason, FinishReason::kStop);
  EXPECT_EQ(cut.stop_reason, stop);
  EXPECT_EQ(cut.text, full.text.substr(0, full.text.find(stop)));

  GenerationRequest t = Request("Hello", 30);
  t.stop.stop_token_ids = {full.tokens[4]};
  Result tok = Run(t);
  EXPECT_EQ(tok.reason, FinishReason::kStop);
  const size_t first = std::find(full.tokens.begin(), full.tokens.end(), full.tokens[4]) -
                       full.tokens.begin();
  EXPECT_EQ(tok.tokens.size(), first + 1);
}

TEST_F(EngineTest, CancelEndsARequestAndOthersContinue) {
  SetUpEngine();
  auto sink = std::make_shared<CollectingSink>();
  auto h = engine_->Submit(Request("long", 400), sink);
  ASSERT_TRUE(h.ok());
  while (sink->num_deltas() < 3) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  (*h)->Cancel();
  GenerationDelta d = sink->Wait();
  EXPECT_EQ(d.finish_reason, FinishReason::kCancelled);
  EXPECT_LT(sink->tokens().size(), 400u);
  EXPECT_EQ(Run(Request("after", 5)).tokens.size(), 5u);
}

TEST_F(EngineTest, DeadlineEndsWithDeadlineExceeded) {
  SetUpEngine();
  GenerationRequest r = Request("slow", 400);
  r.deadline = absl::Now() + absl::Milliseconds(30);
  auto sink = std::make_shared<CollectingSink>();
  ASSERT_TRUE(engine_->Submit(r, sink).ok());
  GenerationDelta d = sink->Wait();
  EXPECT_EQ(d.finish_reason, FinishReason::kCancelled);
  EXPECT_EQ(d.status.code(), absl::StatusCode::kDeadlineExceeded);
}

TEST_F(EngineTest, RequestsThatCanNeverFitAreInvalid) {
  SetUpEngine(int64_t{10} * 2 * 5 * 4 * 32 * 4);  // 10 pages of 4 tokens
  auto sink = std::make_shared<CollectingSink>();
  auto r = engine_->Submit(Request("x", 100), sink);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("KV pages"));
  GenerationRequest big = Request("x", 10);
  big.prompt_ids.assign(600, 1);
  r = engine_->Submit(big, sink);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("max_model_len (512)"));
  GenerationRequest bad = Request("x", 10);
  bad.prompt_ids[0] = 300;
  r = engine_->Submit(bad, sink);
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("prompt.token_ids[0]"));
}

TEST_F(EngineTest, MixWeightsAndLogprobsPerToken) {
  SetUpEngine();
  GenerationRequest r = Request("mix", 3);
  r.output.return_mix_weights = true;
  r.output.logprobs = 2;
  r.output.prompt_logprobs = 1;
  auto sink = std::make_shared<CollectingSink>();
  std::vector<GenerationDelta> deltas;
  struct Keep : RequestSink {
    std::vector<GenerationDelta>* out;
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    void OnDelta(GenerationDelta d) override {
      std::lock_guard<std::mutex> l(mu);
      done = d.finished;
      out->push_back(std::move(d));
      cv.notify_all();
    }
  };
  auto keep = std::make_shared<Keep>();
  keep->out = &deltas;
  const int prompt_len = static_cast<int>(r.prompt_ids.size());
  ASSERT_TRUE(engine_->Submit(r, keep).ok());
  {
    std::unique_lock<std::mutex> l(keep->mu);
    keep->cv.wait(l, [&] { return keep->done; });
  }
  int tokens = 0, mixes = 0, logprobs = 0, prompt_lp = 0;
  for (const auto& d : deltas) {
    tokens += d.token_ids.size();
    mixes += d.mix_weights.size();
    logprobs += d.logprobs.size();
    prompt_lp += d.prompt_logprobs.size();
    for (const auto& w : d.mix_weights) {
      EXPECT_EQ(static_cast<int>(w.size()), MixLayout::For(engine_->model_config()).total_weights());
    }
    for (const auto& lp : d.logprobs) {
      EXPECT_LE(lp.logprob, 0.0f);
      EXPECT_EQ(lp.top.size(), 2u);
    }
  }
  EXPECT_EQ(tokens, 3);
  EXPECT_EQ(mixes, 3);
  EXPECT_EQ(logprobs, 3);
  EXPECT_EQ(prompt_lp, prompt_len - 1);
}

// max_tokens 0 scores a prompt: its prompt logprobs, no token, finish kLength; beside a request
// that also generates, over several prefill chunks (the step budget is 64 tokens).
TEST_F(EngineTest, MaxTokensZeroScoresThePromptOnly) {
  SetUpEngine();
  std::string text;
  for (int i = 0; i < 40; ++i) text += "word" + std::to_string(i) + " ";
  GenerationRequest generating = Request(text, 3);
  generating.output.prompt_logprobs = 2;
  GenerationRequest scoring = generating;
  scoring.stop.max_tokens = 0;
  const int prompt_len = static_cast<int>(scoring.prompt_ids.size());
  ASSERT_GT(prompt_len, 64);
  auto a = std::make_shared<CollectingSink>(), b = std::make_shared<CollectingSink>();
  ASSERT_TRUE(engine_->Submit(generating, a).ok());
  ASSERT_TRUE(engine_->Submit(scoring, b).ok());
  a->Wait();
  const GenerationDelta last = b->Wait();
  EXPECT_EQ(last.finish_reason, FinishReason::kLength);
  EXPECT_TRUE(last.status.ok());
  EXPECT_TRUE(b->tokens().empty());
  EXPECT_EQ(last.usage.completion_tokens, 0);
  EXPECT_EQ(last.usage.prompt_tokens, prompt_len);
  const std::vector<TokenLogprob> scored = b->prompt_logprobs(), reference = a->prompt_logprobs();
  ASSERT_EQ(static_cast<int>(scored.size()), prompt_len - 1);
  ASSERT_EQ(scored.size(), reference.size());
  for (size_t k = 0; k < scored.size(); ++k) {
    EXPECT_EQ(scored[k].token_id, scoring.prompt_ids[k + 1]);
    EXPECT_EQ(scored[k].logprob, reference[k].logprob) << k;
    EXPECT_EQ(scored[k].top, reference[k].top) << k;
  }
  EXPECT_EQ(a->tokens().size(), 3u);
  // The prompt may fill the context when nothing is generated.
  GenerationRequest full = Request("x", 0);
  full.prompt_ids.assign(512, 1);
  auto c = std::make_shared<CollectingSink>();
  ASSERT_TRUE(engine_->Submit(full, c).ok());
  EXPECT_EQ(c->Wait().finish_reason, FinishReason::kLength);
}

TEST_F(EngineTest, PrefixCacheHitsAreReportedAndLeaveOutputsUnchanged) {
  const std::string prompt = "Once upon a time there was a little dog who liked to run";
  std::vector<Result> runs;
  for (bool enabled : {false, true}) {
    auto observer = std::make_shared<RecordingObserver>();
    SetUpEngine(0, 64, [&](EngineConfig& c) { c.enable_prefix_caching = enabled; }, observer);
    const int prompt_len = static_cast<int>(Request(prompt, 1).prompt_ids.size());
    ASSERT_GT(prompt_len, 9);
    Result first = Run(Request(prompt, 12));
    Result second = Run(Request(prompt, 12));
    EXPECT_EQ(first.usage.cached_prompt_tokens, 0);
    // Page size 4: every full page but the one holding the last prompt token.
    EXPECT_EQ(second.usage.cached_prompt_tokens, enabled ? (prompt_len - 1) / 4 * 4 : 0);
    EXPECT_EQ(first.tokens, second.tokens);
    runs.push_back(second);
    engine_->Shutdown();
    std::lock_guard<std::mutex> l(observer->mu);
    EXPECT_EQ(observer->prefix_hits, second.usage.cached_prompt_tokens);
    EXPECT_EQ(observer->last_state.kv_pages_used, 0);
    EXPECT_EQ(observer->last_state.kv_pages_cached > 0, enabled);
    ASSERT_EQ(observer->finished.size(), 2u);
    EXPECT_EQ(observer->finished[1].cached_prompt_tokens, second.usage.cached_prompt_tokens);
    EXPECT_EQ(observer->first_tokens, 2);
    EXPECT_EQ(observer->generated, 24);
  }
  EXPECT_EQ(runs[0].tokens, runs[1].tokens);
}

TEST_F(EngineTest, GenerationConfigEosIdsEndLikeEosWithEmptyStopReason) {
  SetUpEngine();
  const Result full = Run(Request("Hello", 30));
  const int32_t extra = full.tokens[5];
  SetUpEngine(0, 64, [&](EngineConfig& c) { c.extra_eos_token_ids = {extra}; });
  GenerationRequest r = Request("Hello", 30);
  r.stop.ignore_eos = false;
  const Result cut = Run(r);
  EXPECT_EQ(cut.reason, FinishReason::kStop);
  EXPECT_EQ(cut.stop_reason, "");
  ASSERT_FALSE(cut.tokens.empty());
  const auto& model_eos = engine_->model_config().eos_token_ids;
  const int32_t last = cut.tokens.back();
  EXPECT_TRUE(last == extra ||
              std::find(model_eos.begin(), model_eos.end(), last) != model_eos.end());
  EXPECT_LE(cut.tokens.size(), 6u);
  // ignore_eos keeps generating past it.
  EXPECT_EQ(Run(Request("Hello", 30)).tokens.size(), 30u);
}

TEST_F(EngineTest, LogitBiasSteersTheDraw) {
  SetUpEngine();
  const Result full = Run(Request("Hello", 12));
  GenerationRequest r = Request("Hello", 12);
  const int32_t forced = full.tokens[0] == 7 ? 8 : 7;
  r.sampling.logit_bias = {{forced, 100.0f}};
  EXPECT_EQ(Run(r).tokens, std::vector<int32_t>(12, forced));
  r = Request("Hello", 12);
  r.sampling.logit_bias = {{full.tokens[0], -100.0f}};
  EXPECT_NE(Run(r).tokens[0], full.tokens[0]);
}

// min_tokens: stop ids and EOS ids are not sampled before it; stop strings do not count before it.
TEST_F(EngineTest, MinTokensDefersEveryStop) {
  SetUpEngine();
  const Result full = Run(Request("Hello", 30));
  const int32_t stop_id = full.tokens[2];
  const size_t first =
      std::find(full.tokens.begin(), full.tokens.end(), stop_id) - full.tokens.begin();
  GenerationRequest t = Request("Hello", 30);
  t.stop.stop_token_ids = {stop_id};
  t.stop.min_tokens = 12;
  const Result held = Run(t);
  ASSERT_GE(held.tokens.size(), 12u);
  EXPECT_TRUE(std::equal(held.tokens.begin(), held.tokens.begin() + first, full.tokens.begin()));
  EXPECT_EQ(std::count(held.tokens.begin(), held.tokens.begin() + 12, stop_id), 0);
  if (held.reason == FinishReason::kStop) {
    EXPECT_EQ(held.tokens.back(), stop_id);
  }

  // EOS (here generation_config.json's extra id) is suppressed the same way, unless ignored.
  SetUpEngine(0, 64, [&](EngineConfig& c) { c.extra_eos_token_ids = {stop_id}; });
  GenerationRequest e = Request("Hello", 30);
  e.stop.ignore_eos = false;
  e.stop.min_tokens = 12;
  const Result eos_held = Run(e);
  ASSERT_GE(eos_held.tokens.size(), 12u);
  EXPECT_EQ(std::count(eos_held.tokens.begin(), eos_held.tokens.begin() + 12, stop_id), 0);

  // A stop string counts only from token min_tokens on: at min_tokens = max_tokens the tokens
  // are the unstopped run's.
  ASSERT_GE(full.text.size(), 12u);
  GenerationRequest s = Request("Hello", 30);
  s.stop.stop_strings = {full.text.substr(6, 3)};
  s.stop.min_tokens = 30;
  const Result late = Run(s);
  EXPECT_EQ(late.tokens, full.tokens);
  if (late.reason == FinishReason::kLength) {
    EXPECT_EQ(late.text, full.text);
  }
}

TEST_F(EngineTest, MinTokensAndLogitBiasRefusals) {
  SetUpEngine();
  const int V = engine_->model_config().vocab_size;
  auto sink = std::make_shared<CollectingSink>();
  GenerationRequest r = Request("x", 5);
  r.stop.min_tokens = 6;
  EXPECT_THAT(std::string(engine_->Submit(r, sink).status().message()),
              HasSubstr("min_tokens: must be in [0, max_tokens=5], got 6"));
  r = Request("x", 5);
  r.sampling.logit_bias = {{V, 1.0f}};
  EXPECT_THAT(std::string(engine_->Submit(r, sink).status().message()),
              HasSubstr("sampling.logit_bias: token id"));
  r = Request("x", 5);
  r.stop.min_tokens = 1;
  for (int32_t id = 0; id < V; ++id) r.stop.stop_token_ids.push_back(id);
  const absl::Status all = engine_->Submit(r, sink).status();
  EXPECT_EQ(all.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(all.message()), HasSubstr("cover all"));
  r.stop.min_tokens = 0;  // without min_tokens nothing is suppressed: fine
  EXPECT_TRUE(engine_->Submit(r, sink).ok());
}

// Structured outputs on the random model, whose unconstrained text is noise: every output is a
// JSON text of the schema, ends by itself (kStop, as EOS would), and a batch mixing constrained
// and free requests gives each the tokens of its solo run.
TEST_F(EngineTest, StructuredOutputFollowsTheSchemaAndEndsWhenComplete) {
  SetUpEngine();
  auto grammar = structured::JsonSchemaGrammarFromText(
      R"({"type": "object", "properties": {"ok": {"type": "boolean"},
          "tag": {"enum": ["x", "y z"]}, "n": {"type": "integer"}},
          "required": ["ok", "tag"], "additionalProperties": false})");
  ASSERT_TRUE(grammar.ok()) << grammar.status();
  std::vector<GenerationRequest> reqs;
  for (int i = 0; i < 8; ++i) {
    reqs.push_back(Request("Answer: " + std::string(i, '!'), 400, i == 0 ? 0.0f : 1.0f, 40 + i));
    if (i % 4 != 3) reqs.back().grammar = *grammar;  // every fourth runs free beside them
  }
  std::vector<Result> solo;
  for (const GenerationRequest& r : reqs) solo.push_back(Run(r));
  for (size_t i = 0; i < reqs.size(); ++i) {
    if (reqs[i].grammar == nullptr) continue;
    const Result& r = solo[i];
    EXPECT_EQ(r.reason, FinishReason::kStop) << i << ": " << r.text;
    EXPECT_EQ(r.stop_reason, "");
    EXPECT_EQ(r.text, tokenizer_->Decode(r.tokens, true));
    const nlohmann::json j = nlohmann::json::parse(r.text, nullptr, /*allow_exceptions=*/false);
    ASSERT_TRUE(j.is_object()) << i << ": " << r.text;
    EXPECT_TRUE(j["ok"].is_boolean()) << r.text;
    EXPECT_TRUE(j["tag"] == "x" || j["tag"] == "y z") << r.text;
    if (j.contains("n")) {  // an integer of any length (past 64 bits nlohmann reads a double)
      const size_t key = r.text.find("\"n\"");
      const size_t begin = r.text.find_first_not_of(" \t\n:", key + 3);
      const std::string n = r.text.substr(begin, r.text.find_first_of(" \t\n,}", begin) - begin);
      EXPECT_THAT(n, ::testing::MatchesRegex("-?(0|[1-9][0-9]*)")) << r.text;
    }
    EXPECT_LE(j.size(), 3u) << r.text;
  }
  const std::vector<Result> together = RunTogether(reqs);
  for (size_t i = 0; i < reqs.size(); ++i) {
    EXPECT_EQ(together[i].tokens, solo[i].tokens) << "request " << i;
  }
}

// Strings held to a pattern (with characters JSON must escape) and a format, integers and
// numbers held to bounds: every output of the random model parses and keeps them.
TEST_F(EngineTest, StructuredOutputKeepsPatternsFormatsBoundsAndMultiples) {
  SetUpEngine();
  auto grammar = structured::JsonSchemaGrammarFromText(
      R"({"type": "object", "properties": {
            "code": {"type": "string", "pattern": "^[A-Z]{2}-\\d{1,4}$"},
            "mark": {"type": "string", "pattern": "^[^a-z]{1,3}$"},
            "day": {"type": "string", "format": "date"},
            "score": {"type": "integer", "minimum": -3, "maximum": 7},
            "ratio": {"type": "number", "minimum": 0, "exclusiveMaximum": 1},
            "step": {"type": "integer", "multipleOf": 7, "minimum": -50},
            "price": {"type": "number", "multipleOf": 0.25, "maximum": 100}},
          "required": ["code", "mark", "day", "score", "ratio", "step", "price"],
          "additionalProperties": false})");
  ASSERT_TRUE(grammar.ok()) << grammar.status();
  for (int i = 0; i < 6; ++i) {
    GenerationRequest r =
        Request("Record: " + std::string(i, '#'), 400, i == 0 ? 0.0f : 1.0f, 70 + i);
    r.grammar = *grammar;
    const Result out = Run(r);
    EXPECT_EQ(out.reason, FinishReason::kStop) << i << ": " << out.text;
    const nlohmann::json j = nlohmann::json::parse(out.text, nullptr, /*allow_exceptions=*/false);
    ASSERT_TRUE(j.is_object()) << i << ": " << out.text;
    EXPECT_THAT(j["code"].get<std::string>(), ::testing::MatchesRegex("[A-Z][A-Z]-[0-9]{1,4}"));
    // 1 to 3 characters (code points), none of them a-z.
    const std::string mark = j["mark"].get<std::string>();
    const auto chars = std::count_if(
        mark.begin(), mark.end(), [](char c) { return (static_cast<uint8_t>(c) & 0xC0) != 0x80; });
    EXPECT_TRUE(chars >= 1 && chars <= 3) << out.text;
    EXPECT_EQ(mark.find_first_of("abcdefghijklmnopqrstuvwxyz"), std::string::npos) << out.text;
    const std::string day = j["day"].get<std::string>();
    int y = 0;
    unsigned m = 0, d = 0;
    ASSERT_EQ(std::sscanf(day.c_str(), "%4d-%2u-%2u", &y, &m, &d), 3) << out.text;
    EXPECT_TRUE((std::chrono::year(y) / std::chrono::month(m) / std::chrono::day(d)).ok())
        << out.text;
    EXPECT_TRUE(j["score"].is_number_integer() && j["score"] >= -3 && j["score"] <= 7) << out.text;
    EXPECT_TRUE(j["ratio"].is_number() && j["ratio"] >= 0 && j["ratio"] < 1) << out.text;
    // Up to 20 digits (past a double's and int64's): the remainder from the text's digits.
    std::smatch step;
    ASSERT_TRUE(std::regex_search(out.text, step, std::regex(R"("step"\s*:\s*(-?)([0-9]+))")))
        << out.text;
    int remainder = 0;
    for (char c : step[2].str()) remainder = (remainder * 10 + (c - '0')) % 7;
    EXPECT_EQ(remainder, 0) << out.text;
    EXPECT_TRUE(step[1].str().empty() || (step[2].length() <= 2 && std::stoi(step[2]) <= 50))
        << out.text;
    // Written with two fraction digits: a multiple of 0.25 is a whole number of hundredths.
    std::smatch price;
    ASSERT_TRUE(std::regex_search(out.text, price,
                                  std::regex(R"("price"\s*:\s*(-?[0-9]+)\.([0-9][0-9])\s*[,}])")))
        << out.text;
    EXPECT_EQ(std::stoi(price[2].str()) % 25, 0) << out.text;
    EXPECT_LE(j["price"].get<double>(), 100) << out.text;
  }
}

// Keys of the root object as written, duplicates included (a parsed object keeps one of each).
size_t RootPairs(const std::string& text) {
  struct Counter : nlohmann::json_sax<nlohmann::json> {
    size_t depth = 0, pairs = 0;
    bool null() override { return true; }
    bool boolean(bool) override { return true; }
    bool number_integer(number_integer_t) override { return true; }
    bool number_unsigned(number_unsigned_t) override { return true; }
    bool number_float(number_float_t, const string_t&) override { return true; }
    bool string(string_t&) override { return true; }
    bool binary(binary_t&) override { return true; }
    bool start_object(size_t) override {
      ++depth;
      return true;
    }
    bool key(string_t&) override {
      if (depth == 1) ++pairs;
      return true;
    }
    bool end_object() override {
      --depth;
      return true;
    }
    bool start_array(size_t) override {
      ++depth;
      return true;
    }
    bool end_array() override {
      --depth;
      return true;
    }
    bool parse_error(size_t, const std::string&, const nlohmann::detail::exception&) override {
      return false;
    }
  } counter;
  return nlohmann::json::sax_parse(text, &counter) ? counter.pairs : SIZE_MAX;
}

// minProperties / maxProperties over optional properties, drawn by the random model (whose
// free strings run on, so no extra pairs with names of its own).
TEST_F(EngineTest, StructuredOutputKeepsPropertyCounts) {
  SetUpEngine();
  auto grammar = structured::JsonSchemaGrammarFromText(
      R"({"type": "object", "properties": {"a": {"type": "boolean"}, "b": {"type": "null"},
            "c": {"type": "integer", "minimum": 0, "maximum": 9}, "d": {"enum": ["x", "y"]},
            "e": {"type": "boolean"}},
          "additionalProperties": false, "minProperties": 2, "maxProperties": 3})");
  ASSERT_TRUE(grammar.ok()) << grammar.status();
  for (int i = 0; i < 6; ++i) {
    GenerationRequest r =
        Request("Pairs: " + std::string(i, '#'), 300, i == 0 ? 0.0f : 1.0f, 90 + i);
    r.grammar = *grammar;
    const Result out = Run(r);
    ASSERT_EQ(out.reason, FinishReason::kStop) << i << ": " << out.text;
    const size_t pairs = RootPairs(out.text);
    EXPECT_TRUE(pairs >= 2 && pairs <= 3) << i << ": " << out.text;
  }
}

// Cut by max_tokens, a structured output is a prefix of a sentence of its grammar; a grammar with
// nothing to generate is refused at submission.
TEST_F(EngineTest, StructuredOutputCutShortAndEmptyGrammar) {
  SetUpEngine();
  auto grammar = structured::JsonObjectGrammar();
  ASSERT_TRUE(grammar.ok()) << grammar.status();
  GenerationRequest r = Request("Hello", 5, 1.0f, 9);
  r.grammar = *grammar;
  const Result cut = Run(r);
  EXPECT_EQ(cut.reason, FinishReason::kLength);
  EXPECT_EQ(cut.tokens.size(), 5u);
  structured::GrammarAutomaton automaton(*grammar);
  std::string bytes;
  for (int32_t id : cut.tokens) bytes += tokenizer_->TokenBytes(id);
  auto state = automaton.AdvanceBytes(automaton.initial(), bytes);
  ASSERT_TRUE(state.ok()) << state.status();
  EXPECT_NE(*state, structured::GrammarAutomaton::kDead) << bytes;
  EXPECT_EQ(bytes.front(), '{');

  structured::GrammarBuilder b;
  const int root = b.AddRule("root", {structured::Alternative{}});
  auto empty = std::move(b).Build(root);
  ASSERT_TRUE(empty.ok()) << empty.status();
  r = Request("Hello", 5);
  r.grammar = *empty;
  auto sink = std::make_shared<CollectingSink>();
  const absl::Status refused = engine_->Submit(r, sink).status();
  EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(refused.message()), HasSubstr("accepts only the empty text"));
}

// A structured output whose stop ids are every token that can start it has nothing to draw (a
// stop id may end only a complete output): the request fails with FAILED_PRECONDITION and says
// why, before any token, and the engine serves the next request. (Found by the fuzzer.)
TEST_F(EngineTest, StructuredOutputWithNoTokenToDrawFailsAndTheEngineGoesOn) {
  SetUpEngine();
  auto grammar = structured::JsonObjectGrammar();
  ASSERT_TRUE(grammar.ok()) << grammar.status();
  structured::GrammarAutomaton automaton(*grammar);
  GenerationRequest r = Request("Hello", 5);
  for (int32_t id = 0; id < tokenizer_->vocab_size(); ++id) {
    const std::string bytes = tokenizer_->TokenBytes(id);
    if (bytes.empty()) continue;
    auto state = automaton.AdvanceBytes(automaton.initial(), bytes);
    if (state.ok() && *state != structured::GrammarAutomaton::kDead) {
      r.stop.stop_token_ids.push_back(id);
    }
  }
  ASSERT_FALSE(r.stop.stop_token_ids.empty());
  r.grammar = *grammar;
  auto sink = std::make_shared<CollectingSink>();
  ASSERT_TRUE(engine_->Submit(r, sink).ok());
  const GenerationDelta d = sink->Wait();
  EXPECT_EQ(d.status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(d.status.message()),
              HasSubstr("no token of the vocabulary can continue the output"));
  EXPECT_TRUE(sink->tokens().empty());
  EXPECT_TRUE(engine_->healthy());
  const Result next = Run(Request("Hello", 3));
  EXPECT_EQ(next.reason, FinishReason::kLength);
  EXPECT_EQ(next.tokens.size(), 3u);
}

// With EOS not ignored, a grammar that is complete but could go on (a bare number) lets the
// model end it with EOS; the EOS token ends the output as usual.
TEST_F(EngineTest, StructuredOutputMayEndWithEosOnceComplete) {
  SetUpEngine();
  // "Q" becomes an EOS id with the larger bias, "7" the likeliest digit: the EOS cannot be drawn
  // while the number is empty, not even as the letter it spells; once "7" is out it can.
  const std::vector<int32_t> q = tokenizer_->Encode("Q", false),
                             seven = tokenizer_->Encode("7", false);
  ASSERT_EQ(q.size(), 1u);
  ASSERT_EQ(seven.size(), 1u);
  SetUpEngine(0, 64, [&](EngineConfig& c) { c.extra_eos_token_ids = {q[0]}; });
  auto grammar = structured::JsonSchemaGrammarFromText(R"({"type": ["integer", "string"]})");
  ASSERT_TRUE(grammar.ok()) << grammar.status();
  GenerationRequest r = Request("Hello", 50);
  r.stop.ignore_eos = false;
  r.sampling.logit_bias = {{seven[0], 50.0f}, {q[0], 100.0f}};
  r.grammar = *grammar;
  const Result out = Run(r);
  EXPECT_EQ(out.reason, FinishReason::kStop);
  EXPECT_EQ(out.stop_reason, "");
  EXPECT_EQ(out.tokens, (std::vector<int32_t>{seven[0], q[0]}));

  // Inside a string the text is never complete: the EOS id is not drawn as the letter either.
  auto string_grammar = structured::JsonSchemaGrammarFromText(R"({"type": "string"})");
  ASSERT_TRUE(string_grammar.ok()) << string_grammar.status();
  r.grammar = *string_grammar;
  r.stop.max_tokens = 6;
  const Result in_string = Run(r);
  EXPECT_EQ(std::count(in_string.tokens.begin(), in_string.tokens.end(), q[0]), 0);
  EXPECT_EQ(in_string.text.front(), '"');
}

TEST_F(EngineTest, QueueBoundRefusesWithARetryHintAndQueuedDeadlinesExpire) {
  auto observer = std::make_shared<RecordingObserver>();
  SetUpEngine(0, /*max_seqs=*/1, [](EngineConfig& c) { c.max_queued_requests = 2; }, observer);
  auto running = std::make_shared<CollectingSink>();
  auto h = engine_->Submit(Request("long", 400), running);
  ASSERT_TRUE(h.ok());
  while (running->num_deltas() < 1) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  // One seq slot is taken: two wait, the third is refused.
  GenerationRequest expiring = Request("queued", 5);
  expiring.deadline = absl::Now() + absl::Milliseconds(20);
  auto queued1 = std::make_shared<CollectingSink>(), queued2 = std::make_shared<CollectingSink>();
  ASSERT_TRUE(engine_->Submit(expiring, queued1).ok());
  ASSERT_TRUE(engine_->Submit(Request("queued too", 5), queued2).ok());
  auto refused = engine_->Submit(Request("one too many", 5), std::make_shared<CollectingSink>());
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(refused.status().message()), HasSubstr("retry after"));
  EXPECT_GE(engine_->retry_after(), absl::Milliseconds(10));
  // The queued request's deadline passes while it waits behind the long one.
  GenerationDelta d = queued1->Wait();
  EXPECT_EQ(d.status.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(std::string(d.status.message()), HasSubstr("queued"));
  EXPECT_TRUE(queued1->tokens().empty());
  (*h)->Cancel();
  EXPECT_EQ(running->Wait().finish_reason, FinishReason::kCancelled);
  EXPECT_EQ(queued2->Wait().finish_reason, FinishReason::kLength);
  engine_->Shutdown();
  std::lock_guard<std::mutex> l(observer->mu);
  EXPECT_EQ(observer->rejected, std::vector<absl::StatusCode>{absl::StatusCode::kResourceExhausted});
  EXPECT_EQ(observer->finished.size(), 3u);
  EXPECT_EQ(observer->last_state.num_running, 0);
  EXPECT_EQ(observer->last_state.num_waiting, 0);
  EXPECT_EQ(observer->last_state.kv_pages_used, 0);
}

// Runs `on_first` inside the first delta: on the engine thread, in the middle of the step that
// produced it.
class FirstDeltaSink : public CollectingSink {
 public:
  explicit FirstDeltaSink(std::function<void()> on_first) : on_first_(std::move(on_first)) {}
  void OnDelta(GenerationDelta d) override {
    if (!fired_) {
      fired_ = true;
      on_first_();
    }
    CollectingSink::OnDelta(std::move(d));
  }

 private:
  std::function<void()> on_first_;
  bool fired_ = false;  // engine thread only
};

TEST_F(EngineTest, QueueBoundNoLongerCountsARequestOnceItsFirstTokenIsOut) {
  SetUpEngine(0, /*max_seqs=*/1, [](EngineConfig& c) { c.max_queued_requests = 2; });
  // A client that has read its first token may at once send more requests: the bound must see
  // that request running, not waiting (it did not until its whole step was over).
  std::vector<std::shared_ptr<CollectingSink>> queued;
  int accepted = 0, refused = 0;
  auto running = std::make_shared<FirstDeltaSink>([&] {
    for (int i = 0; i < 3; ++i) {
      queued.push_back(std::make_shared<CollectingSink>());
      auto h = engine_->Submit(Request("queued " + std::to_string(i), 2), queued.back());
      h.ok() ? ++accepted : ++refused;
    }
  });
  auto h = engine_->Submit(Request("long", 200), running);
  ASSERT_TRUE(h.ok());
  while (running->num_deltas() < 1) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_EQ(accepted, 2);
  EXPECT_EQ(refused, 1);
  (*h)->Cancel();
  EXPECT_EQ(running->Wait().finish_reason, FinishReason::kCancelled);
  for (int i = 0; i < accepted; ++i) EXPECT_EQ(queued[i]->Wait().finish_reason, FinishReason::kLength);
}

}  // namespace
}  // namespace attnres
