// What the grammar fuzz targets share: a candidate text checked against the automaton, and a walk
// through it, each byte picked by the input among the bytes the grammar allows next.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "server/structured/token_constraint.h"
#include "tests/fuzz/fuzz_check.h"

namespace attnres::fuzzing {

// Whether `text` is accepted whole (none: a limit was hit), checked to be the completeness of
// the state it leads to.
inline std::optional<bool> CheckedAccepts(structured::GrammarAutomaton& automaton,
                                          std::string_view text) {
  const absl::StatusOr<bool> accepted = automaton.Accepts(text);
  if (!accepted.ok()) return std::nullopt;
  const auto end = automaton.AdvanceBytes(automaton.initial(), text);
  FUZZ_CHECK(end.ok() && *accepted == automaton.IsComplete(*end),
             "Accepts is the state after the text being complete");
  return *accepted;
}

// Walks up to max_bytes: byte i of `data` picks among the allowed bytes (or, once complete, may
// stop), checking that every state can go on or end. Returns the text of a walk that ended
// complete (checked to be accepted whole), or none (a limit, or the walk ran out of room).
inline std::optional<std::string> Walk(structured::GrammarAutomaton& automaton, const uint8_t* data,
                                       size_t size, size_t max_bytes) {
  using structured::GrammarAutomaton;
  std::string walked;
  GrammarAutomaton::State state = automaton.initial();
  for (size_t i = 0; state != GrammarAutomaton::kDead && walked.size() < max_bytes; ++i) {
    std::vector<uint8_t> allowed;
    std::vector<GrammarAutomaton::State> next;
    for (int b = 0; b < 256; ++b) {
      const absl::StatusOr<GrammarAutomaton::State> s =
          automaton.Advance(state, static_cast<uint8_t>(b));
      if (!s.ok()) return std::nullopt;  // a limit
      if (*s == GrammarAutomaton::kDead) continue;
      allowed.push_back(static_cast<uint8_t>(b));
      next.push_back(*s);
    }
    FUZZ_CHECK(automaton.CanContinue(state) == !allowed.empty(),
               "CanContinue is some byte being allowed");
    FUZZ_CHECK(!allowed.empty() || automaton.IsComplete(state), "a live state can go on or end");
    const uint8_t pick = size > 0 ? data[i % size] : 0;
    if (allowed.empty() || (automaton.IsComplete(state) && pick % 4 == 0)) break;
    walked += static_cast<char>(allowed[pick % allowed.size()]);
    state = next[pick % allowed.size()];
  }
  if (!automaton.IsComplete(state)) return std::nullopt;
  const absl::StatusOr<bool> accepted = automaton.Accepts(walked);
  FUZZ_CHECK(!accepted.ok() || *accepted, "a walk that ends complete is accepted");
  return walked;
}

}  // namespace attnres::fuzzing
