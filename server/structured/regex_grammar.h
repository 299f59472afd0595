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
// - ^ at the start and $ at the end of the pattern or of a top-level alternative (the whole
//   output matches either way; under RegexOptions::ecma_search they anchor).
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

// How a pattern's texts are read and written.
struct RegexOptions {
  // The text is the inside of a JSON string (JSON Schema's "pattern" and string formats): the
  // pattern describes the decoded characters, and the grammar writes each as JSON does: '"',
  // '\\' and U+0000-U+001F only escaped (\" \\ \b \f \n \r \t, and the controls also as \u00XX
  // in either case of hex), every other character as its UTF-8 (no \uXXXX spelling of those).
  bool json_string = false;
  // ECMA-262's reading, as JSON Schema means "pattern": the pattern may match anywhere in the
  // text unless ^ starts (or $ ends) its top-level alternative; '.' matches no line terminator
  // (\n \r U+2028 U+2029) and \s is Unicode white space. Otherwise the pattern matches the whole
  // text (Python's fullmatch), ^ and $ changing nothing.
  bool ecma_search = false;
};

// The texts `pattern` matches whole.
absl::StatusOr<std::shared_ptr<const Grammar>> RegexGrammar(std::string_view pattern);

// For grammars that embed a pattern (JSON Schema strings): adds its rules to `builder` and
// returns the rule that matches its texts. Errors as RegexGrammar's, but for the grammar's
// limits, which the builder's Build reports.
absl::StatusOr<int> AddRegexRules(GrammarBuilder& builder, std::string_view pattern,
                                  const RegexOptions& options);

// Exactly one of `choices` (each matched as it is, bytes included); 1 to 1024 choices, each at
// most 4 KiB.
absl::StatusOr<std::shared_ptr<const Grammar>> ChoiceGrammar(
    const std::vector<std::string>& choices);

}  // namespace attnres::structured
