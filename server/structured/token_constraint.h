// Turns a Grammar into what the sampler needs at each step: the set of tokens whose bytes can
// come next (a TokenBitmask), and the state after a sampled token.
//
// GrammarAutomaton runs the grammar as a pushdown matcher over bytes (sets of stacks of rule
// positions, interned, so equal stacks are one id and a set of stacks is one state id) and
// builds the byte DFA lazily: each (state, byte) transition is computed once and then looked up.
// GrammarVocabulary holds the tokenizer's tokens sorted by their bytes, so the mask of a state is
// one walk over the sorted list in which tokens sharing a prefix share its transitions, and a
// prefix the grammar refuses jumps past every token that starts with it. GrammarMasks caches the
// masks of recent states, so a state met again (inside a JSON string, every token leads back to
// the same state; the next request with the same schema) costs a lookup. TokenConstraint is one
// request's view: the shared masks with its own terminators.
//
// Not thread-safe: the engine thread owns the GrammarMasks and every TokenConstraint; the Grammar
// and the GrammarVocabulary they read are immutable and shared.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "models/sampling_params.h"
#include "models/tokenizer.h"
#include "server/structured/grammar.h"

namespace attnres::structured {

// The vocabulary as the grammar sees it: every token's bytes, except special tokens and tokens
// with no bytes, which never match inside a grammar (they may only end it: see terminators).
// Excluded tokens have empty bytes here.
class GrammarVocabulary {
 public:
  // vocab_size: the model's (may exceed the tokenizer's; ids past the tokenizer are excluded).
  static std::shared_ptr<const GrammarVocabulary> FromTokenizer(const Tokenizer& tokenizer,
                                                                int32_t vocab_size);
  // token_bytes[id]; ids listed in `excluded` never match.
  GrammarVocabulary(std::vector<std::string> token_bytes, std::span<const int32_t> excluded);

  int32_t vocab_size() const { return vocab_size_; }
  const std::string& bytes(int32_t id) const { return bytes_[id]; }
  // Matchable ids in byte order, and for each the length of the prefix it shares with the one
  // before it.
  const std::vector<int32_t>& sorted_ids() const { return sorted_; }
  const std::vector<int32_t>& shared_prefix() const { return shared_prefix_; }

 private:
  friend class GrammarMasks;
  int32_t vocab_size_ = 0;
  std::vector<std::string> bytes_;      // [vocab_size]
  std::vector<int32_t> sorted_;         // [matchable tokens]
  std::vector<int32_t> shared_prefix_;  // [matchable tokens]
  // What a mask walk reads, in one piece so that it is read in order: sorted token i's bytes
  // past its shared prefix are new_bytes_[new_bytes_end_[i - 1], new_bytes_end_[i]).
  std::string new_bytes_;                // [trie edges]
  std::vector<uint32_t> new_bytes_end_;  // [matchable tokens]
  // [trie edges]: for new byte e of sorted token i, which ends its prefix of d + 1 bytes, the
  // first sorted index after i whose token does not start with that prefix (shared_prefix <= d):
  // where a walk that the grammar refuses at e goes on.
  std::vector<uint32_t> skip_;
  int32_t max_token_bytes_ = 0;
};

struct AutomatonLimits {
  // Sets of stacks (DFA states) one request may build. Each holds 256 transitions (1 KiB), so
  // this bounds a request's automaton to 16 MiB.
  int max_states = 1 << 14;
  int max_stacks = 1 << 18;  // distinct stacks (stack nodes) one request may build
};

// The grammar's lazily built byte DFA. State ids are dense, from 0; kDead is the state of every
// refused input.
class GrammarAutomaton {
 public:
  using State = int32_t;
  static constexpr State kDead = -1;

  GrammarAutomaton(std::shared_ptr<const Grammar> grammar, AutomatonLimits limits = {});
  ~GrammarAutomaton();

  State initial() const { return initial_; }
  // The state after `byte`; kDead when the grammar refuses it. Errors only when a limit is hit.
  absl::StatusOr<State> Advance(State state, uint8_t byte);
  absl::StatusOr<State> AdvanceBytes(State state, std::string_view bytes);
  // The input so far is a whole sentence of the grammar.
  bool IsComplete(State state) const;
  // Some byte can follow.
  bool CanContinue(State state) const;
  // Whether the whole of `text` is a sentence (for tests and checks).
  absl::StatusOr<bool> Accepts(std::string_view text);
  int num_states() const;

