// Logit edits for the GPU sampler: built from a StepBatch, and applied on the CPU as the
// kernels' twin.
#include "models/logit_edits.h"

#include <algorithm>
#include <limits>

namespace attnres {

LogitEditPlan LogitEditPlanner::Plan(const StepBatch& b, const LogitRows& rows) {
  LogitEditPlan p;
  const int words = LogitEditPlan::WordsPerRow(vocab_);
  for (int s = 0; s < b.num_seqs(); ++s) {
    const SequenceBatchEntry& e = b.seqs[s];
    const int row = rows.first_row[s];
    if (!e.sample || e.prompt_logprobs >= 0 || row < 0) continue;
    const SamplingParams& sp = *e.sampling;
    const int32_t edited = static_cast<int32_t>(p.rows.size());
    const int32_t begin = static_cast<int32_t>(p.edits.size());
    // The (row, id) edit, made on first use: slot_ maps ids to this row's edits.
    auto edit = [&](int32_t id) -> kernels::LogitEdit& {
      if (slot_[id] < 0) {
        slot_[id] = static_cast<int32_t>(p.edits.size());
        p.edits.push_back({.edited_row = edited, .id = id});
      }
      return p.edits[slot_[id]];
    };
    auto valid = [&](int32_t id) { return id >= 0 && id < vocab_; };
    for (const auto& [id, bias] : sp.logit_bias) {
      if (!valid(id)) continue;
      kernels::LogitEdit& x = edit(id);
      x.flags |= kernels::kEditBias;
      x.bias = bias;
    }
    if (e.suppressed != nullptr) {
      for (int32_t id : *e.suppressed) {
        if (valid(id)) edit(id).flags |= kernels::kEditSuppress;
      }
    }
    if (sp.has_penalties() && e.history != nullptr) {
      const bool repetition = sp.repetition_penalty != 1.0f;
      const std::vector<int32_t>& h = *e.history;
      for (size_t i = 0; i < h.size(); ++i) {
        const bool output = static_cast<int>(i) >= e.prompt_len;
        if (!valid(h[i]) || (!output && !repetition)) continue;
        kernels::LogitEdit& x = edit(h[i]);
        if (repetition) x.flags |= kernels::kEditSeen;
        if (output) {
          x.flags |= kernels::kEditCounted;
          ++x.output_count;
        }
      }
    }
    const int32_t end = static_cast<int32_t>(p.edits.size());
    if (end > begin) {
      p.rows.push_back({.logit_row = row,
                        .begin = begin,
                        .end = end,
                        .repetition = sp.repetition_penalty,
                        .presence = sp.presence_penalty,
                        .frequency = sp.frequency_penalty});
      for (int32_t i = begin; i < end; ++i) slot_[p.edits[i].id] = -1;
    }
    if (e.allowed != nullptr) {
      p.masked.push_back(
          {.logit_row = row, .word_offset = static_cast<int32_t>(p.mask_words.size())});
      const auto& w = e.allowed->words;  // words past the mask refuse their ids
      const size_t have = std::min(w.size(), static_cast<size_t>(words));
      p.mask_words.insert(p.mask_words.end(), w.begin(), w.begin() + have);
      p.mask_words.resize(p.mask_words.size() + (words - have), 0);
    }
    if (e.logprobs >= 0) {
      p.logprobs.push_back({.logit_row = row,
                            .top_n = std::min(e.logprobs, kernels::kMaxTopLogprobs),
                            .edited_row = end > begin ? edited : -1});
    }
  }
  return p;
}

void ApplyLogitEdits(const LogitEditPlan& p, int V, std::span<float> logits, std::span<float> raw) {
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  for (size_t i = 0; i < p.edits.size(); ++i) {
    const kernels::LogitEdit& e = p.edits[i];
    const kernels::EditedRow& r = p.rows[e.edited_row];
    float& x = logits[static_cast<size_t>(r.logit_row) * V + e.id];
    raw[i] = x;
    if (e.flags & kernels::kEditBias) x += e.bias;
    if (e.flags & kernels::kEditSuppress) x = kNegInf;
    if (e.flags & kernels::kEditSeen) x = x > 0 ? x / r.repetition : x * r.repetition;
    if (e.flags & kernels::kEditCounted) {
      x -= r.frequency * static_cast<float>(e.output_count) + r.presence;
    }
  }
  const int words = LogitEditPlan::WordsPerRow(V);
  for (const kernels::MaskedRow& m : p.masked) {
    const uint64_t* w = p.mask_words.data() + m.word_offset;
    float* row = logits.data() + static_cast<size_t>(m.logit_row) * V;
    for (int k = 0; k < words; ++k) {
      if (w[k] == ~uint64_t{0}) continue;
      for (int id = 64 * k; id < std::min(V, 64 * k + 64); ++id) {
        if (((w[k] >> (id & 63)) & 1) == 0) row[id] = kNegInf;
      }
    }
  }
}

}  // namespace attnres
