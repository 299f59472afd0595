// The pushdown matcher behind constrained decoding, as a lazily built byte DFA, and the token
// masks computed from it over the sorted vocabulary.
//
// The grammar is flattened: every alternative is a run of ops in one array, closed by kEnd; a
// position is an index into it. A stack is a persistent list of positions (hash-consed nodes:
// equal stacks have equal ids), whose top is the position to match next and whose lower
// entries are where to continue once the rule above returns. A DFA state is a sorted set of
// stacks whose tops all match bytes (plus the empty stack when the input may end there).
#include "server/structured/token_constraint.h"

#include <algorithm>
#include <string_view>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace attnres::structured {
namespace {

using State = GrammarAutomaton::State;

constexpr State kUnknown = -2;      // a transition not computed yet
constexpr int32_t kEmptyStack = 0;  // node id of the empty stack: the input may end here

struct Op {
  enum Kind : uint8_t { kBytes, kRule, kEnd };
  Kind kind = kEnd;
  int32_t index = 0;  // kBytes: byte set; kRule: rule
};

absl::Status LimitError(int64_t count, absl::string_view what, absl::string_view limit) {
  return absl::ResourceExhaustedError(
      absl::StrCat("structured output: the grammar's automaton passed ", count, " ", what, " (",
                   limit, "): the grammar is too complex for constrained decoding"));
}

}  // namespace

// ---- GrammarAutomaton ----

struct GrammarAutomaton::Impl {
  explicit Impl(std::shared_ptr<const Grammar> g, AutomatonLimits l);

  absl::StatusOr<State> ComputeTransition(State state, uint8_t byte);
  absl::StatusOr<State> InitialState();
  // The node for `position` above `parent`, or `parent` itself when the position closes its
  // alternative (a rule that returns pops its frame; nodes never sit on a kEnd).
  absl::StatusOr<int32_t> Continue(int32_t position, int32_t parent);
  absl::StatusOr<int32_t> InternNode(int32_t position, int32_t parent);
  // Fills expansions[node]: the stacks `node` stands for once every rule on top is replaced by
  // its alternatives, i.e. those whose tops match bytes (empty byte sets dropped), and the
  // empty stack when reachable.
  absl::Status Expand(int32_t node);
  absl::StatusOr<State> InternState(const std::vector<int32_t>& stacks);
  bool Valid(State state) const { return state >= 0 && state < num_states(); }
  int num_states() const { return static_cast<int>(state_stacks.size()); }

  std::shared_ptr<const Grammar> grammar;
  AutomatonLimits limits;
  std::vector<Op> code;             // [elements + alternatives]
  std::vector<int32_t> alt_begin;   // [rules + 1]: rule r's alternatives, range in alt_starts
  std::vector<int32_t> alt_starts;  // [alternatives]: first position of each

  struct Node {
    int32_t position;  // a kBytes or kRule op; unused for the empty stack
    int32_t parent;    // node below
  };
  std::vector<Node> nodes;                          // [stacks]; 0 is the empty stack
  absl::flat_hash_map<uint64_t, int32_t> node_ids;  // (position << 32 | parent) -> node
  std::vector<std::vector<int32_t>> expansions;     // [stacks], sorted, valid where expanded
  std::vector<bool> expanded;                       // [stacks]

  std::vector<std::vector<int32_t>> state_stacks;  // [states]: sorted stack ids
  absl::flat_hash_map<std::vector<int32_t>, State> state_ids;
  std::vector<State> transitions;  // [states * 256]: next state, kDead, or kUnknown
  std::vector<bool> complete;      // [states]
  std::vector<bool> can_continue;  // [states]
  absl::Status error;              // the first limit hit; every later new transition fails

  // Scratch, kept to avoid allocating per transition.
  std::vector<int32_t> next_stacks, worklist, found;
  absl::flat_hash_set<int32_t> visited;
};

GrammarAutomaton::Impl::Impl(std::shared_ptr<const Grammar> g, AutomatonLimits l)
    : grammar(std::move(g)), limits(l) {
  const std::vector<Rule>& rules = grammar->rules();
  alt_begin.reserve(rules.size() + 1);
  for (const Rule& rule : rules) {
    alt_begin.push_back(static_cast<int32_t>(alt_starts.size()));
    for (const Alternative& alt : rule.alternatives) {
      alt_starts.push_back(static_cast<int32_t>(code.size()));
      for (const Element& e : alt) {
        code.push_back({e.kind == Element::Kind::kRule ? Op::kRule : Op::kBytes, e.index});
      }
      code.push_back({Op::kEnd, 0});
    }
  }
  alt_begin.push_back(static_cast<int32_t>(alt_starts.size()));
  nodes.push_back({-1, -1});
  expansions.push_back({kEmptyStack});
  expanded.push_back(true);
}

