// Random steps whose sampled rows ask for every logit edit (penalties over a history with
// repeats and out-of-range ids, logit bias, suppressed ids with repeats, token masks short and
// full, logprobs) beside rows that ask for none, rows that do not sample and rows that want
// prompt logprobs: for the edit plan's CPU test and the GPU sampler's kernel test.
#pragma once

#include <cstdint>
#include <deque>
#include <vector>

#include "models/host_sampler.h"
#include "models/model_runner.h"

namespace attnres::testing {

struct EditCase {
  int vocab = 0;
  // What the batch's entries point to (deques: stable addresses).
  std::deque<SamplingParams> params;
  std::deque<std::vector<int32_t>> histories, suppressed;
  std::deque<TokenBitmask> masks;
  StepBatch batch;            // token_ids, query_indptr and seqs only
  LogitRows rows;             // LogitRows::For(batch)
  std::vector<float> logits;  // [rows.rows.size(), vocab], seeded normal with ties and zeros
};

EditCase MakeEditCase(uint32_t seed, int vocab, int num_seqs);

}  // namespace attnres::testing