 private:
  friend class GrammarMasks;  // its mask walk reads filled transitions without a call
  struct Impl;
  std::unique_ptr<Impl> impl_;
  State initial_ = kDead;
};

// The masks of one grammar's states over one vocabulary, before terminators: the automaton and
// a cache of recent masks (256 by default: 4 MiB at a 128 K vocabulary, enough for the states a
// few hundred tokens of JSON visit). Requests with equal grammars can share one (the engine
// keeps the recent ones), so a state's mask is computed once for all of them.
class GrammarMasks {
 public:
  using State = GrammarAutomaton::State;

  GrammarMasks(std::shared_ptr<const Grammar> grammar,
               std::shared_ptr<const GrammarVocabulary> vocabulary, AutomatonLimits limits = {},
               int cache_entries = 256);

  GrammarAutomaton& automaton() { return automaton_; }
  const GrammarAutomaton& automaton() const { return automaton_; }
  const GrammarVocabulary& vocabulary() const { return *vocabulary_; }
  // The tokens whose bytes the grammar accepts from `state`. Errors: kDead, an unknown state, a
  // limit of the automaton. The pointer stays valid while held.
  absl::StatusOr<std::shared_ptr<const TokenBitmask>> Mask(State state);

 private:
  absl::StatusOr<std::shared_ptr<const TokenBitmask>> ComputeMask(State state);
  void CacheMask(State state, std::shared_ptr<const TokenBitmask> mask);

  GrammarAutomaton automaton_;
  std::shared_ptr<const GrammarVocabulary> vocabulary_;
  int cache_entries_;
  uint64_t clock_ = 0;
  struct CachedMask {
    std::shared_ptr<const TokenBitmask> mask;
    uint64_t last_used = 0;
  };
  absl::flat_hash_map<State, CachedMask> masks_;
  std::vector<State> walk_;  // [max token bytes + 1]: a mask walk's state at each prefix depth
};

// One request's constraint: its grammar's masks (shared or its own) and the ids that may end the
// output once the grammar is complete (EOS and stop token ids).
class TokenConstraint {
 public:
  using State = GrammarAutomaton::State;

  TokenConstraint(std::shared_ptr<GrammarMasks> masks, std::vector<int32_t> terminators);
  // With masks of its own.
  TokenConstraint(std::shared_ptr<const Grammar> grammar,
                  std::shared_ptr<const GrammarVocabulary> vocabulary,
                  std::vector<int32_t> terminators, AutomatonLimits limits = {},
                  int mask_cache_entries = 32);

  State initial() const { return automaton().initial(); }
  // The tokens that may be sampled in `state`: those whose bytes the grammar accepts from there,
  // plus the terminators exactly when the state is complete (a terminator ends the output, so it
  // is never allowed as its bytes, even where they would match). The pointer stays valid while
  // held.
  absl::StatusOr<std::shared_ptr<const TokenBitmask>> AllowedTokens(State state);
  // The state after `token`. A terminator leaves the state as it is (the output ends there);
  // a token the grammar refuses gives kDead.
  absl::StatusOr<State> Accept(State state, int32_t token);
  bool IsComplete(State state) const { return automaton().IsComplete(state); }
  // Nothing but a terminator can follow: the output is finished.
  bool IsFinished(State state) const {
    return automaton().IsComplete(state) && !automaton().CanContinue(state);
  }
  bool IsTerminator(int32_t token) const;

 private:
  const GrammarAutomaton& automaton() const { return masks_->automaton(); }

  std::shared_ptr<GrammarMasks> masks_;
  std::vector<int32_t> terminators_;  // sorted, unique, within the vocabulary
  // Masks the terminators change (complete states, or a terminator the grammar would read as
  // bytes), by state; few, so cleared when full.
  absl::flat_hash_map<State, std::shared_ptr<const TokenBitmask>> with_terminators_;
};

}  // namespace attnres::structured
