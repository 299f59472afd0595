// EngineImpl: one engine thread running schedule -> execute -> update -> emit. Submit() only
// validates against the model's limits and queues; everything else happens on the thread.
// Statistics go to an optional EngineObserver; the per-request log line is written here.
#include "server/engine/engine.h"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <optional>
#include <thread>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "models/model_runner.h"
#include "server/engine/block_manager.h"
#include "server/engine/scheduler.h"
#include "spdlog/spdlog.h"

namespace attnres {

const char* FinishReasonName(FinishReason reason) {
  switch (reason) {
    case FinishReason::kNone:
      return "none";
    case FinishReason::kLength:
      return "length";
    case FinishReason::kStop:
      return "stop";
    case FinishReason::kCancelled:
      return "cancelled";
  }
  return "?";
}

Sequence::Sequence(GenerationRequest req, std::shared_ptr<RequestSink> s,
                   std::shared_ptr<RequestHandle> h, const Tokenizer& tokenizer)
    : request(std::move(req)),
      sink(std::move(s)),
      handle(std::move(h)),
      decoder(tokenizer, request.output.skip_special_tokens),
      stop(request.stop.stop_strings),
      arrival_time(absl::Now()) {
  tokens = request.prompt_ids;
  prompt_len = static_cast<int>(tokens.size());
}

namespace {

class EngineImpl final : public Engine {
 public:
  EngineImpl(EngineConfig config, std::unique_ptr<ModelRunner> runner, const Tokenizer* tokenizer,
             std::shared_ptr<EngineObserver> observer)
      : config_(std::move(config)),
        runner_(std::move(runner)),
        tokenizer_(tokenizer),
        observer_(observer != nullptr ? std::move(observer) : std::make_shared<EngineObserver>()),
        blocks_(runner_->kv_num_pages(), runner_->kv_page_size(), config_.enable_prefix_caching),
        scheduler_(config_, &blocks_) {
    for (int32_t id : runner_->config().eos_token_ids) eos_.insert(id);
    for (int32_t id : config_.extra_eos_token_ids) eos_.insert(id);
    PublishState();  // gauges start at the idle values (pool size included)
    thread_ = std::thread([this] { Loop(); });
  }
  ~EngineImpl() override { Shutdown(); }

  absl::StatusOr<std::shared_ptr<RequestHandle>> Submit(GenerationRequest request,
                                                        std::shared_ptr<RequestSink> sink) override;
  void Drain() override;
  void Shutdown() override;
  bool healthy() const override { return healthy_.load(); }
  const ModelConfig& model_config() const override { return runner_->config(); }
  const Tokenizer& tokenizer() const override { return *tokenizer_; }
  const EngineConfig& config() const override { return config_; }
  int64_t kv_num_pages() const override { return blocks_.num_pages(); }
  int64_t num_parameters() const override { return runner_->num_parameters(); }
  absl::Duration retry_after() const override;
  std::string device_name() const override { return runner_->device_name(); }
  std::string compute_dtype() const override { return runner_->compute_dtype(); }

 private:
  // What min_tokens keeps from being sampled (Sequence::min_tokens_suppressed).
  std::vector<int32_t> MinTokensSuppressed(const GenerationRequest& r) const;
  absl::Status Validate(const GenerationRequest& r, const std::vector<int32_t>& suppressed) const;
  // A request with a grammar gets its constraint on the engine thread, before its first mask,
  // over the masks of an equal grammar's recent requests where there are some.
  void AttachConstraint(Sequence* s);
  // Fills each constrained sequence's mask for this step; a sequence whose mask fails finishes
  // with the error and leaves the schedule.
  void MaskConstrained(ScheduleResult* schedule);
  absl::Status Admit(std::unique_ptr<Sequence> seq);
  void Loop();
  void PublishState();
  void SweepCancelled();
  void Step();
  void ProcessSample(Sequence* s, const SequenceStepOutput& out);
  void ProcessPromptLogprobs(Sequence* s, int start, const SequenceStepOutput& out);
  void Finish(Sequence* s, FinishReason reason, std::string stop_reason, absl::Status status);
  void Report(const Sequence& s, const GenerationDelta& d);  // observer + log line
  void FailAll(const absl::Status& status);

