// Fuzz target: regular expression -> Grammar (server/structured/regex_grammar.h) on arbitrary
// patterns, and the automaton of what compiles. Input: a pattern, optionally followed by a NUL
// byte and a candidate output text. Checks: the pattern compiles or is refused with an
// InvalidArgument error that says where; Accepts agrees with the state the text leads to; a walk
// through the automaton, each byte picked by the input among the bytes the grammar allows next,
// keeps every state live, and what it writes is well-formed UTF-8 wherever it ends complete.
#include <cstdint>
#include <string>
#include <string_view>

#include "absl/strings/match.h"
#include "server/structured/regex_grammar.h"
#include "server/structured/token_constraint.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/fuzz/grammar_walk.h"

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
    if (attnres::fuzzing::CheckedAccepts(automaton, text).value_or(false)) {
      FUZZ_CHECK(IsUtf8(text), "an accepted text is UTF-8");
    }
  }
  if (const auto walked = attnres::fuzzing::Walk(automaton, data, size, kMaxWalk)) {
    FUZZ_CHECK(IsUtf8(*walked), "a walk that ends complete wrote UTF-8");
  }
  return 0;
}
