// What a step's sampling costs the engine thread on the host (CPU), for steps whose rows ask for
// penalties (a 512-token history) and logprobs (5 alternatives): the host sampler's work on the
// rows' logits (SampleOnHost; the CUDA runner's host path adds the copy of the logits, R x V x 4
// bytes, before it), against the plan that sends the same edits to the GPU sampler
// (LogitEditPlanner::Plan). Prints a table; no targets.
//
//   attnres-sampler-bench [--vocab-size N] [--history N] [--repeat R]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <vector>

#include "CLI/CLI.hpp"
#include "models/host_sampler.h"
#include "models/logit_edits.h"

namespace attnres {
namespace {

using Clock = std::chrono::steady_clock;

template <typename F>
double BestMs(int repeat, const F& f) {
  double best = 1e30;
  for (int i = 0; i < repeat; ++i) {
    const auto start = Clock::now();
    f();
    best = std::min(best, std::chrono::duration<double, std::milli>(Clock::now() - start).count());
  }
  return best;
}

int Run(int V, int history_len, int repeat) {
  std::printf("| rows | host sampler (SampleOnHost) | GPU edit plan (LogitEditPlanner::Plan) |\n");
  std::printf("|---|---|---|\n");
  std::mt19937 rng(7);
  SamplingParams params;
  params.temperature = 0.8f;
  params.top_p = 0.95f;
  params.repetition_penalty = 1.1f;
  params.presence_penalty = 0.3f;
  params.frequency_penalty = 0.2f;
  LogitEditPlanner planner(V);
  for (int R : {1, 8, 64, 256}) {
    std::vector<std::vector<int32_t>> histories(R);
    StepBatch b;
    b.query_indptr = {0};
    for (int s = 0; s < R; ++s) {
      for (int k = 0; k < history_len; ++k) histories[s].push_back(static_cast<int32_t>(rng() % V));
      SequenceBatchEntry e;
      e.num_new_tokens = 1;
      e.sample = true;
      e.sampling = &params;
      e.sample_index = s;
      e.history = &histories[s];
      e.prompt_len = history_len / 2;
      e.logprobs = 5;
      b.seqs.push_back(e);
      b.token_ids.push_back(1);
      b.query_indptr.push_back(s + 1);
    }
    const LogitRows rows = LogitRows::For(b);
    std::vector<float> logits(static_cast<size_t>(R) * V);
    std::normal_distribution<float> normal(0.0f, 3.0f);
    for (float& x : logits) x = normal(rng);
    StepOutput out;
    const double host = BestMs(repeat, [&] { SampleOnHost(b, rows, logits, V, {}, 0, &out); });
    size_t edits = 0;
    const double plan = BestMs(repeat, [&] { edits = planner.Plan(b, rows).edits.size(); });
    std::printf("| %d | %.2f ms | %.3f ms (%zu edits) |\n", R, host, plan, edits);
  }
  return 0;
}

}  // namespace
}  // namespace attnres

int main(int argc, char** argv) {
  CLI::App app("Host-side sampling cost per step: the host sampler against the GPU edit plan");
  int vocab = 128256, history = 512, repeat = 3;
  app.add_option("--vocab-size", vocab, "vocabulary size")->check(CLI::Range(1, 1 << 20));
  app.add_option("--history", history, "tokens of each row's history (half of it prompt)")
      ->check(CLI::Range(0, 1 << 20));
  app.add_option("--repeat", repeat, "timed runs (the best is printed)")->check(CLI::Range(1, 100));
  CLI11_PARSE(app, argc, argv);
  return attnres::Run(vocab, history, repeat);
}