  const EngineConfig config_;
  std::unique_ptr<ModelRunner> runner_;
  const Tokenizer* tokenizer_;
  const std::shared_ptr<EngineObserver> observer_;  // never null (a no-op one by default)
  absl::flat_hash_set<int32_t> eos_;
  // Structured outputs (engine thread): the vocabulary grammars match against, built by the
  // first request that has one, and the masks of recent grammars, by the grammar's text, most
  // recent first. Requests with the same schema share a grammar's automaton and masks, so each
  // state's mask is computed once for all of them.
  std::shared_ptr<const structured::GrammarVocabulary> vocabulary_;
  std::vector<std::pair<std::string, std::shared_ptr<structured::GrammarMasks>>> recent_masks_;
  BlockManager blocks_;
  Scheduler scheduler_;              // engine thread only
  std::vector<Sequence*> finished_;  // this step's, removed after emitting

  mutable std::mutex mu_;
  std::condition_variable cv_;       // new work or stop
  std::condition_variable idle_cv_;  // engine became idle
  std::deque<std::unique_ptr<Sequence>> inbox_;
  bool draining_ = false;
  bool stop_ = false;
  bool idle_ = true;
  uint64_t next_order_ = 0;
  std::atomic<bool> healthy_{true};
  std::atomic<int> num_waiting_{0};                 // scheduler's waiting count, for Submit's bound
  std::atomic<int64_t> completion_interval_us_{0};  // EWMA between finishes (engine thread)
  absl::Time last_finish_time_ = absl::InfinitePast();  // engine thread only
  std::thread thread_;
};

std::vector<int32_t> EngineImpl::MinTokensSuppressed(const GenerationRequest& r) const {
  if (r.stop.min_tokens <= 0) return {};
  std::vector<int32_t> ids = r.stop.stop_token_ids;
  if (!r.stop.ignore_eos) ids.insert(ids.end(), eos_.begin(), eos_.end());
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  return ids;
}

absl::Status EngineImpl::Validate(const GenerationRequest& r,
                                  const std::vector<int32_t>& suppressed) const {
  const int V = runner_->config().vocab_size;
  const int prompt_len = static_cast<int>(r.prompt_ids.size());
  if (prompt_len == 0) return absl::InvalidArgumentError("prompt: must not be empty");
  for (int i = 0; i < prompt_len; ++i) {
    if (r.prompt_ids[i] < 0 || r.prompt_ids[i] >= V) {
      return absl::InvalidArgumentError(absl::StrCat("prompt.token_ids[", i, "]: ", r.prompt_ids[i],
                                                     " is outside [0, vocab_size=", V, ")"));
    }
  }
  if (r.stop.max_tokens < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("max_tokens: must be >= 0, got ", r.stop.max_tokens));
  }
  const int64_t total = int64_t{prompt_len} + r.stop.max_tokens;
  if (total > config_.max_model_len) {
    return absl::InvalidArgumentError(absl::StrCat(
        "max_tokens: prompt (", prompt_len, " tokens) + max_tokens (", r.stop.max_tokens,
        ") must be <= max_model_len (", config_.max_model_len, ")"));
  }
  if (r.stop.min_tokens < 0 || r.stop.min_tokens > r.stop.max_tokens) {
    return absl::InvalidArgumentError(absl::StrCat(
        "min_tokens: must be in [0, max_tokens=", r.stop.max_tokens, "], got ", r.stop.min_tokens));
  }
  // The sampler writes these ids' logits, so they must lie inside the vocabulary.
  for (const auto& [id, bias] : r.sampling.logit_bias) {
    if (id < 0 || id >= V) {
      return absl::InvalidArgumentError(absl::StrCat("sampling.logit_bias: token id ", id,
                                                     " is outside [0, vocab_size=", V, ")"));
    }
  }
  for (int32_t id : suppressed) {
    if (id < 0 || id >= V) {
      return absl::InvalidArgumentError(
          absl::StrCat("stop_token_ids: ", id, " is outside [0, vocab_size=", V, ")"));
    }
  }
  if (static_cast<int>(suppressed.size()) >= V) {
    return absl::InvalidArgumentError(absl::StrCat(
        "min_tokens: the stop ids and EOS ids cover all ", V,
        " tokens of the vocabulary, so no token could be generated before min_tokens"));
  }
  if (r.grammar != nullptr && r.stop.max_tokens > 0) {
    structured::GrammarAutomaton automaton(r.grammar);  // its first state only: cheap
    if (automaton.IsComplete(automaton.initial()) && !automaton.CanContinue(automaton.initial())) {
      return absl::InvalidArgumentError(
          "structured output: the grammar accepts only the empty text, so nothing can be "
          "generated");
    }
  }
  if (blocks_.PagesFor(total) > blocks_.num_pages()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "max_tokens: prompt + max_tokens (", total, " tokens) needs ", blocks_.PagesFor(total),
        " KV pages but the whole cache has ", blocks_.num_pages()));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<RequestHandle>> EngineImpl::Submit(
    GenerationRequest request, std::shared_ptr<RequestSink> sink) {
  std::vector<int32_t> suppressed = MinTokensSuppressed(request);
  absl::Status status = Validate(request, suppressed);
  auto handle = std::make_shared<RequestHandle>();
  if (status.ok()) {
    auto seq = std::make_unique<Sequence>(std::move(request), std::move(sink), handle, *tokenizer_);
    seq->min_tokens_suppressed = std::move(suppressed);
    status = Admit(std::move(seq));
  }
  if (!status.ok()) {
    observer_->OnRejected(status.code());
    return status;
  }
  return handle;
}

absl::Status EngineImpl::Admit(std::unique_ptr<Sequence> seq) {
  std::lock_guard<std::mutex> lock(mu_);
  if (draining_ || stop_) return absl::UnavailableError("server is shutting down");
  if (!healthy_) return absl::UnavailableError("engine failed; see server logs");
  if (static_cast<int>(inbox_.size()) + num_waiting_.load() >= config_.max_queued_requests) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "queue is full (", config_.max_queued_requests, " waiting requests); retry after ",
        absl::ToInt64Milliseconds(retry_after()), " ms"));
  }
  seq->arrival_order = next_order_++;
  inbox_.push_back(std::move(seq));
  idle_ = false;
  cv_.notify_one();
  return absl::OkStatus();
}

