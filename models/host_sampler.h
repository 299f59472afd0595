// What both backends share after the forward pass: which token rows of a step need logits
// (LogitRows), and turning those rows' logits into sampled tokens, logprobs, prompt logprobs and
// mix weights on the host (SampleOnHost). The CPU runner always samples here; the CUDA runner
// does for steps with prompt logprobs (its own sampler takes penalties, a logit bias,
// min_tokens, structured outputs, logprobs and mix weights through models/logit_edits.h, unless
// ATTNRES_GPU_EDITS=0).
#pragma once

#include <span>
#include <vector>

#include "models/model_runner.h"

namespace attnres {

struct LogitRows {
  std::vector<int> rows;       // token rows needing logits, in output order
  std::vector<int> first_row;  // [num_seqs]: index into rows of the sequence's first, or -1
  bool want_mix_weights = false;

  // Every row of a sequence asking for prompt logprobs, else the last row of one that samples.
  static LogitRows For(const StepBatch& batch);
  // Index into rows of token row r of sequence s (which must have logits there).
  int IndexOf(const StepBatch& batch, int s, int r) const;
};

// What a sampled row's logits get before SampleToken: the logit bias, suppressed ids, the token
// mask, then the penalties (models/sampler.h), in place.
void EditRowOnHost(const SequenceBatchEntry& entry, std::span<float> logits);

// logits: [rows.size(), vocab]; mix_weights: [rows.size(), num_weights] (may be empty).
void SampleOnHost(const StepBatch& batch, const LogitRows& plan, std::span<const float> logits,
                  int vocab, std::span<const float> mix_weights, int num_weights, StepOutput* out);

}  // namespace attnres
