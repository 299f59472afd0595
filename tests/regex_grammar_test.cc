// Regular expressions and choice lists -> Grammar (server/structured/regex_grammar.h), through the
// grammar's automaton on texts: the syntax piece by piece, UTF-8 classes (multi-byte ranges,
// negated sets, no surrogates or overlong forms), the refusals with their positions, and random
// ASCII patterns whose whole-match answers must equal std::regex's on random texts.
#include "server/structured/regex_grammar.h"

#include <random>
#include <regex>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/structured/token_constraint.h"

namespace attnres::structured {
namespace {

using ::testing::HasSubstr;

bool Accepts(const std::shared_ptr<const Grammar>& g, std::string_view text) {
  GrammarAutomaton a(g);
  absl::StatusOr<bool> ok = a.Accepts(text);
  EXPECT_TRUE(ok.ok()) << ok.status();
  return ok.ok() && *ok;
}

void ExpectTexts(std::string_view pattern, const std::vector<std::string>& accepted,
                 const std::vector<std::string>& refused) {
  SCOPED_TRACE(pattern);
  absl::StatusOr<std::shared_ptr<const Grammar>> g = RegexGrammar(pattern);
  ASSERT_TRUE(g.ok()) << g.status();
  for (const std::string& t : accepted) EXPECT_TRUE(Accepts(*g, t)) << "accepts '" << t << "'";
  for (const std::string& t : refused) EXPECT_FALSE(Accepts(*g, t)) << "refuses '" << t << "'";
}

void ExpectError(std::string_view pattern, std::string_view part) {
  absl::StatusOr<std::shared_ptr<const Grammar>> g = RegexGrammar(pattern);
  ASSERT_FALSE(g.ok()) << pattern;
  EXPECT_EQ(g.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(g.status().message(), HasSubstr(part)) << pattern;
}

TEST(RegexGrammar, Syntax) {
  ExpectTexts("abc", {"abc"}, {"", "ab", "abcd", "abd"});
  ExpectTexts("^a|bc$", {"a", "bc"}, {"abc", "", "b"});
  ExpectTexts("(ab|c)+", {"ab", "c", "abcab", "cc"}, {"", "a", "abb"});
  ExpectTexts("(?:x|y)?z", {"z", "xz", "yz"}, {"xyz", "x"});
  ExpectTexts("(?P<year>\\d{4})-(?<m>\\d{2})", {"2026-12"}, {"26-12", "2026-1", "2026-123"});
  ExpectTexts("a{2,3}b{2,}c{0}", {"aabb", "aaabbbbbb"}, {"abb", "aaaabb", "aab", "aabbc"});
  ExpectTexts("a*?b+?c??", {"b", "aabbc"}, {"", "ac"});
  ExpectTexts("x{,2}", {"x{,2}"}, {"x", "xx"});  // not a quantifier: literal braces
  ExpectTexts("[a-c][^a-c][-x][x-]", {"ad-x", "cZx-"}, {"da-x", "aa-x"});
  ExpectTexts("[]a]+", {"]", "a]a"}, {"", "b"});
  ExpectTexts("\\d\\D\\w\\W\\s\\S", {"1a_ \t!", "9xZ-\nq"}, {"a1_ \t!", "1a_ a!"});
  ExpectTexts("[\\d.]+", {"3.14", "..."}, {"3,14"});
  ExpectTexts("\\.\\*\\\\\\(\\)\\[\\{\\|\\?\\+\\$\\^", {".*\\()[{|?+$^"}, {"a*\\()[{|?+$^"});
  ExpectTexts("\\t\\n\\x41\\u00e9\\x{1F600}", {"\t\nA\xc3\xa9\xf0\x9f\x98\x80"}, {"\t\nA"});
  ExpectTexts("", {""}, {"a"});
  ExpectTexts("a|", {"a", ""}, {"aa"});
}

TEST(RegexGrammar, Utf8) {
  // A literal, a class across encoding lengths, the dot over every length, negated sets.
  ExpectTexts("caf\xc3\xa9", {"caf\xc3\xa9"}, {"cafe", "caf\xc3"});
  ExpectTexts("[\xc3\xa0-\xc3\xbf\xe4\xb8\x80-\xe9\xbe\xa5]+", {"\xc3\xa9\xe4\xb8\xad", "\xc3\xa0"},
              {"e", "\xe2\x82\xac"});
  ExpectTexts(".", {"a", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\x7f"},
              {"\n", "", "ab", "\xc3", "\xed\xa0\x80", "\xc0\xaf", "\xf4\x90\x80\x80"});
  ExpectTexts("[^a]", {"b", "\n", "\xe2\x82\xac", "\xf4\x8f\xbf\xbf"}, {"a", "\xed\xbf\xbf"});
  ExpectTexts("[\\x{7f}-\\x{10ffff}]", {"\x7f", "\xc2\x80", "\xef\xbf\xbf", "\xf0\x90\x80\x80"},
              {"~", "\xed\xa0\x80"});
  ExpectTexts("\\W", {"\xc3\xa9", " "}, {"a", "_"});  // ASCII \w: é is not a word character
}

TEST(RegexGrammar, Refusals) {
  ExpectError("(a", "byte 0: missing ), unterminated subpattern");
  ExpectError("a)", "byte 1: unbalanced parenthesis");
  ExpectError("[ab", "byte 0: unterminated character set");
  ExpectError("*a", "byte 0: nothing to repeat");
  ExpectError("a**", "byte 2: multiple repeat");
  ExpectError("a{3,2}", "byte 1: min repeat greater than max repeat");
  ExpectError("a{1001}", "repetition counts above 1000");
  ExpectError("a++", "possessive");
  ExpectError("(a)\\1", "byte 3: backreferences");
  ExpectError("(?=a)", "byte 0: lookaround");
  ExpectError("x(?<!a)b", "byte 1: lookaround");
  ExpectError("(?i)a", "inline flags");
  ExpectError("a\\bc", "word boundaries");
  ExpectError("\\p{L}", "\\p classes");
  ExpectError("a^b", "^ is supported only at the start");
  ExpectError("a$b", "$ is supported only at the end");
  ExpectError("(a*)*", "byte 0: an unbounded repetition of a part that can match the empty");
  ExpectError("(a|)+", "unbounded repetition");
  ExpectError("[z-a]", "bad character range");
  ExpectError("[a-\\d]", "a range cannot end in a class escape");
  ExpectError("\\q", "unknown escape \\q");
  ExpectError("\\x4", "\\x wants 2 hex digits");
  ExpectError("\\uD800", "surrogate");
  ExpectError("\\x{110000}", "past U+10FFFF");
  ExpectError("a\\", "cannot end with a backslash");
  ExpectError("\xff", "byte 0: not UTF-8");
  ExpectError("[^\\x00-\\x{10ffff}]", "matches no character");
  ExpectError(std::string(kMaxRegexBytes + 1, 'a'), "at most 16384 bytes");
  ExpectError(std::string(300, '(') + std::string(300, ')'), "nested more than 256 deep");
}

TEST(RegexGrammar, ChoicesAreMatchedAsTheyAre) {
  absl::StatusOr<std::shared_ptr<const Grammar>> g =
      ChoiceGrammar({"yes", "no", "maybe so", "n\xc3\xa9"});
  ASSERT_TRUE(g.ok()) << g.status();
  for (const char* t : {"yes", "no", "maybe so", "n\xc3\xa9"}) EXPECT_TRUE(Accepts(*g, t)) << t;
  for (const char* t : {"", "ye", "yesno", "maybe", "Yes"}) EXPECT_FALSE(Accepts(*g, t)) << t;
  EXPECT_THAT(ChoiceGrammar({}).status().message(), HasSubstr("1 to 1024 strings, got 0"));
  EXPECT_THAT(ChoiceGrammar({"a", std::string(4097, 'x')}).status().message(),
              HasSubstr("choices[1]: at most 4096 bytes"));
}

// Random patterns over a small alphabet against std::regex (ECMAScript agrees with the syntax
// here on ASCII, with no \r in the texts for its dot), on random texts and on texts made of
// the pattern's own letters.
std::string RandomPattern(std::mt19937& rng, int depth) {
  const auto pick = [&](int n) { return static_cast<int>(rng() % n); };
  std::string out;
  const int parts = 1 + pick(3);
  for (int i = 0; i < parts; ++i) {
    std::string atom;
    switch (depth > 2 ? pick(4) : pick(6)) {
      case 0:
        atom = std::string(1, "abc"[pick(3)]);
        break;
      case 1:
        atom = std::vector<std::string>{"[ab]", "[^a]", "[a-c1]", "\\d", "\\w", "."}[pick(6)];
        break;
      case 2:
        atom = std::string(1, "ab1"[pick(3)]);
        break;
      case 3:
        atom = "\\s";
        break;
      default:
        atom = "(" + RandomPattern(rng, depth + 1) +
               (pick(2) ? "|" + RandomPattern(rng, depth + 1) : "") + ")";
        break;
    }
    switch (pick(8)) {
      case 0:
        atom += "*";
        break;
      case 1:
        atom += "+";
        break;
      case 2:
        atom += "?";
        break;
      case 3:
        atom += "{" + std::to_string(pick(3)) + "," + std::to_string(2 + pick(2)) + "}";
        break;
      case 4:
        atom += "{" + std::to_string(1 + pick(2)) + "}";
        break;
      default:
        break;
    }
    out += atom;
  }
  return out;
}

TEST(RegexGrammar, RandomPatternsMatchStdRegex) {
  std::mt19937 rng(2026);
  int compared = 0, refused = 0;
  for (int n = 0; n < 300; ++n) {
    const std::string pattern = RandomPattern(rng, 0);
    absl::StatusOr<std::shared_ptr<const Grammar>> g = RegexGrammar(pattern);
    if (!g.ok()) {  // only what the compiler documents it refuses
      EXPECT_THAT(g.status().message(), HasSubstr("unbounded repetition")) << pattern;
      ++refused;
      continue;
    }
    const std::regex re(pattern, std::regex::ECMAScript);
    for (int t = 0; t < 60; ++t) {
      std::string text;
      const int len = static_cast<int>(rng() % 7);
      for (int i = 0; i < len; ++i) text += "abc19 \n_"[rng() % 8];
      EXPECT_EQ(Accepts(*g, text), std::regex_match(text, re))
          << "pattern '" << pattern << "' text '" << text << "'";
      ++compared;
    }
  }
  EXPECT_GT(compared, 10000);
  EXPECT_LT(refused, 100);
}

}  // namespace
}  // namespace attnres::structured
