// The step's logit edits for the GPU sampler, built on the host from a StepBatch: penalties, logit
// bias, suppressed ids (min_tokens), token masks (structured outputs) and logprob requests, in the
// layout of kernels/logit_edits.h; and ApplyLogitEdits, the CPU twin of the kernels that apply
// them (it gives bit for bit what models/host_sampler.cc does to a row before SampleToken).
#pragma once

#include <span>
#include <vector>

#include "kernels/logit_edits.h"
#include "models/host_sampler.h"
#include "models/model_runner.h"

namespace attnres {

struct LogitEditPlan {
  std::vector<kernels::EditedRow> rows;       // rows with edits, by logit row
  std::vector<kernels::LogitEdit> edits;      // [sum of rows' ends - begins]
  std::vector<kernels::MaskedRow> masked;     // rows with a token mask, by logit row
  std::vector<uint64_t> mask_words;           // [masked.size() * WordsPerRow(V)]
  std::vector<kernels::LogprobRow> logprobs;  // rows wanting logprobs, by logit row

  bool empty() const { return edits.empty() && masked.empty() && logprobs.empty(); }
  static int WordsPerRow(int vocab) { return (vocab + 63) / 64; }
};

// Builds plans; keeps a vocab-sized scratch between calls (one per engine thread).
class LogitEditPlanner {
 public:
  explicit LogitEditPlanner(int vocab) : vocab_(vocab), slot_(vocab, -1) {}

  // The edits of every sampled row of `batch` whose logits are rows.rows[first_row[s]]. Rows
  // asking for prompt logprobs are not this plan's (the host sampler takes those steps). Ids
  // outside [0, vocab) in a history or a suppressed list are skipped.
  LogitEditPlan Plan(const StepBatch& batch, const LogitRows& rows);

 private:
  int vocab_;
  std::vector<int32_t> slot_;  // [vocab]: index into the plan's edits of the row being built, or -1
};

// CPU twin of kernels::EditLogits. logits: [R, V] in place; raw: [plan.edits.size()] receives
// each edited id's value before its edits.
void ApplyLogitEdits(const LogitEditPlan& plan, int vocab, std::span<float> logits,
                     std::span<float> raw);

}  // namespace attnres