absl::Duration EngineImpl::retry_after() const {
  const int64_t us = completion_interval_us_.load(std::memory_order_relaxed);
  if (us <= 0) return absl::Seconds(1);  // nothing finished yet: no better guess
  return std::clamp(absl::Microseconds(us), absl::Milliseconds(10), absl::Seconds(30));
}

void EngineImpl::Loop() {
  while (true) {
    {
      std::unique_lock<std::mutex> lock(mu_);
      while (inbox_.empty() && scheduler_.idle()) {
        idle_ = true;  // Drain() waits for this
        idle_cv_.notify_all();
        if (stop_) return;
        cv_.wait(lock);
      }
      while (!inbox_.empty()) {
        scheduler_.AddWaiting(std::move(inbox_.front()));
        inbox_.pop_front();
      }
      // Under the lock, so Submit's bound never misses requests moved out of the inbox.
      num_waiting_.store(scheduler_.num_waiting());
    }
    SweepCancelled();
    if (!scheduler_.idle()) Step();
    num_waiting_.store(scheduler_.num_waiting());
    PublishState();
  }
}

void EngineImpl::PublishState() {
  EngineState state;
  state.num_running = scheduler_.num_running();
  {
    std::lock_guard<std::mutex> lock(mu_);
    state.num_waiting = scheduler_.num_waiting() + static_cast<int>(inbox_.size());
  }
  state.kv_pages_used = blocks_.num_used();
  state.kv_pages_total = blocks_.num_pages();
  state.kv_pages_cached = blocks_.num_cached();
  observer_->OnState(state);
}

