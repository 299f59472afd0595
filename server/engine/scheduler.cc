// Continuous batching: running sequences first (in admission order), then admissions.
#include "server/engine/scheduler.h"

#include <algorithm>
#include <span>

namespace attnres {

Scheduler::Scheduler(const EngineConfig& config, BlockManager* blocks)
    : config_(config), blocks_(blocks) {}

void Scheduler::AddWaiting(std::unique_ptr<Sequence> seq) { waiting_.push_back(std::move(seq)); }

std::vector<Sequence*> Scheduler::All() const {
  std::vector<Sequence*> all;
  for (const auto& s : running_) all.push_back(s.get());
  for (const auto& s : waiting_) all.push_back(s.get());
  return all;
}

bool Scheduler::Preempt(ScheduleResult* result, const Sequence* keep) {
  // The most recently admitted sequence goes back to the front of the queue; its K/V are
  // dropped (shared prefix pages only lose a reference) and recomputed from prompt + generated
  // tokens when it is readmitted, which may find its prompt pages still in the prefix cache.
  std::unique_ptr<Sequence> victim = std::move(running_.back());
  running_.pop_back();
  blocks_->Release(&victim->pages);
  victim->num_computed = 0;
  victim->prefix = PrefixCursor();
  ++victim->num_preemptions;
  const bool was_keep = victim.get() == keep;
  result->preempted.push_back(victim.get());
  waiting_.push_front(std::move(victim));
  return !was_keep;
}

void Scheduler::AddToBatch(ScheduleResult* result, Sequence* s, int num_tokens) {
  // A score-only request (max_tokens 0) computes its prompt and never samples.
  const bool sample = num_tokens == s->num_uncomputed() && s->request.stop.max_tokens > 0;
  result->seqs.push_back({s, num_tokens, sample});
  // Every token but a decode's single new one is a (re)computation of known tokens.
  result->num_prefill_tokens += sample && num_tokens == 1 && !s->in_prefill() ? 0 : num_tokens;
}

bool Scheduler::TryAdmit(Sequence* s, int budget, ScheduleResult* result) {
  // Only full prompt pages are cached, and at least one token is always computed so that the
  // step yields logits: a fully cached prompt recomputes its last page. Prompt logprobs need
  // every prompt position's logits, so such requests skip the cache.
  const int known = static_cast<int>(s->tokens.size());
  const int max_pages = s->request.output.prompt_logprobs >= 0
                            ? 0
                            : std::min(s->prompt_len, known - 1) / blocks_->page_size();
  const int hit_pages = blocks_->MatchPrefix(s->tokens, max_pages, &s->pages, &s->prefix);
  s->num_computed = hit_pages * blocks_->page_size();
  const int n = std::min(s->num_uncomputed(), budget);
  if (!blocks_->EnsureCapacity(&s->pages, s->num_computed + n)) {
    blocks_->Release(&s->pages);
    s->num_computed = 0;
    s->prefix = PrefixCursor();
    return false;
  }
  if (s->num_preemptions == 0) s->num_cached_tokens = s->num_computed;
  result->prefix_query_tokens += s->prompt_len;
  result->prefix_hit_tokens += s->num_computed;
  AddToBatch(result, s, n);
  return true;
}

ScheduleResult Scheduler::Schedule() {
  ScheduleResult result;
  int budget = config_.max_num_batched_tokens;
  for (size_t i = 0; i < running_.size() && budget > 0; ++i) {
    Sequence* s = running_[i].get();
    const int n = std::min(s->num_uncomputed(), budget);
    bool fits = true;
    while (!blocks_->EnsureCapacity(&s->pages, s->num_computed + n)) {
      if (!Preempt(&result, s)) {
        fits = false;  // s itself was the newest: it waits
        break;
      }
    }
    if (!fits) break;
    AddToBatch(&result, s, n);
    budget -= n;
  }
  // Admit waiting sequences, oldest first; none in a step that had to preempt.
  while (result.preempted.empty() && !waiting_.empty() && budget > 0 &&
         static_cast<int>(running_.size()) < config_.max_num_seqs) {
    Sequence* s = waiting_.front().get();
    if (!TryAdmit(s, budget, &result)) break;
    running_.push_back(std::move(waiting_.front()));
    waiting_.pop_front();
    budget -= result.seqs.back().num_tokens;
  }
  result.num_tokens = config_.max_num_batched_tokens - budget;
  return result;
}

void Scheduler::OnComputed(Sequence* seq) {
  const int n = std::min(seq->num_computed, seq->prompt_len);
  blocks_->Publish(std::span<const int32_t>(seq->tokens.data(), n), seq->pages, &seq->prefix);
}

std::unique_ptr<Sequence> Scheduler::Remove(Sequence* seq) {
  std::unique_ptr<Sequence> out;
  auto it =
      std::find_if(running_.begin(), running_.end(), [&](const auto& p) { return p.get() == seq; });
  if (it != running_.end()) {
    out = std::move(*it);
    running_.erase(it);
  } else {
    auto wit = std::find_if(waiting_.begin(), waiting_.end(),
                            [&](const auto& p) { return p.get() == seq; });
    if (wit == waiting_.end()) return nullptr;
    out = std::move(*wit);
    waiting_.erase(wit);
  }
  blocks_->Release(&out->pages);
  return out;
}

StepBatch BuildStepBatch(const ScheduleResult& schedule, int page_size) {
  StepBatch b;
  b.query_indptr.push_back(0);
  b.kv_page_indptr.push_back(0);
  for (const ScheduledSeq& ss : schedule.seqs) {
    const Sequence& s = *ss.seq;
    const int start = s.num_computed, end = start + ss.num_tokens;
    for (int p = start; p < end; ++p) {
      b.token_ids.push_back(s.tokens[p]);
      b.positions.push_back(p);
    }
    b.query_indptr.push_back(static_cast<int32_t>(b.token_ids.size()));
    const int num_pages = (end + page_size - 1) / page_size;
    b.kv_page_indices.insert(b.kv_page_indices.end(), s.pages.begin(), s.pages.begin() + num_pages);
    b.kv_page_indptr.push_back(static_cast<int32_t>(b.kv_page_indices.size()));
    b.kv_last_page_len.push_back(end - (num_pages - 1) * page_size);

    const GenerationRequest& r = s.request;
    SequenceBatchEntry e;
    e.num_new_tokens = ss.num_tokens;
    e.start_pos = start;
    e.sample = ss.sample;
    e.sampling = &r.sampling;
    e.sample_index = static_cast<uint64_t>(s.num_generated());
    e.history = &s.tokens;
    e.prompt_len = s.prompt_len;
    if (s.num_generated() < r.stop.min_tokens && !s.min_tokens_suppressed.empty()) {
      e.suppressed = &s.min_tokens_suppressed;
    }
    if (ss.sample) e.allowed = s.allowed.get();
    e.logprobs = r.output.logprobs;
    if (r.output.prompt_logprobs >= 0 && start < s.prompt_len && end > s.prompt_logprobs_sent) {
      e.prompt_logprobs = r.output.prompt_logprobs;
      if (end < s.prompt_len) e.next_prompt_token = s.tokens[end];
    }
    e.return_mix_weights = r.output.return_mix_weights;
    b.seqs.push_back(e);
  }
  return b;
}

}  // namespace attnres
