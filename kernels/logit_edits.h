// The step's logit edits and logprob requests as the GPU sampler reads them: plain structs, no
// CUDA, shared by the host side that builds them (models/logit_edits.h, which also applies them
// on the CPU as the kernels' twin) and kernels/logit_edits.cu. Rows are logit rows of the step
// (LogitRows::rows order); every array is ordered by logit row.
#pragma once

#include <cstddef>
#include <cstdint>

namespace attnres::kernels {

// A row whose ids get edits: penalties, a logit bias or suppressed ids.
struct EditedRow {
  int32_t logit_row = 0;
  int32_t begin = 0, end = 0;  // its edits: edits[begin:end], ids in any order
  float repetition = 1.0f;     // SamplingParams::repetition_penalty
  float presence = 0.0f, frequency = 0.0f;
};

// Flags of a LogitEdit.
inline constexpr uint32_t kEditBias = 1;      // add `bias`
inline constexpr uint32_t kEditSuppress = 2;  // -> -infinity (min_tokens)
inline constexpr uint32_t kEditSeen = 4;      // in the history: the repetition penalty applies
inline constexpr uint32_t kEditCounted = 8;   // the presence/frequency subtraction applies

// One id of one row, edited in the CPU sampler's order (models/host_sampler.cc): + bias, then
// -infinity if suppressed, then (with the row's penalties on) the repetition penalty if seen,
// then - (frequency * output_count + presence) if counted. Each (row, id) appears once.
struct LogitEdit {
  int32_t edited_row = 0;    // index into the EditedRow array
  int32_t id = 0;            // in [0, V)
  int32_t output_count = 0;  // times in the generated part of the history
  uint32_t flags = 0;
  float bias = 0.0f;
};

// A row with a token mask (structured outputs): ids whose bit is clear become -infinity. Its
// mask is words[word_offset : word_offset + ceil(V / 64)], bit id % 64 of word id / 64.
struct MaskedRow {
  int32_t logit_row = 0;
  int32_t word_offset = 0;
};

// The most alternatives a logprob row may ask for (the API's limit is no larger).
inline constexpr int kMaxTopLogprobs = 20;

// A row whose sampled token's logprob (of the unedited logits) is wanted, with top_n
// alternatives.
struct LogprobRow {
  int32_t logit_row = 0;
  int32_t top_n = 0;        // in [0, kMaxTopLogprobs]
  int32_t edited_row = -1;  // its EditedRow (whose edits kept the raw values), or -1
};

// The most alternatives any of rows[0:count] asks for (kernels::RawLogprobs' max_top_n).
inline int MaxTopN(const LogprobRow* rows, size_t count) {
  int n = 0;
  for (size_t i = 0; i < count; ++i) n = rows[i].top_n > n ? rows[i].top_n : n;
  return n;
}

// What the device returns for a LogprobRow: log_softmax of the raw row at the sampled token,
// and the top_n (id, logprob), most likely first (ties: lower id).
struct LogprobOut {
  int32_t token = 0;
  float logprob = 0.0f;
  int32_t ids[kMaxTopLogprobs];
  float logprobs[kMaxTopLogprobs];
};

}  // namespace attnres::kernels