void EngineImpl::SweepCancelled() {
  const absl::Time now = absl::Now();
  for (Sequence* s : scheduler_.All()) {
    if (s->handle->cancelled()) {
      Finish(s, FinishReason::kCancelled, "", absl::OkStatus());
    } else if (now > s->request.deadline) {
      Finish(s, FinishReason::kCancelled, "",
             absl::DeadlineExceededError(s->first_scheduled_time == absl::InfinitePast()
                                             ? "deadline exceeded while queued"
                                             : "deadline exceeded while generating"));
    }
  }
  for (Sequence* s : finished_) scheduler_.Remove(s);
  finished_.clear();
}

void EngineImpl::Step() {
  const absl::Time start = absl::Now();
  ScheduleResult schedule = scheduler_.Schedule();
  // Submit's bound sees the queue as this schedule left it before any token of the step reaches
  // a client: a client that has read its first token must not find its request still counted
  // as waiting (a burst right after it was refused one request early).
  num_waiting_.store(scheduler_.num_waiting());
  if (schedule.seqs.empty()) return;
  for (const ScheduledSeq& ss : schedule.seqs) {
    if (ss.seq->first_scheduled_time == absl::InfinitePast()) ss.seq->first_scheduled_time = start;
  }
  MaskConstrained(&schedule);
  if (schedule.seqs.empty()) {  // every sequence failed its mask
    for (Sequence* s : finished_) scheduler_.Remove(s);
    finished_.clear();
    return;
  }
  const StepBatch batch = BuildStepBatch(schedule, blocks_.page_size());
  absl::StatusOr<StepOutput> out = runner_->Execute(batch);
  if (!out.ok()) {
    FailAll(out.status());
    return;
  }
  for (size_t i = 0; i < schedule.seqs.size(); ++i) {
    Sequence* s = schedule.seqs[i].seq;
    const int first = s->num_computed;
    s->num_computed += schedule.seqs[i].num_tokens;
    scheduler_.OnComputed(s);
    if (batch.seqs[i].prompt_logprobs >= 0) ProcessPromptLogprobs(s, first, out->seqs[i]);
    if (schedule.seqs[i].sample) {
      s->allowed.reset();
      ProcessSample(s, out->seqs[i]);
    } else if (s->request.stop.max_tokens == 0 && s->num_uncomputed() == 0) {
      Finish(s, FinishReason::kLength, "", absl::OkStatus());  // scored, nothing to generate
    }
  }
  // Emit what each sequence produced this step (finished ones already sent their last delta).
  for (const ScheduledSeq& ss : schedule.seqs) {
    Sequence* s = ss.seq;
    if (std::find(finished_.begin(), finished_.end(), s) != finished_.end()) continue;
    GenerationDelta& d = s->pending;
    if (d.token_ids.empty() && d.prompt_logprobs.empty()) continue;
    s->sink->OnDelta(std::move(d));
    d = GenerationDelta();
  }
  for (Sequence* s : finished_) scheduler_.Remove(s);
  finished_.clear();

  StepStats stats;
  stats.num_seqs = static_cast<int>(schedule.seqs.size());
  stats.num_tokens = schedule.num_tokens;
  stats.num_prefill_tokens = schedule.num_prefill_tokens;
  for (const ScheduledSeq& ss : schedule.seqs) stats.num_generated_tokens += ss.sample ? 1 : 0;
  stats.num_preempted = static_cast<int>(schedule.preempted.size());
  stats.prefix_query_tokens = schedule.prefix_query_tokens;
  stats.prefix_hit_tokens = schedule.prefix_hit_tokens;
  stats.duration_s = absl::ToDoubleSeconds(absl::Now() - start);
  observer_->OnStep(stats);
}

