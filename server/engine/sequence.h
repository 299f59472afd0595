// Sequence: the engine thread's state for one request: its tokens, how many are in the KV
// cache, its pages, its decoder and stop checker, and where its output goes. Touched only by the
// engine thread (the handle's cancel flag is the one shared bit).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "models/tokenizer.h"
#include "server/engine/block_manager.h"
#include "server/engine/request.h"
#include "server/engine/stop_checker.h"
#include "server/structured/token_constraint.h"

namespace attnres {

struct Sequence {
  Sequence(GenerationRequest req, std::shared_ptr<RequestSink> sink,
           std::shared_ptr<RequestHandle> handle, const Tokenizer& tokenizer);

  GenerationRequest request;
  std::shared_ptr<RequestSink> sink;
  std::shared_ptr<RequestHandle> handle;
  uint64_t arrival_order = 0;

  std::vector<int32_t> tokens;  // prompt + generated; [prompt_len + num_generated]
  int prompt_len = 0;
  int num_computed = 0;        // tokens whose K/V are in the cache
  std::vector<int32_t> pages;  // KV pages covering [0, num_computed + scheduled)
  PrefixCursor prefix;         // leading pages published to / taken from the prefix cache
  int num_cached_tokens = 0;   // prompt tokens served from the prefix cache at admission
  int num_preemptions = 0;
  int prompt_logprobs_sent = 0;  // prompt positions already reported (survives preemption)
  // What min_tokens keeps from being sampled: stop ids and EOS ids (unless ignore_eos), sorted,
  // unique; empty when min_tokens is 0.
  std::vector<int32_t> min_tokens_suppressed;
  // Structured output (request.grammar): the request's constraint, its state after the tokens
  // generated so far, and the mask of the step in flight (held until the step has sampled).
  std::unique_ptr<structured::TokenConstraint> constraint;
  structured::TokenConstraint::State grammar_state = 0;
  std::shared_ptr<const TokenBitmask> allowed;

  IncrementalDecoder decoder;
  StopChecker stop;
  GenerationDelta pending;  // output gathered this step, sent by the engine
  bool sent_first = false;

  // Timing for logs and metrics.
  absl::Time arrival_time;
  absl::Time first_scheduled_time = absl::InfinitePast();
  absl::Time first_token_time = absl::InfinitePast();
  absl::Time last_token_time = absl::InfinitePast();

  int num_generated() const { return static_cast<int>(tokens.size()) - prompt_len; }
  // Whether stop conditions apply to the last generated token (min_tokens reached).
  bool stops_armed() const { return num_generated() >= request.stop.min_tokens; }
  int num_uncomputed() const { return static_cast<int>(tokens.size()) - num_computed; }
  bool in_prefill() const { return num_computed < prompt_len; }
};

}  // namespace attnres