absl::StatusOr<int32_t> GrammarAutomaton::Impl::Continue(int32_t position, int32_t parent) {
  if (code[position].kind == Op::kEnd) return parent;
  return InternNode(position, parent);
}

absl::StatusOr<int32_t> GrammarAutomaton::Impl::InternNode(int32_t position, int32_t parent) {
  const uint64_t key =
      (uint64_t{static_cast<uint32_t>(position)} << 32) | static_cast<uint32_t>(parent);
  if (auto it = node_ids.find(key); it != node_ids.end()) return it->second;
  // nodes[0] is the empty stack, so nodes.size() - 1 stacks exist.
  if (static_cast<int64_t>(nodes.size()) > limits.max_stacks) {
    error = LimitError(limits.max_stacks, "stacks", "AutomatonLimits::max_stacks");
    return error;
  }
  const auto id = static_cast<int32_t>(nodes.size());
  nodes.push_back({position, parent});
  expansions.emplace_back();
  expanded.push_back(false);
  node_ids.emplace(key, id);
  return id;
}

absl::Status GrammarAutomaton::Impl::Expand(int32_t node) {
  if (expanded[node]) return absl::OkStatus();
  // A worklist, not recursion: a rule's alternatives may start with further rules. Build
  // refuses left recursion, so this ends; `visited` also stops nullable rules that lead back
  // to a stack already seen, and the stack limit stops anything else.
  worklist.assign(1, node);
  visited.clear();
  visited.insert(node);
  found.clear();
  auto push = [&](int32_t s) {
    if (visited.insert(s).second) worklist.push_back(s);
  };
  while (!worklist.empty()) {
    const int32_t s = worklist.back();
    worklist.pop_back();
    if (s == kEmptyStack) {
      found.push_back(s);
      continue;
    }
    const Node n = nodes[s];
    const Op op = code[n.position];
    if (op.kind == Op::kBytes) {
      if (!grammar->byte_sets()[op.index].empty()) found.push_back(s);
      continue;
    }
    // A rule on top: continue after it (or return, when it is last: a tail call keeps
    // right recursion flat), with each of its alternatives above.
    absl::StatusOr<int32_t> cont = Continue(n.position + 1, n.parent);
    if (!cont.ok()) return cont.status();
    for (int32_t a = alt_begin[op.index]; a < alt_begin[op.index + 1]; ++a) {
      absl::StatusOr<int32_t> child = Continue(alt_starts[a], *cont);
      if (!child.ok()) return child.status();
      push(*child);
    }
  }
  std::sort(found.begin(), found.end());
  expansions[node] = found;
  expanded[node] = true;
  return absl::OkStatus();
}

absl::StatusOr<State> GrammarAutomaton::Impl::InternState(const std::vector<int32_t>& stacks) {
  if (stacks.empty()) return kDead;
  if (auto it = state_ids.find(stacks); it != state_ids.end()) return it->second;
  if (num_states() >= limits.max_states) {
    error = LimitError(limits.max_states, "states", "AutomatonLimits::max_states");
    return error;
  }
  const State id = num_states();
  state_stacks.push_back(stacks);
  state_ids.emplace(stacks, id);
  transitions.resize(transitions.size() + 256, kUnknown);
  // Sorted: the empty stack (0) comes first, byte-matching stacks after it.
  complete.push_back(stacks.front() == kEmptyStack);
  can_continue.push_back(stacks.back() != kEmptyStack);
  return id;
}

absl::StatusOr<State> GrammarAutomaton::Impl::InitialState() {
  std::vector<int32_t> stacks;
  const int root = grammar->root();
  for (int32_t a = alt_begin[root]; a < alt_begin[root + 1]; ++a) {
    absl::StatusOr<int32_t> start = Continue(alt_starts[a], kEmptyStack);
    if (!start.ok()) return start.status();
    if (absl::Status s = Expand(*start); !s.ok()) return s;
    stacks.insert(stacks.end(), expansions[*start].begin(), expansions[*start].end());
  }
  std::sort(stacks.begin(), stacks.end());
  stacks.erase(std::unique(stacks.begin(), stacks.end()), stacks.end());
  return InternState(stacks);
}

