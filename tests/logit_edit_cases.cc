// Random steps with every logit edit, for the edit plan's CPU and GPU tests (see the header).
#include "tests/logit_edit_cases.h"

#include <algorithm>
#include <random>

namespace attnres::testing {

EditCase MakeEditCase(uint32_t seed, int V, int num_seqs) {
  EditCase c;
  c.vocab = V;
  std::mt19937 rng(seed);
  auto coin = [&](int percent) { return static_cast<int>(rng() % 100) < percent; };
  auto id = [&]() { return static_cast<int32_t>(rng() % V); };
  StepBatch& b = c.batch;
  b.query_indptr.push_back(0);
  for (int s = 0; s < num_seqs; ++s) {
    SequenceBatchEntry e;
    e.num_new_tokens = coin(15) ? 3 : 1;
    e.sample = !coin(10);
    if (coin(10)) e.prompt_logprobs = static_cast<int>(rng() % 3);
    SamplingParams& p = c.params.emplace_back();
    p.temperature = coin(40) ? 0.0f : 0.5f + (rng() % 100) / 100.0f;
    p.top_k = coin(30) ? 1 + static_cast<int>(rng() % 50) : 0;
    p.top_p = coin(30) ? 0.9f : 1.0f;
    p.seed = rng();
    e.sample_index = rng() % 1000;
    e.sampling = &p;
    if (coin(50)) {  // a bias, sometimes on an id that is also suppressed or in the history
      for (int k = 1 + static_cast<int>(rng() % 4); k > 0; --k) {
        p.logit_bias.emplace_back(id(),
                                  static_cast<float>(static_cast<int>(rng() % 201) - 100) / 7.0f);
      }
      std::sort(p.logit_bias.begin(), p.logit_bias.end());
      p.logit_bias.erase(std::unique(p.logit_bias.begin(), p.logit_bias.end(),
                                     [](auto& a, auto& b) { return a.first == b.first; }),
                         p.logit_bias.end());
    }
    if (coin(40)) {
      auto& ids = c.suppressed.emplace_back();
      for (int k = 1 + static_cast<int>(rng() % 3); k > 0; --k) ids.push_back(id());
      ids.push_back(ids.front());  // a repeat
      if (!p.logit_bias.empty()) ids.push_back(p.logit_bias.back().first);
      e.suppressed = &ids;
    }
    if (coin(50)) {  // penalties over a history with repeats and ids the vocabulary lacks
      if (coin(70)) p.repetition_penalty = coin(50) ? 1.3f : 0.8f;
      if (coin(60)) p.presence_penalty = coin(50) ? 0.5f : -0.25f;
      if (coin(60)) p.frequency_penalty = coin(50) ? 0.75f : -0.4f;
      auto& h = c.histories.emplace_back();
      const int n = static_cast<int>(rng() % 60);
      for (int k = 0; k < n; ++k) h.push_back(coin(30) && !h.empty() ? h[rng() % h.size()] : id());
      if (coin(30)) h.push_back(-1);
      if (coin(30)) h.push_back(V);
      if (!p.logit_bias.empty()) h.push_back(p.logit_bias.front().first);
      e.prompt_len = static_cast<int>(rng() % (h.size() + 1));
      if (coin(80)) e.history = &h;
    }
    if (coin(35)) {  // a mask of a fifth of the ids; some masks stop short of the vocabulary
      const int32_t cap = coin(30) ? std::max(V / 2, 1) : V;
      TokenBitmask& m = c.masks.emplace_back(cap);
      for (int32_t k = 0; k < cap; ++k) {
        if (coin(20)) m.Set(k);
      }
      m.Set(static_cast<int32_t>(rng() % cap));
      e.allowed = &m;
    }
    if (coin(50)) e.logprobs = static_cast<int>(rng() % 21);
    for (int k = 0; k < e.num_new_tokens; ++k) b.token_ids.push_back(id());
    b.query_indptr.push_back(static_cast<int32_t>(b.token_ids.size()));
    b.seqs.push_back(e);
  }
  c.rows = LogitRows::For(b);
  c.logits.resize(c.rows.rows.size() * static_cast<size_t>(V));
  std::normal_distribution<float> normal(0.0f, 3.0f);
  for (float& x : c.logits) x = coin(2) ? 0.0f : normal(rng);
  for (size_t r = 0; r < c.rows.rows.size() && V > 8; ++r) {  // ties at the top
    const float top = 20.0f + static_cast<float>(r % 3);
    c.logits[r * V + 3] = top;
    c.logits[r * V + V - 2] = top;
  }
  return c;
}

}  // namespace attnres::testing
