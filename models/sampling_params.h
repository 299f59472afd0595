// Per-request sampling parameters and the logprob record the sampler produces. Plain data shared
// by the sampler (models/) and the engine (server/engine); ranges are validated at the API edge.
#pragma once

#include <cstdint>
#include <utility>
#include <vector>

namespace attnres {

struct SamplingParams {
  float temperature = 1.0f;         // 0: greedy
  int top_k = 0;                    // 0: off
  float top_p = 1.0f;               // 1: off
  float min_p = 0.0f;               // 0: off
  uint64_t seed = 0;
  float repetition_penalty = 1.0f;  // 1: off; applies to prompt and generated tokens
  float presence_penalty = 0.0f;    // applies to generated tokens
  float frequency_penalty = 0.0f;   // applies to generated tokens
  // (token id, value added to its logit), ids ascending and unique, each in [0, vocab_size).
  std::vector<std::pair<int32_t, float>> logit_bias;

  bool greedy() const { return temperature == 0.0f; }
  bool has_penalties() const {
    return repetition_penalty != 1.0f || presence_penalty != 0.0f || frequency_penalty != 0.0f;
  }
};

// The tokens that may be sampled (structured outputs): bit id % 64 of words[id / 64]. Ids past
// the end may not.
struct TokenBitmask {
  std::vector<uint64_t> words;

  explicit TokenBitmask(int32_t num_ids = 0) : words((num_ids + 63) / 64, 0) {}
  int32_t capacity() const { return static_cast<int32_t>(words.size()) * 64; }
  void Set(int32_t id) { words[id >> 6] |= uint64_t{1} << (id & 63); }
  void Clear(int32_t id) { words[id >> 6] &= ~(uint64_t{1} << (id & 63)); }
  bool Has(int32_t id) const {
    return id >= 0 && id < capacity() && ((words[id >> 6] >> (id & 63)) & 1);
  }
};

struct TokenLogprob {
  int32_t token_id = 0;
  float logprob = 0.0f;                          // natural log, of the unmodified distribution
  std::vector<std::pair<int32_t, float>> top;    // (id, logprob), most likely first
};

}  // namespace attnres