void EngineImpl::AttachConstraint(Sequence* s) {
  const GenerationRequest& r = s->request;
  if (vocabulary_ == nullptr) {
    vocabulary_ =
        structured::GrammarVocabulary::FromTokenizer(*tokenizer_, runner_->config().vocab_size);
  }
  constexpr size_t kRecentGrammars = 8;
  std::string key = r.grammar->ToString();
  auto it = std::find_if(recent_masks_.begin(), recent_masks_.end(),
                         [&](const auto& entry) { return entry.first == key; });
  std::shared_ptr<structured::GrammarMasks> masks;
  // An automaton that many requests have grown towards its limit starts afresh, so that one
  // request never fails for the states of others (theirs keep the old one).
  const int max_states = structured::AutomatonLimits().max_states;
  if (it != recent_masks_.end() && it->second->automaton().num_states() <= max_states / 2) {
    masks = it->second;
  } else {
    masks = std::make_shared<structured::GrammarMasks>(r.grammar, vocabulary_);
  }
  if (it != recent_masks_.end()) recent_masks_.erase(it);
  recent_masks_.insert(recent_masks_.begin(), {std::move(key), masks});
  if (recent_masks_.size() > kRecentGrammars) recent_masks_.pop_back();
  // What may end the output once the grammar is complete: the EOS ids (unless ignored) and the
  // stop ids. A grammar that is complete where nothing can follow ends it without them.
  std::vector<int32_t> terminators = r.stop.stop_token_ids;
  if (!r.stop.ignore_eos) terminators.insert(terminators.end(), eos_.begin(), eos_.end());
  s->constraint =
      std::make_unique<structured::TokenConstraint>(std::move(masks), std::move(terminators));
  s->grammar_state = s->constraint->initial();
}

void EngineImpl::MaskConstrained(ScheduleResult* schedule) {
  std::vector<ScheduledSeq> kept;
  kept.reserve(schedule->seqs.size());
  for (const ScheduledSeq& ss : schedule->seqs) {
    Sequence* s = ss.seq;
    if (s->request.grammar != nullptr && s->constraint == nullptr) AttachConstraint(s);
    if (ss.sample && s->constraint != nullptr) {
      absl::StatusOr<std::shared_ptr<const TokenBitmask>> mask =
          s->constraint->AllowedTokens(s->grammar_state);
      absl::Status status = mask.status();
      if (mask.ok() && std::none_of((*mask)->words.begin(), (*mask)->words.end(),
                                    [](uint64_t w) { return w != 0; })) {
        status = absl::FailedPreconditionError(
            "structured output: no token of the vocabulary can continue the output here");
      }
      if (!status.ok()) {
        Finish(s, FinishReason::kNone, "", status);
        schedule->num_tokens -= ss.num_tokens;
        if (ss.num_tokens > 1 || s->in_prefill()) schedule->num_prefill_tokens -= ss.num_tokens;
        continue;
      }
      s->allowed = *std::move(mask);
    }
    kept.push_back(ss);
  }
  schedule->seqs = std::move(kept);
}

void EngineImpl::ProcessPromptLogprobs(Sequence* s, int start, const SequenceStepOutput& out) {
  for (size_t k = 0; k < out.prompt_logprobs.size(); ++k) {
    const int pos = start + static_cast<int>(k) + 1;
    if (pos >= s->prompt_len) break;
    if (pos <= s->prompt_logprobs_sent) continue;
    s->pending.prompt_logprobs.push_back(out.prompt_logprobs[k]);
    s->prompt_logprobs_sent = pos;
  }
}

