// Host-side sampling over a step's logit rows.
#include "models/host_sampler.h"

#include <algorithm>

#include "models/sampler.h"

namespace attnres {

LogitRows LogitRows::For(const StepBatch& b) {
  LogitRows p;
  p.first_row.assign(b.num_seqs(), -1);
  for (int s = 0; s < b.num_seqs(); ++s) {
    const SequenceBatchEntry& e = b.seqs[s];
    const int begin = b.query_indptr[s], end = b.query_indptr[s + 1];
    if (e.prompt_logprobs >= 0) {
      p.first_row[s] = static_cast<int>(p.rows.size());
      for (int r = begin; r < end; ++r) p.rows.push_back(r);
    } else if (e.sample) {
      p.first_row[s] = static_cast<int>(p.rows.size());
      p.rows.push_back(end - 1);
    }
    p.want_mix_weights |= e.sample && e.return_mix_weights;
  }
  return p;
}

int LogitRows::IndexOf(const StepBatch& b, int s, int r) const {
  return first_row[s] + (b.seqs[s].prompt_logprobs >= 0 ? r - b.query_indptr[s] : 0);
}

void EditRowOnHost(const SequenceBatchEntry& e, std::span<float> logits) {
  ApplyLogitBias(*e.sampling, logits);
  if (e.suppressed != nullptr) SuppressTokens(*e.suppressed, logits);
  if (e.allowed != nullptr) KeepAllowed(*e.allowed, logits);
  if (e.sampling->has_penalties() && e.history) {
    ApplyPenalties(*e.sampling, *e.history, e.prompt_len, logits);
  }
}

void SampleOnHost(const StepBatch& b, const LogitRows& plan, std::span<const float> logits, int V,
                  std::span<const float> mix, int W, StepOutput* out) {
  out->seqs.resize(b.num_seqs());
  // Sequences are independent (each writes its own output): one per thread at a time. Each
  // thread's row copy is made from the first row it samples, so idle threads allocate nothing.
#pragma omp parallel if (b.num_seqs() > 1)
  {
    std::vector<float> work;
#pragma omp for schedule(dynamic)
    for (int s = 0; s < b.num_seqs(); ++s) {
      const SequenceBatchEntry& e = b.seqs[s];
      SequenceStepOutput& o = out->seqs[s];
      if (plan.first_row[s] < 0) continue;
      const int begin = b.query_indptr[s], end = b.query_indptr[s + 1];
      auto row = [&](int r) {
        return logits.subspan(static_cast<size_t>(plan.IndexOf(b, s, r)) * V, V);
      };
      if (e.prompt_logprobs >= 0) {
        for (int r = begin; r < end; ++r) {
          const int32_t target = r + 1 < end ? b.token_ids[r + 1] : e.next_prompt_token;
          if (target < 0) break;
          o.prompt_logprobs.push_back(ComputeLogprob(row(r), target, e.prompt_logprobs));
        }
      }
      if (!e.sample) continue;
      const std::span<const float> raw = row(end - 1);
      work.assign(raw.begin(), raw.end());
      EditRowOnHost(e, work);
      o.token_id = SampleToken(*e.sampling, e.sample_index, work);
      if (e.logprobs >= 0) o.logprob = ComputeLogprob(raw, o.token_id, e.logprobs);
      if (e.return_mix_weights && W > 0 && !mix.empty()) {
        const size_t k = plan.IndexOf(b, s, end - 1);
        o.mix_weights.assign(mix.begin() + k * W, mix.begin() + (k + 1) * W);
      }
    }
  }
}

}  // namespace attnres