absl::StatusOr<State> GrammarAutomaton::Impl::ComputeTransition(State state, uint8_t byte) {
  if (!error.ok()) return error;
  next_stacks.clear();
  for (const int32_t s : state_stacks[state]) {
    if (s == kEmptyStack) continue;
    const Node n = nodes[s];
    if (!grammar->byte_sets()[code[n.position].index].Has(byte)) continue;
    absl::StatusOr<int32_t> next = Continue(n.position + 1, n.parent);
    if (!next.ok()) return next.status();
    if (absl::Status st = Expand(*next); !st.ok()) return st;
    next_stacks.insert(next_stacks.end(), expansions[*next].begin(), expansions[*next].end());
  }
  std::sort(next_stacks.begin(), next_stacks.end());
  next_stacks.erase(std::unique(next_stacks.begin(), next_stacks.end()), next_stacks.end());
  absl::StatusOr<State> next = InternState(next_stacks);
  if (!next.ok()) return next;
  transitions[static_cast<size_t>(state) * 256 + byte] = *next;
  return next;
}

GrammarAutomaton::GrammarAutomaton(std::shared_ptr<const Grammar> grammar, AutomatonLimits limits)
    : impl_(std::make_unique<Impl>(std::move(grammar), limits)) {
  // A limit hit here (a tiny max_stacks) leaves the initial state dead; the error stays in
  // impl_->error and is what Advance and the masks report.
  absl::StatusOr<State> initial = impl_->InitialState();
  initial_ = initial.ok() ? *initial : kDead;
}

GrammarAutomaton::~GrammarAutomaton() = default;

absl::StatusOr<GrammarAutomaton::State> GrammarAutomaton::Advance(State state, uint8_t byte) {
  if (state == kDead) {
    if (!impl_->error.ok()) return impl_->error;
    return kDead;
  }
  if (!impl_->Valid(state)) {
    return absl::InvalidArgumentError(absl::StrCat("grammar automaton: no state ", state));
  }
  const State next = impl_->transitions[static_cast<size_t>(state) * 256 + byte];
  if (next != kUnknown) return next;
  return impl_->ComputeTransition(state, byte);
}

absl::StatusOr<GrammarAutomaton::State> GrammarAutomaton::AdvanceBytes(State state,
                                                                       std::string_view bytes) {
  // Dead from a limit (even with no bytes to read): the limit's error, as Advance reports it.
  if (state == kDead && !impl_->error.ok()) return impl_->error;
  for (const char c : bytes) {
    absl::StatusOr<State> next = Advance(state, static_cast<uint8_t>(c));
    if (!next.ok() || *next == kDead) return next;
    state = *next;
  }
  return state;
}

bool GrammarAutomaton::IsComplete(State state) const {
  return impl_->Valid(state) && impl_->complete[state];
}

bool GrammarAutomaton::CanContinue(State state) const {
  return impl_->Valid(state) && impl_->can_continue[state];
}

absl::StatusOr<bool> GrammarAutomaton::Accepts(std::string_view text) {
  absl::StatusOr<State> end = AdvanceBytes(initial_, text);
  if (!end.ok()) return end.status();
  return IsComplete(*end);
}

int GrammarAutomaton::num_states() const { return impl_->num_states(); }

// ---- GrammarVocabulary ----