void EngineImpl::ProcessSample(Sequence* s, const SequenceStepOutput& out) {
  const GenerationRequest& r = s->request;
  const int32_t token = out.token_id;
  s->tokens.push_back(token);
  const absl::Time now = absl::Now();
  if (s->first_token_time == absl::InfinitePast()) {
    s->first_token_time = now;
    observer_->OnFirstToken(absl::ToDoubleSeconds(now - s->arrival_time));
  } else {
    observer_->OnInterTokenLatency(absl::ToDoubleSeconds(now - s->last_token_time));
  }
  s->last_token_time = now;
  GenerationDelta& d = s->pending;
  d.token_ids.push_back(token);
  if (r.output.logprobs >= 0) d.logprobs.push_back(out.logprob);
  if (r.output.return_mix_weights && !out.mix_weights.empty()) {
    d.mix_weights.push_back(out.mix_weights);
  }
  // Before min_tokens the sampler suppressed EOS and stop ids; stop strings wait for it here.
  const bool armed = s->stops_armed();
  if (armed && !r.stop.ignore_eos && eos_.contains(token)) {
    Finish(s, FinishReason::kStop, "", absl::OkStatus());
    return;
  }
  if (s->stop.Append(s->decoder.Push(token), armed)) {
    Finish(s, FinishReason::kStop, s->stop.matched(), absl::OkStatus());
    return;
  }
  if (armed && std::find(r.stop.stop_token_ids.begin(), r.stop.stop_token_ids.end(), token) !=
                   r.stop.stop_token_ids.end()) {
    Finish(s, FinishReason::kStop, absl::StrCat("token:", token), absl::OkStatus());
    return;
  }
  if (s->constraint != nullptr) {
    // The sampler drew from the mask, so the grammar takes the token; the output ends where the
    // grammar is complete and nothing can follow (as if the model had sampled EOS there).
    absl::StatusOr<structured::TokenConstraint::State> next =
        s->constraint->Accept(s->grammar_state, token);
    if (next.ok() && *next == structured::GrammarAutomaton::kDead) {
      next = absl::InternalError(
          absl::StrCat("structured output: sampled token ", token, ", which the grammar refuses"));
    }
    if (!next.ok()) {
      Finish(s, FinishReason::kNone, "", next.status());
      return;
    }
    s->grammar_state = *next;
    if (s->constraint->IsFinished(s->grammar_state)) {
      Finish(s, FinishReason::kStop, "", absl::OkStatus());
      return;
    }
  }
  if (s->num_generated() >= r.stop.max_tokens ||
      static_cast<int>(s->tokens.size()) >= config_.max_model_len) {
    Finish(s, FinishReason::kLength, "", absl::OkStatus());
    return;
  }
  d.text += s->stop.TakeReady(/*flush=*/false);
}

void EngineImpl::Finish(Sequence* s, FinishReason reason, std::string stop_reason,
                        absl::Status status) {
  GenerationDelta& d = s->pending;
  // Unless a stop string already cut the text, the bytes the decoder still holds may complete
  // (or hit) a stop string.
  if (s->stop.matched().empty() && s->stop.Append(s->decoder.Flush(), s->stops_armed())) {
    reason = FinishReason::kStop;
    stop_reason = s->stop.matched();
  }
  d.text += s->stop.TakeReady(/*flush=*/true);
  d.finished = true;
  d.finish_reason = reason;
  d.stop_reason = std::move(stop_reason);
  d.status = std::move(status);
  d.usage.prompt_tokens = s->prompt_len;
  d.usage.completion_tokens = s->num_generated();
  d.usage.cached_prompt_tokens = s->num_cached_tokens;
  Report(*s, d);
  s->sink->OnDelta(std::move(d));
  s->pending = GenerationDelta();
  finished_.push_back(s);
}

