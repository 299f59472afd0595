// Token selection from one row of logits: penalties, temperature, top-k, top-p, min-p, and a
// counter-based random stream (seed, token index) so a request's draws do not depend on what
// else shares its batch or on preemption. Also logprobs with top-n alternatives. CPU reference;
// the GPU sampler implements the same rules.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "models/sampling_params.h"

namespace attnres {

// Uniform double in [0, 1) from (seed, index); same function on every backend.
double SampleUniform(uint64_t seed, uint64_t index);

// Adds params.logit_bias to the logits in place.
void ApplyLogitBias(const SamplingParams& params, std::span<float> logits);

// Sets the logits of `ids` (each in [0, logits.size())) to -infinity: they cannot be sampled.
void SuppressTokens(std::span<const int32_t> ids, std::span<float> logits);

// Sets the logits of every id that `allowed` does not hold to -infinity (structured outputs).
void KeepAllowed(const TokenBitmask& allowed, std::span<float> logits);

// Applies repetition (prompt + output), presence and frequency (output only) penalties in place.
// history[0:prompt_len] is the prompt.
void ApplyPenalties(const SamplingParams& params, std::span<const int32_t> history, int prompt_len,
                    std::span<float> logits);

// Picks a token from (already penalised) logits. Greedy picks the lowest id among maxima.
int32_t SampleToken(const SamplingParams& params, uint64_t index, std::span<const float> logits);

// log_softmax(logits)[token] and the top-n (id, logprob), most likely first (ties: lower id).
TokenLogprob ComputeLogprob(std::span<const float> logits, int32_t token, int top_n);

}  // namespace attnres
