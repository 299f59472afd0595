// Fuzz target: regular expression -> Grammar (server/structured/regex_grammar.h) on arbitrary
// patterns, and the automaton of what compiles. Input: a pattern, optionally followed by a NUL
// byte and a candidate output text. Checks: the pattern compiles or is refused with an
// InvalidArgument error that says where; Accepts agrees with the state the text leads to; a walk
// through the automaton, each byte picked by the input among the bytes the grammar allows next,
// keeps every state live, and what it writes is well-formed UTF-8 wherever it ends complete.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/match.h"
#include "server/structured/regex_grammar.h"
#include "server/structured/token_constraint.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

using attnres::structured::GrammarAutomaton;

constexpr size_t kMaxWalk = 256;

// Well-formed UTF-8 (RFC 3629: no overlong forms, surrogates or code points past U+10FFFF).
bool IsUtf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    const auto b = [&](size_t k) { return static_cast<uint8_t>(s[k]); };
    const uint8_t c = b(i);
    int n = c < 0x80                 ? 1
            : c >= 0xC2 && c <= 0xDF ? 2
            : c >= 0xE0 && c <= 0xEF ? 3
            : c >= 0xF0 && c <= 0xF4 ? 4
                                     : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (int k = 1; k < n; ++k) {
      if ((b(i + k) & 0xC0) != 0x80) return false;
    }
    if (n == 3 && ((c == 0xE0 && b(i + 1) < 0xA0) || (c == 0xED && b(i + 1) > 0x9F))) return false;
    if (n == 4 && ((c == 0xF0 && b(i + 1) < 0x90) || (c == 0xF4 && b(i + 1) > 0x8F))) return false;
    i += n;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace structured = attnres::structured;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t nul = input.find('\0');
  const std::string_view pattern = input.substr(0, nul);
  const auto grammar = structured::RegexGrammar(pattern);
  if (!grammar.ok()) {
    FUZZ_CHECK(grammar.status().code() == absl::StatusCode::kInvalidArgument,
               "a refused pattern is an invalid argument");
    FUZZ_CHECK(absl::StartsWith(grammar.status().message(), "regex"), "a refusal says where");
    return 0;
  }
  (void)(*grammar)->ToString();
  GrammarAutomaton automaton(*grammar, {.max_states = 4096, .max_stacks = 1 << 16});
  if (nul != std::string_view::npos) {
    const std::string_view text = input.substr(nul + 1);
    const absl::StatusOr<bool> accepted = automaton.Accepts(text);
    if (accepted.ok()) {
      const auto end = automaton.AdvanceBytes(automaton.initial(), text);
      FUZZ_CHECK(end.ok() && *accepted == automaton.IsComplete(*end),
                 "Accepts is the state after the text being complete");
      if (*accepted) FUZZ_CHECK(IsUtf8(text), "an accepted text is UTF-8");
    }
  }
  std::string walked;
  GrammarAutomaton::State state = automaton.initial();
  for (size_t i = 0; state != GrammarAutomaton::kDead && walked.size() < kMaxWalk; ++i) {
    std::vector<uint8_t> allowed;
    std::vector<GrammarAutomaton::State> next;
    for (int b = 0; b < 256; ++b) {
      const absl::StatusOr<GrammarAutomaton::State> s =
          automaton.Advance(state, static_cast<uint8_t>(b));
      if (!s.ok()) return 0;  // a limit
      if (*s == GrammarAutomaton::kDead) continue;
      allowed.push_back(static_cast<uint8_t>(b));
      next.push_back(*s);
    }
    FUZZ_CHECK(!allowed.empty() || automaton.IsComplete(state), "a live state can go on or end");
    const uint8_t pick = size > 0 ? data[i % size] : 0;
    if (allowed.empty() || (automaton.IsComplete(state) && pick % 4 == 0)) break;
    walked += static_cast<char>(allowed[pick % allowed.size()]);
    state = next[pick % allowed.size()];
  }
  if (automaton.IsComplete(state)) {
    FUZZ_CHECK(IsUtf8(walked), "a walk that ends complete wrote UTF-8");
    const absl::StatusOr<bool> accepted = automaton.Accepts(walked);
    FUZZ_CHECK(!accepted.ok() || *accepted, "a walk that ends complete is accepted");
  }
  return 0;
}