GrammarVocabulary::GrammarVocabulary(std::vector<std::string> token_bytes,
                                     std::span<const int32_t> excluded)
    : vocab_size_(static_cast<int32_t>(token_bytes.size())), bytes_(std::move(token_bytes)) {
  for (const int32_t id : excluded) {
    if (id >= 0 && id < vocab_size_) bytes_[id].clear();
  }
  for (int32_t id = 0; id < vocab_size_; ++id) {
    if (!bytes_[id].empty()) sorted_.push_back(id);
  }
  // std::string compares as unsigned bytes (char_traits<char>::lt is unsigned char's <), the
  // order the walk needs: tokens sharing a prefix are adjacent. Ties by id, for determinism.
  std::sort(sorted_.begin(), sorted_.end(), [&](int32_t a, int32_t b) {
    const int c = bytes_[a].compare(bytes_[b]);
    return c != 0 ? c < 0 : a < b;
  });
  shared_prefix_.reserve(sorted_.size());
  new_bytes_end_.reserve(sorted_.size());
  std::string_view previous;
  for (const int32_t id : sorted_) {
    const std::string_view cur = bytes_[id];
    const size_t limit = std::min(previous.size(), cur.size());
    size_t shared = 0;
    while (shared < limit && previous[shared] == cur[shared]) ++shared;
    shared_prefix_.push_back(static_cast<int32_t>(shared));
    new_bytes_.append(cur.substr(shared));
    new_bytes_end_.push_back(static_cast<uint32_t>(new_bytes_.size()));
    max_token_bytes_ = std::max(max_token_bytes_, static_cast<int32_t>(cur.size()));
    previous = cur;
  }
  // Backwards: first_at_most[d] is the first index after i whose shared prefix is <= d.
  const auto n = static_cast<uint32_t>(sorted_.size());
  std::vector<uint32_t> first_at_most(max_token_bytes_ + 1, n);
  skip_.resize(new_bytes_.size());
  for (uint32_t i = n; i-- > 0;) {
    if (i + 1 < n) {
      for (int32_t d = shared_prefix_[i + 1]; d <= max_token_bytes_; ++d) first_at_most[d] = i + 1;
    }
    const uint32_t begin = i == 0 ? 0 : new_bytes_end_[i - 1];
    for (uint32_t e = begin; e < new_bytes_end_[i]; ++e) {
      skip_[e] = first_at_most[shared_prefix_[i] + (e - begin)];
    }
  }
}

std::shared_ptr<const GrammarVocabulary> GrammarVocabulary::FromTokenizer(
    const Tokenizer& tokenizer, int32_t vocab_size) {
  // Special tokens and ids past the tokenizer keep empty bytes, which excludes them.
  std::vector<std::string> bytes(std::max(vocab_size, 0));
  const int32_t known = std::min(vocab_size, tokenizer.vocab_size());
  for (int32_t id = 0; id < known; ++id) {
    if (!tokenizer.IsSpecial(id)) bytes[id] = tokenizer.TokenBytes(id);
  }
  return std::make_shared<const GrammarVocabulary>(std::move(bytes), std::span<const int32_t>());
}

// ---- GrammarMasks ----

GrammarMasks::GrammarMasks(std::shared_ptr<const Grammar> grammar,
                           std::shared_ptr<const GrammarVocabulary> vocabulary,
                           AutomatonLimits limits, int cache_entries)
    : automaton_(std::move(grammar), limits),
      vocabulary_(std::move(vocabulary)),
      cache_entries_(std::max(cache_entries, 1)) {
  walk_.resize(vocabulary_->max_token_bytes_ + 1);
}

absl::StatusOr<std::shared_ptr<const TokenBitmask>> GrammarMasks::Mask(State state) {
  if (state == GrammarAutomaton::kDead) {
    // A limit hit earlier is why there is no state; otherwise the caller went on after a
    // refused token.
    if (!automaton_.impl_->error.ok()) return automaton_.impl_->error;
    return absl::FailedPreconditionError(
        "structured output: no token mask for the dead state (the output already left the "
        "grammar)");
  }
  if (!automaton_.impl_->Valid(state)) {
    return absl::InvalidArgumentError(absl::StrCat("structured output: no state ", state));
  }
  if (auto it = masks_.find(state); it != masks_.end()) {
    it->second.last_used = ++clock_;
    return it->second.mask;
  }
  absl::StatusOr<std::shared_ptr<const TokenBitmask>> mask = ComputeMask(state);
  if (mask.ok()) CacheMask(state, *mask);
  return mask;
}

absl::StatusOr<std::shared_ptr<const TokenBitmask>> GrammarMasks::ComputeMask(State state) {
  // One walk over the tokens in byte order, i.e. over the vocabulary's trie: walk_[d] is the
  // state after the first d bytes of the previous token, and `depth` how many of those hold for
  // the current one. A prefix the grammar refuses jumps past every token that starts with it
  // (skip_), so a state that allows few tokens (inside a literal, between JSON tokens) costs
  // about the live part of the trie, not the vocabulary.
  const GrammarVocabulary& vocab = *vocabulary_;
  GrammarAutomaton::Impl& dfa = *automaton_.impl_;
  auto mask = std::make_shared<TokenBitmask>(vocab.vocab_size());
  const auto* bytes = reinterpret_cast<const uint8_t*>(vocab.new_bytes_.data());
  const auto n = static_cast<uint32_t>(vocab.sorted_.size());
  walk_[0] = state;
  int32_t depth = 0;
  for (uint32_t i = 0; i < n;) {
    const uint32_t begin = i == 0 ? 0 : vocab.new_bytes_end_[i - 1];
    const uint32_t end = vocab.new_bytes_end_[i];
    depth = std::min(depth, vocab.shared_prefix_[i]);
    State cur = walk_[depth];
    uint32_t next_token = i + 1;
    bool refused = false;
    for (uint32_t e = begin; e < end; ++e) {
      State next = dfa.transitions[static_cast<size_t>(cur) * 256 + bytes[e]];
      if (next == kUnknown) {
        absl::StatusOr<State> computed = dfa.ComputeTransition(cur, bytes[e]);
        if (!computed.ok()) return computed.status();
        next = *computed;
      }
      if (next == GrammarAutomaton::kDead) {
        next_token = vocab.skip_[e];
        refused = true;
        break;
      }
      cur = next;
      walk_[++depth] = cur;
    }
    if (!refused) mask->Set(vocab.sorted_[i]);
    i = next_token;
  }
  return mask;
}