void EngineImpl::Report(const Sequence& s, const GenerationDelta& d) {
  const absl::Time now = absl::Now();
  RequestStats r;
  r.finish_reason = d.finish_reason;
  r.code = d.status.code();
  r.prompt_tokens = s.prompt_len;
  r.completion_tokens = s.num_generated();
  r.cached_prompt_tokens = s.num_cached_tokens;
  r.num_preemptions = s.num_preemptions;
  auto since_arrival = [&](absl::Time t) {
    return t == absl::InfinitePast() ? -1.0 : absl::ToDoubleSeconds(t - s.arrival_time);
  };
  r.queue_s = since_arrival(s.first_scheduled_time);
  r.ttft_s = since_arrival(s.first_token_time);
  r.e2e_s = since_arrival(now);
  observer_->OnRequestFinished(r);

  // The completion interval (for retry_after) as an EWMA with weight 1/8 on the newest.
  if (last_finish_time_ != absl::InfinitePast()) {
    const int64_t us = absl::ToInt64Microseconds(now - last_finish_time_);
    const int64_t old = completion_interval_us_.load(std::memory_order_relaxed);
    completion_interval_us_.store(old == 0 ? us : old + (us - old) / 8, std::memory_order_relaxed);
  }
  last_finish_time_ = now;

  spdlog::info(
      "request_id={} finish={} prompt_tokens={} cached_prompt_tokens={} completion_tokens={} "
      "preemptions={} queue_ms={:.1f} ttft_ms={:.1f} e2e_ms={:.1f} tpot_ms={:.2f}{}",
      s.request.request_id, FinishReasonName(d.finish_reason), r.prompt_tokens,
      r.cached_prompt_tokens, r.completion_tokens, r.num_preemptions,
      1e3 * (r.queue_s >= 0 ? r.queue_s : r.e2e_s), 1e3 * r.ttft_s, 1e3 * r.e2e_s,
      r.completion_tokens > 1 ? 1e3 * (r.e2e_s - r.ttft_s) / (r.completion_tokens - 1) : 0.0,
      d.status.ok() ? "" : absl::StrCat(" status=\"", d.status.ToString(), "\""));
}

void EngineImpl::FailAll(const absl::Status& status) {
  spdlog::error("model runner failed: {}; failing all requests", status.ToString());
  healthy_ = false;
  const absl::Status internal =
      absl::InternalError(absl::StrCat("model execution failed: ", status.message()));
  for (Sequence* s : scheduler_.All()) Finish(s, FinishReason::kNone, "", internal);
  for (Sequence* s : finished_) scheduler_.Remove(s);
  finished_.clear();
}

void EngineImpl::Drain() {
  std::unique_lock<std::mutex> lock(mu_);
  draining_ = true;
  idle_cv_.wait(lock, [&] { return idle_ && inbox_.empty(); });
}

void EngineImpl::Shutdown() {
  Drain();
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    cv_.notify_one();
  }
  if (thread_.joinable()) thread_.join();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Engine>> Engine::Create(EngineConfig config,
                                                       std::unique_ptr<ModelRunner> runner,
                                                       const Tokenizer* tokenizer,
                                                       std::shared_ptr<EngineObserver> observer) {
  const ModelConfig& mc = runner->config();
  if (config.max_model_len <= 0 || config.max_model_len > mc.max_position_embeddings) {
    config.max_model_len = mc.max_position_embeddings;
  }
  if (config.max_num_seqs < 1 || config.max_num_batched_tokens < 1 ||
      config.max_queued_requests < 1) {
    return absl::InvalidArgumentError(
        "max_num_seqs, max_num_batched_tokens and max_queued_requests must be >= 1");
  }
  config.kv_page_size = runner->kv_page_size();
  return std::unique_ptr<Engine>(
      new EngineImpl(std::move(config), std::move(runner), tokenizer, std::move(observer)));
}

}  // namespace attnres
