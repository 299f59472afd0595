// CPU sampler.
#include "models/sampler.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <unordered_map>

namespace attnres {
namespace {

uint64_t SplitMix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

double LogSumExp(std::span<const float> x) {
  const float mx = *std::max_element(x.begin(), x.end());
  double sum = 0.0;
  for (float v : x) sum += std::exp(static_cast<double>(v) - mx);
  return mx + std::log(sum);
}

}  // namespace

double SampleUniform(uint64_t seed, uint64_t index) {
  const uint64_t bits = SplitMix64(SplitMix64(seed) ^ (index * 0xD1B54A32D192ED03ull));
  return static_cast<double>(bits >> 11) * 0x1.0p-53;
}

void ApplyLogitBias(const SamplingParams& p, std::span<float> logits) {
  for (const auto& [id, bias] : p.logit_bias) logits[id] += bias;
}

void SuppressTokens(std::span<const int32_t> ids, std::span<float> logits) {
  for (int32_t id : ids) logits[id] = -std::numeric_limits<float>::infinity();
}

void KeepAllowed(const TokenBitmask& allowed, std::span<float> logits) {
  // A word at a time: a word of all-allowed ids is skipped; ids past the mask are refused.
  const size_t n = logits.size();
  for (size_t w = 0; w * 64 < n; ++w) {
    const uint64_t bits = w < allowed.words.size() ? allowed.words[w] : 0;
    if (bits == ~uint64_t{0}) continue;
    const size_t end = std::min(n, (w + 1) * 64);
    for (size_t id = w * 64; id < end; ++id) {
      if (((bits >> (id & 63)) & 1) == 0) logits[id] = -std::numeric_limits<float>::infinity();
    }
  }
}

void ApplyPenalties(const SamplingParams& p, std::span<const int32_t> history, int prompt_len,
                    std::span<float> logits) {
  if (!p.has_penalties()) return;
  std::unordered_map<int32_t, int> output_counts;
  std::vector<bool> seen(logits.size(), false);
  for (size_t i = 0; i < history.size(); ++i) {
    const int32_t id = history[i];
    if (id < 0 || static_cast<size_t>(id) >= logits.size()) continue;
    seen[id] = true;
    if (static_cast<int>(i) >= prompt_len) ++output_counts[id];
  }
  if (p.repetition_penalty != 1.0f) {
    for (size_t id = 0; id < logits.size(); ++id) {
      if (!seen[id]) continue;
      float& l = logits[id];
      l = l > 0 ? l / p.repetition_penalty : l * p.repetition_penalty;
    }
  }
  for (const auto& [id, count] : output_counts) {
    logits[id] -= p.frequency_penalty * count + p.presence_penalty;
  }
}

int32_t SampleToken(const SamplingParams& p, uint64_t index, std::span<const float> logits) {
  const int V = static_cast<int>(logits.size());
  if (p.greedy()) {
    return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
  }
  const double inv_t = 1.0 / p.temperature;
  const bool top_k = p.top_k > 0 && p.top_k < V;
  if (!top_k && p.top_p >= 1.0f && p.min_p <= 0.0f) {  // no truncation: ids in order
    const double mx = *std::max_element(logits.begin(), logits.end());
    std::vector<double> prob(V);
    double total = 0.0;
    for (int k = 0; k < V; ++k) total += (prob[k] = std::exp((logits[k] - mx) * inv_t));
    const double target = SampleUniform(p.seed, index) * total;
    double cum = 0.0;
    for (int k = 0; k < V; ++k) {
      cum += prob[k];
      if (target < cum) return k;
    }
    return V - 1;  // rounding at the very end of the distribution
  }
  // Candidates by probability (descending; ties by id): the top k, else a sorted prefix that
  // grows (doubling from 256) until it decides min-p's floor and top-p's mass, each a prefix of
  // that order; a row is sorted whole only when the rule keeps most of it.
  std::vector<int32_t> ids(V);
  std::iota(ids.begin(), ids.end(), 0);
  auto better = [&](int32_t a, int32_t b) {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
  };
  const int n = top_k ? p.top_k : V;
  int sorted = 0;
  std::vector<double> prob;  // [sorted]: exp((logit - max) / t) of the sorted prefix
  double mx = 0.0;
  auto sort_to = [&](int m) {
    m = std::min(m, n);
    std::partial_sort(ids.begin() + sorted, ids.begin() + m, ids.end(), better);
    if (sorted == 0) mx = logits[ids[0]];
    for (int k = sorted; k < m; ++k) prob.push_back(std::exp((logits[ids[k]] - mx) * inv_t));
    sorted = m;
  };
  sort_to(top_k ? n : 256);
  // min-p relative to the top token, then the nucleus over what is left.
  int keep = n;
  if (p.min_p > 0.0f) {
    const double floor = p.min_p * prob[0];
    keep = 1;
    for (;;) {
      while (keep < sorted && prob[keep] >= floor) ++keep;
      if (keep < sorted || sorted == n) break;
      sort_to(2 * sorted);
    }
  }
  if (p.top_p < 1.0f) {
    double kept_total = 0.0;
    if (keep <= sorted) {
      for (int k = 0; k < keep; ++k) kept_total += prob[k];
    } else {  // the whole row, unsorted: in id order
      for (int k = 0; k < V; ++k) kept_total += std::exp((logits[k] - mx) * inv_t);
    }
    double cum = 0.0;
    int k = 0;
    while (k < keep) {
      if (k == sorted) sort_to(2 * sorted);
      cum += prob[k++];
      if (cum >= p.top_p * kept_total) break;
    }
    keep = k;
  }
  double total = 0.0;
  for (int k = 0; k < keep; ++k) total += prob[k];
  const double target = SampleUniform(p.seed, index) * total;
  double cum = 0.0;
  for (int k = 0; k < keep; ++k) {
    cum += prob[k];
    if (target < cum) return ids[k];
  }
  return ids[keep - 1];  // rounding at the very end of the distribution
}

TokenLogprob ComputeLogprob(std::span<const float> logits, int32_t token, int top_n) {
  TokenLogprob out;
  const double lse = LogSumExp(logits);
  out.token_id = token;
  out.logprob = static_cast<float>(logits[token] - lse);
  if (top_n > 0) {
    const int V = static_cast<int>(logits.size());
    const int n = std::min(top_n, V);
    std::vector<int32_t> ids(V);
    std::iota(ids.begin(), ids.end(), 0);
    std::partial_sort(ids.begin(), ids.begin() + n, ids.end(), [&](int32_t a, int32_t b) {
      return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
    });
    for (int k = 0; k < n; ++k) {
      out.top.emplace_back(ids[k], static_cast<float>(logits[ids[k]] - lse));
    }
  }
  return out;
}

}  // namespace attnres