void GrammarMasks::CacheMask(State state, std::shared_ptr<const TokenBitmask> mask) {
  masks_[state] = CachedMask{std::move(mask), ++clock_};
  if (static_cast<int>(masks_.size()) <= cache_entries_) return;
  auto oldest = std::min_element(masks_.begin(), masks_.end(), [](const auto& a, const auto& b) {
    return a.second.last_used < b.second.last_used;
  });
  masks_.erase(oldest);
}

// ---- TokenConstraint ----

TokenConstraint::TokenConstraint(std::shared_ptr<GrammarMasks> masks,
                                 std::vector<int32_t> terminators)
    : masks_(std::move(masks)) {
  // Ids outside the vocabulary could not be sampled (nor set in a mask) anyway.
  const int32_t vocab_size = masks_->vocabulary().vocab_size();
  for (const int32_t id : terminators) {
    if (id >= 0 && id < vocab_size) terminators_.push_back(id);
  }
  std::sort(terminators_.begin(), terminators_.end());
  terminators_.erase(std::unique(terminators_.begin(), terminators_.end()), terminators_.end());
}

TokenConstraint::TokenConstraint(std::shared_ptr<const Grammar> grammar,
                                 std::shared_ptr<const GrammarVocabulary> vocabulary,
                                 std::vector<int32_t> terminators, AutomatonLimits limits,
                                 int mask_cache_entries)
    : TokenConstraint(std::make_shared<GrammarMasks>(std::move(grammar), std::move(vocabulary),
                                                     limits, mask_cache_entries),
                      std::move(terminators)) {}

bool TokenConstraint::IsTerminator(int32_t token) const {
  return std::binary_search(terminators_.begin(), terminators_.end(), token);
}

absl::StatusOr<std::shared_ptr<const TokenBitmask>> TokenConstraint::AllowedTokens(State state) {
  absl::StatusOr<std::shared_ptr<const TokenBitmask>> content = masks_->Mask(state);
  if (!content.ok()) return content;
  // A terminator ends the output (the engine stops at it), so it is never read as its bytes:
  // it is allowed exactly where the grammar is complete.
  const bool complete = automaton().IsComplete(state);
  const bool unchanged = std::all_of(terminators_.begin(), terminators_.end(),
                                     [&](int32_t id) { return (*content)->Has(id) == complete; });
  if (unchanged) return content;
  if (auto it = with_terminators_.find(state); it != with_terminators_.end()) return it->second;
  auto mask = std::make_shared<TokenBitmask>(**content);
  for (const int32_t id : terminators_) {
    if (complete) {
      mask->Set(id);
    } else {
      mask->Clear(id);
    }
  }
  if (with_terminators_.size() >= 8) with_terminators_.clear();
  with_terminators_[state] = mask;
  return mask;
}

absl::StatusOr<TokenConstraint::State> TokenConstraint::Accept(State state, int32_t token) {
  const GrammarVocabulary& vocab = masks_->vocabulary();
  if (token < 0 || token >= vocab.vocab_size()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "structured output: token ", token, " is outside the vocabulary of ", vocab.vocab_size()));
  }
  GrammarAutomaton& automaton = masks_->automaton();
  if (state != GrammarAutomaton::kDead && (state < 0 || state >= automaton.num_states())) {
    return absl::InvalidArgumentError(absl::StrCat("structured output: no state ", state));
  }
  if (IsTerminator(token)) return state;
  const std::string& bytes = vocab.bytes(token);
  if (bytes.empty()) return GrammarAutomaton::kDead;  // special or byteless: never matches
  return automaton.AdvanceBytes(state, bytes);
}

}  // namespace attnres::structured
