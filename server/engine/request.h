// What the engine knows about one generation request, and what it reports back: parameters in
// native types (no proto), the per-request output sink, and the handle used to cancel.
// Validation of ranges happens at the edge (server/grpc); the engine checks only what needs the
// model's limits (prompt and max_tokens against the context and the KV pool).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "models/sampling_params.h"
#include "server/structured/grammar.h"

namespace attnres {

struct StopCriteria {
  int max_tokens = 16;  // generated tokens, the stop token included; 0: score the prompt only
  // In [0, max_tokens]: EOS and stop ids cannot be sampled as tokens 0..min_tokens-1, and stop
  // strings count only from the text of token min_tokens-1 on.
  int min_tokens = 0;
  std::vector<std::string> stop_strings;   // text stops; the match is cut from the output
  std::vector<int32_t> stop_token_ids;     // token stops; the token is kept in the output
  bool ignore_eos = false;                 // when false, the model's EOS ids stop generation
};

struct OutputOptions {
  int logprobs = -1;            // -1: none; n >= 0: sampled token's logprob + n alternatives
  int prompt_logprobs = -1;     // -1: none; n >= 0: per prompt token after the first
  bool return_mix_weights = false;
  bool skip_special_tokens = true;
};

struct GenerationRequest {
  std::string request_id;
  std::vector<int32_t> prompt_ids;  // [prompt_len], each in [0, vocab_size)
  SamplingParams sampling;
  StopCriteria stop;
  OutputOptions output;
  // Structured output: every generated text is a prefix of a sentence of this grammar, and the
  // output ends (kStop) once the grammar is complete and nothing can follow. Null: free text.
  std::shared_ptr<const structured::Grammar> grammar;
  absl::Time deadline = absl::InfiniteFuture();
};

enum class FinishReason { kNone, kLength, kStop, kCancelled };
const char* FinishReasonName(FinishReason reason);

struct Usage {
  int prompt_tokens = 0;
  int completion_tokens = 0;
  int cached_prompt_tokens = 0;
};

// One chunk of output. The engine sends one per step in which the request produced tokens, and
// a last one with `finished` set (which may carry the final tokens too).
struct GenerationDelta {
  std::string text;                      // newly completed UTF-8 text
  std::vector<int32_t> token_ids;        // tokens produced since the previous delta
  std::vector<TokenLogprob> logprobs;    // one per token, when asked
  std::vector<std::vector<float>> mix_weights;  // one per token: all mixes, flattened in
                                                // forward order (see MixLayout), when asked
  std::vector<TokenLogprob> prompt_logprobs;    // first delta only, when asked
  bool finished = false;
  FinishReason finish_reason = FinishReason::kNone;
  std::string stop_reason;               // matched stop string / "token:<id>"; empty for EOS
  Usage usage;                           // final delta only
  absl::Status status;                   // non-OK: the request failed (final delta)
};

// Receives a request's output. Called on the engine thread: implementations must not block
// (queue and return).
class RequestSink {
 public:
  virtual ~RequestSink() = default;
  virtual void OnDelta(GenerationDelta delta) = 0;
};

// Shared between the submitter and the engine; Cancel() is safe from any thread and takes effect
// at the next engine step (the sink then receives a final delta with kCancelled).
class RequestHandle {
 public:
  void Cancel() { cancelled_.store(true, std::memory_order_relaxed); }
  bool cancelled() const { return cancelled_.load(std::memory_order_relaxed); }

 private:
  std::atomic<bool> cancelled_{false};
};

}  // namespace attnres
