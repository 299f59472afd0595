// Regular expression -> Grammar: the UTF-8 texts a pattern matches whole, for constrained decoding
// (response_format regex and choice; vLLM's guided_regex and guided_choice).
//
// The syntax (Python re / PCRE, the part that describes a language):
// - literals: any UTF-8 character; escaped metacharacters (\. \* \\ \( ...), \t \n \r \f \v \0,
//   \xHH, \uHHHH and \x{H...} code points;
// - . (any character but \n), classes [abc], [a-z], [^...] with ranges, escapes and \d \w \s
//   inside, and \d \D \w \W \s \S (ASCII: [0-9], [A-Za-z0-9_], [ \t\n\r\f\v]);
// - groups (...), (?:...), (?P<name>...) and (?<name>...), all only grouping; alternation |;
// - quantifiers * + ? {n} {n,} {n,m}, each optionally lazy (a trailing ?: the same language);
// - ^ at the very start and $ at the very end (the whole output matches either way).
// Refused, with the position: backreferences, lookaround, word boundaries and other anchors,
// possessive quantifiers, \p classes, inline flags, a repetition without bound (* + {n,}) of a
// part that can match the empty string (say (a*)*), malformed syntax, patterns over 16 KiB and
// grammars past GrammarLimits. Errors are InvalidArgument.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "server/structured/grammar.h"

namespace attnres::structured {

inline constexpr size_t kMaxRegexBytes = 16 << 10;

// The texts `pattern` matches whole.
absl::StatusOr<std::shared_ptr<const Grammar>> RegexGrammar(std::string_view pattern);

// Exactly one of `choices` (each matched as it is, bytes included); 1 to 1024 choices, each at
// most 4 KiB.
absl::StatusOr<std::shared_ptr<const Grammar>> ChoiceGrammar(
    const std::vector<std::string>& choices);

}  // namespace attnres::structured
