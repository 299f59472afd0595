// The JSON Schema keywords that constrain a string's characters or a number's value
// (server/structured/json_schema_grammar.h): "pattern" (ECMA-262, unanchored, over the decoded
// characters while the grammar writes them JSON-escaped), the string formats held to, and
// minimum / maximum / exclusiveMinimum / exclusiveMaximum and multipleOf on integers and numbers.
// Checked on directed texts, against std::regex_search on random patterns and texts, against
// std::chrono's calendar for every day of several years, and against exact comparisons for
// random bounds and values.
#include <chrono>
#include <random>
#include <regex>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/json_schema_matching.h"

namespace attnres::structured {
namespace {

using json = nlohmann::ordered_json;

// `text` as a JSON string (nlohmann's escapes: \" \\ \b \f \n \r \t, \u00XX for the rest).
std::string Quoted(const std::string& text) { return json(text).dump(); }

// ---- pattern ----

TEST(JsonSchemaPattern, MatchesAnywhereUnlessAnchored) {
  ExpectTexts(R"({"type": "string", "pattern": "^[a-z]+$"})", {"\"abc\"", "\"z\""},
              {"\"\"", "\"ab1\"", "\"Abc\"", "abc", "\"abc\" "});
  ExpectTexts(R"({"pattern": "ab"})",  // a string, from the keyword
              {"\"ab\"", "\"xxabyy\"", R"("a\nab")",
               "\"\xC3\xA9"
               "ab\""},
              {"\"a b\"", "\"\"", "\"ba\"", "1"});
  ExpectTexts(R"({"type": "string", "pattern": "^a|b$"})", {"\"axx\"", "\"xxb\"", "\"ab\""},
              {"\"xax\"", "\"bx\""});
  ExpectTexts(R"({"type": "string", "pattern": "^[A-Z]{3}-\\d{2,3}$"})",
              {"\"ABC-12\"", "\"XYZ-999\""}, {"\"AB-12\"", "\"ABC-1\"", "\"ABC-1234\""});
  ExpectTexts(R"({"type": "object", "properties": {"code": {"type": "string", "pattern": "^x+$"}},
                  "required": ["code"]})",
              {R"({"code":"xxx"})", R"({"code": "x"})"}, {R"({"code":"xy"})", R"({"code":""})"});
}

TEST(JsonSchemaPattern, CharactersAreWrittenAsJsonEscapesThem) {
  // The pattern a"b\c (a JSON string: ^a\"b\\\\c$) matches the decoded text a"b\c.
  ExpectTexts(R"({"type": "string", "pattern": "^a\"b\\\\c$"})", {R"("a\"b\\c")"},
              {R"("a"b\c")", R"("a\"b\c")", R"("a\u0022b\\c")"});
  // A tab and a newline: short escapes or \u00XX in either case, never raw.
  ExpectTexts(R"({"type": "string", "pattern": "^\\t\\n$"})",
              {R"("\t\n")", R"("\u0009\u000a")", R"("\u0009\u000A")", R"("\t\u000a")"},
              {"\"\t\n\"", R"("\\t\\n")", R"("\u0009\u00a")"});
  // Other controls only as \u00XX; a class of them writes each.
  ExpectTexts(R"({"type": "string", "pattern": "^[\\x00-\\x1f]$"})",
              {R"("\u0000")", R"("\u001F")", R"("\u001f")", R"("\b")", R"("\r")"},
              {"\"\x01\"", R"("\u0020")", R"("a")", R"("\u002")"});
  // Negated classes and '.' hold the escaped characters too, but '.' no line terminator.
  ExpectTexts(R"({"type": "string", "pattern": "^[^a]$"})", {R"("\"")", R"("\\")", R"("\t")"},
              {R"("a")", "\"\"\""});
  ExpectTexts(R"({"type": "string", "pattern": "^.$"})",
              {"\"x\"", "\"\xC3\xA9\"", R"("\t")", R"("\"")"},
              {R"("\n")", R"("\r")", "\"\xE2\x80\xA8\"", "\"\xE2\x80\xA9\""});
  // ECMA-262's \s is Unicode white space.
  ExpectTexts(R"({"type": "string", "pattern": "^\\s+$"})",
              {R"(" ")", R"("\n\t")", "\"\xC2\xA0\"", "\"\xE3\x80\x80\""}, {R"("x")", "\"\""});
  ExpectTexts(R"({"type": "string", "pattern": "^\u00e9+$"})", {"\"\xC3\xA9\xC3\xA9\""},
              {"\"e\"", R"("\u00e9")"});  // \uXXXX spellings of other characters: not written
}

TEST(JsonSchemaPattern, Errors) {
  ExpectError(R"j({"type": "string", "pattern": "(?=a)"})j",
              "#/pattern: regex at byte 0: lookaround");
  ExpectError(R"({"properties": {"p": {"pattern": "a(b"}}})", "#/properties/p/pattern: regex at");
  ExpectError(R"({"type": "string", "pattern": 5})", "#/pattern: must be a string");
  ExpectError(R"({"type": "integer", "pattern": ["a"]})", "#/pattern: must be a string");
  ExpectError(R"({"type": "string", "pattern": "a", "minLength": 1})",
              "#/minLength: \"minLength\" alongside \"pattern\" is not supported");
  ExpectError(R"({"type": "string", "pattern": "a", "format": "date"})",
              "#/format: \"format\" alongside \"pattern\"");
  ExpectError(R"({"type": "string", "format": "uuid", "maxLength": 40})",
              "#/maxLength: \"maxLength\" alongside \"format\"");
  // Beside an unenforced format, a pattern is fine.
  ExpectTexts(R"({"type": "string", "pattern": "^a", "format": "uri"})", {"\"ab\""}, {"\"ba\""});
}

// Random patterns over a small alphabet, under JSON Schema's reading, against std::regex_search
// (ECMAScript) on random texts that hold the characters JSON escapes.
std::string RandomPattern(std::mt19937& rng, int depth) {
  const auto pick = [&](int n) { return static_cast<int>(rng() % n); };
  static const std::vector<std::string> kAtoms = {"a",    "b",   "\"",  "\\\\", "\\t", "[ab]",
                                                  "[^a]", "\\d", "\\s", "\\S",  ".",   "[\\n\"]"};
  std::string out;
  for (int i = 0, n = 1 + pick(3); i < n; ++i) {
    std::string atom = depth < 2 && pick(5) == 0
                           ? absl::StrCat("(", RandomPattern(rng, depth + 1), "|",
                                          RandomPattern(rng, depth + 1), ")")
                           : kAtoms[pick(static_cast<int>(kAtoms.size()))];
    static const char* kQuantifiers[] = {"", "", "", "*", "+", "?", "{1,2}"};
    out += atom + kQuantifiers[pick(7)];
  }
  return out;
}

TEST(JsonSchemaPattern, RandomPatternsMatchRegexSearch) {
  std::mt19937 rng(77);
  int compared = 0, matched = 0;
  for (int n = 0; n < 200; ++n) {
    std::string pattern = RandomPattern(rng, 0);
    if (rng() % 3 == 0) pattern = "^" + pattern;
    if (rng() % 3 == 0) pattern += "$";
    absl::StatusOr<std::shared_ptr<const Grammar>> g =
        JsonSchemaGrammarFromText(json{{"type", "string"}, {"pattern", pattern}}.dump());
    if (!g.ok()) {  // only what the regex compiler documents it refuses
      EXPECT_THAT(std::string(g.status().message()), ::testing::HasSubstr("unbounded repetition"))
          << pattern;
      continue;
    }
    GrammarAutomaton automaton(*g);
    const std::regex re(pattern, std::regex::ECMAScript);
    for (int t = 0; t < 50; ++t) {
      std::string text;
      for (int i = 0, len = static_cast<int>(rng() % 6); i < len; ++i) {
        text += "ab1 \"\\\t\n\r\x01"[rng() % 10];
      }
      const bool expected = std::regex_search(text, re);
      absl::StatusOr<bool> accepted = automaton.Accepts(Quoted(text));
      ASSERT_TRUE(accepted.ok()) << accepted.status();
      EXPECT_EQ(*accepted, expected) << "pattern '" << pattern << "' text " << Quoted(text);
      ++compared;
      matched += expected;
    }
  }
  EXPECT_GT(compared, 9000);
  EXPECT_GT(matched, compared / 20);
  EXPECT_LT(matched, compared * 19 / 20);
}

// ---- format ----

TEST(JsonSchemaFormat, DatesFollowTheCalendar) {
  Matcher date(R"({"type": "string", "format": "date"})");
  Matcher date_time(R"({"type": "string", "format": "date-time"})");
  int valid = 0;
  for (int year : {0, 1600, 1900, 1999, 2000, 2023, 2024, 2100, 9996}) {
    for (unsigned month = 0; month <= 13; ++month) {
      for (unsigned day = 0; day <= 32; ++day) {
        const std::chrono::year_month_day ymd{std::chrono::year(year), std::chrono::month(month),
                                              std::chrono::day(day)};
        char text[32];
        std::snprintf(text, sizeof(text), "\"%04d-%02u-%02u\"", year, month, day);
        EXPECT_EQ(date.Accepts(text), ymd.ok()) << text;
        std::snprintf(text, sizeof(text), "\"%04d-%02u-%02uT12:00:00Z\"", year, month, day);
        EXPECT_EQ(date_time.Accepts(text), ymd.ok()) << text;
        valid += ymd.ok();
      }
    }
  }
  EXPECT_EQ(valid, 365 * 9 + 5);  // leap years: 0, 1600, 2000, 2024, 9996
}

TEST(JsonSchemaFormat, EachFormat) {
  const auto format = [](const char* name) {
    return absl::StrCat(R"({"type": "string", "format": ")", name, "\"}");
  };
  const auto quoted = [](std::vector<std::string> texts) {
    for (std::string& t : texts) t = Quoted(t);
    return texts;
  };
  ExpectTexts(
      format("time"), quoted({"23:59:59Z", "00:00:00z", "12:00:00.123+05:30", "08:15:00-11:00"}),
      quoted({"24:00:00Z", "12:00:00", "12:60:00Z", "12:00:60Z", "1:00:00Z", "12:00:00+5:00"}));
  ExpectTexts(format("date-time"), quoted({"2024-01-15T10:30:00Z", "2024-01-15t10:30:00.5+01:00"}),
              quoted({"2024-01-15 10:30:00Z", "2024-01-15T10:30Z", "2024-01-15"}));
  ExpectTexts(format("duration"), quoted({"P1Y2M3DT4H5M6S", "PT0S", "P3W", "P1D", "PT36H", "P1M"}),
              quoted({"P", "PT", "P1H", "P1Y2W", "1Y", "P1S", "PT1D"}));
  ExpectTexts(
      format("uuid"),
      quoted({"123e4567-e89b-12d3-a456-426614174000", "00000000-0000-0000-0000-00000000ABCD"}),
      quoted({"123e4567e89b12d3a456426614174000", "123e4567-e89b-12d3-a456-42661417400g"}));
  ExpectTexts(format("ipv4"), quoted({"192.168.0.1", "0.0.0.0", "255.255.255.255"}),
              quoted({"256.1.1.1", "01.1.1.1", "1.2.3", "1.2.3.4.5", "1.2.3.-4"}));
  ExpectTexts(format("ipv6"),
              quoted({"::1", "::", "2001:db8::8a2e:370:7334", "1:2:3:4:5:6:7:8", "fe80::", "1::8"}),
              quoted({"1::2::3", "1:2:3:4:5:6:7:8:9", "12345::", ":1", "1:2:3:4:5:6:7", "g::"}));
  ExpectTexts(format("hostname"), quoted({"example.com", "a-b.c", "localhost", "x1.y2.z3.w4"}),
              quoted({"-a.com", "a-.com", "a..b", "a.b.c.d.e", ".a", "a_b.com"}));
  ExpectTexts(format("email"), quoted({"john.doe@example.com", "a@b", "x+tag@mail.example.org"}),
              quoted({"@x.com", "a@@b", "a b@c", "a@", "a.@b", "a@-b.com"}));
  // Formats not held to are annotations, as is a format on another type.
  ExpectTexts(format("uri"), {"\"not a uri\""}, {"1"});
  ExpectTexts(R"({"type": "integer", "format": "int32"})", {"12"}, {"\"12\""});
  ExpectTexts(R"({"type": ["string", "null"], "format": "date"})", {"\"2024-02-29\"", "null"},
              {"\"2023-02-29\""});
}

// ---- Numeric bounds ----

// A decimal number without exponent ("-12.050"), exactly: sign, integer part and fraction
// digits without trailing zeros; zero is never negative.
struct Decimal {
  bool negative = false;
  __int128 whole = 0;
  std::string fraction;
};
Decimal ParseDecimal(const std::string& text) {
  Decimal d;
  size_t i = 0;
  if (text[0] == '-') d.negative = true, ++i;
  for (; i < text.size() && text[i] != '.'; ++i) d.whole = d.whole * 10 + (text[i] - '0');
  if (i < text.size()) d.fraction = text.substr(i + 1);
  d.fraction.erase(d.fraction.find_last_not_of('0') + 1);
  if (d.whole == 0 && d.fraction.empty()) d.negative = false;
  return d;
}
// -1, 0, 1 as a <, =, > b.
int Compare(const Decimal& a, const Decimal& b) {
  if (a.negative != b.negative) return a.negative ? -1 : 1;
  int c = a.whole < b.whole ? -1 : a.whole > b.whole ? 1 : a.fraction.compare(b.fraction);
  c = c < 0 ? -1 : c > 0 ? 1 : 0;
  return a.negative ? -c : c;
}
__int128 Signed(const Decimal& d) { return d.negative ? -d.whole : d.whole; }

TEST(JsonSchemaBounds, Integers) {
  Matcher m(R"({"type": "integer", "minimum": -5, "maximum": 12})");
  for (int v = -40; v <= 40; ++v) EXPECT_EQ(m.Accepts(std::to_string(v)), v >= -5 && v <= 12) << v;
  ExpectTexts(R"({"type": "integer", "minimum": -5, "maximum": 12})", {},
              {"-0", "007", "1.0", "+3"});
  ExpectTexts(R"({"type": "integer", "exclusiveMinimum": 0})", {"1", "99999999999999999999"},
              {"0", "-1", "123456789012345678901"});
  ExpectTexts(R"({"type": "integer", "minimum": 0, "exclusiveMinimum": true, "maximum": 3,
                  "exclusiveMaximum": true})",
              {"1", "2"}, {"0", "3"});  // draft 4's booleans
  ExpectTexts(R"({"type": "integer", "minimum": 1.5, "exclusiveMaximum": 3.7})", {"2", "3"},
              {"1", "4"});  // rounded inward
  ExpectTexts(R"({"type": "integer", "maximum": -3})", {"-3", "-12345678901234567890"},
              {"-2", "0", "3"});
  ExpectTexts(R"({"type": "integer", "minimum": 0, "exclusiveMinimum": -10})", {"0"}, {"-1"});
  ExpectTexts(R"({"type": ["integer", "null"], "maximum": 0})", {"null", "0", "-7"}, {"1"});
  // A number, from the keyword; bounded numbers are written without an exponent.
  ExpectTexts(R"({"minimum": 10})", {"10", "10.5", "1000"}, {"9", "9.99", "\"10\"", "1e3"});
}

TEST(JsonSchemaBounds, Numbers) {
  ExpectTexts(R"({"type": "number", "minimum": 0, "maximum": 1})",
              {"0", "0.5", "1", "1.0", "1.000", "0.999", "0.0"},
              {"1.01", "-0.1", "-0", "1e0", "2", "1.00000000000000000001"});
  ExpectTexts(R"({"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1})",
              {"0.5", "0.001", "0.99999"}, {"0", "0.0", "0.000", "1", "1.0", "-0.5"});
  ExpectTexts(R"({"type": "number", "minimum": -2, "maximum": -1})",
              {"-2", "-1.5", "-1", "-2.0", "-1.0001"}, {"-2.5", "-0.9999", "-2.0001", "0", "-3"});
  ExpectTexts(R"({"type": "number", "minimum": 0, "maximum": 0})", {"0", "0.00"}, {"0.1", "-0"});
  // Bounds with fractions, also sharing an integer part, and in exponent form.
  ExpectTexts(R"({"type": "number", "minimum": 0.25, "exclusiveMaximum": 0.75})",
              {"0.25", "0.250", "0.5", "0.7499999", "0.26"}, {"0.2499", "0.75", "0.750", "1", "0"});
  ExpectTexts(R"({"type": "number", "exclusiveMinimum": -1.5, "maximum": 2.05})",
              {"-1.4999", "-1", "0", "2", "2.05", "2.0500", "-0.5", "1.999"},
              {"-1.5", "-1.50", "-2", "2.051", "2.06", "3"});
  ExpectTexts(R"({"type": "number", "minimum": 1e-3, "maximum": 1.5e1})",
              {"0.001", "0.0010", "15", "14.99", "0.5"}, {"0.0009", "0", "15.01", "16"});
  ExpectTexts(R"({"type": "number", "minimum": -0.5, "maximum": -0.25})", {"-0.5", "-0.3", "-0.25"},
              {"-0.2", "-0.51", "0", "-1"});
  ExpectTexts(R"({"type": "integer", "minimum": -2.5, "maximum": 1e1})", {"-2", "10"},
              {"-3", "11"});
  // Bounds past the digits a number is written with: tiny, huge, the extremes of a double.
  ExpectTexts(R"({"type": "number", "minimum": 1e-300, "maximum": 1})",
              {"0.1", "0.00000000000000000001", "1"}, {"0", "0.0", "1.1"});
  ExpectTexts(R"({"type": "number", "minimum": -1.7976931348623157e308, "maximum": 5e-324})",
              {"-99999999999999999999.5", "0", "-0.5"}, {"0.00000000000000000001", "1"});
  ExpectError(R"({"type": "integer", "minimum": 1e300})", "no integer of at most 20 digits");
}

// Bounds share their rules' tails: a hundred properties with bounds of their own stay far
// inside the grammar's limits (each used to cost over a thousand rules).
TEST(JsonSchemaBounds, ManyBoundedPropertiesCompile) {
  json schema = {{"type", "object"}, {"properties", json::object()}};
  for (int i = 0; i < 100; ++i) {
    schema["properties"][absl::StrCat("p", i)] = {
        {"type", "number"},
        {"minimum", json::parse(absl::StrCat("-", i, ".", 100 + i))},
        {"exclusiveMaximum", json::parse(absl::StrCat(7 * i, ".", 5 + i))}};
  }
  absl::StatusOr<std::shared_ptr<const Grammar>> g = JsonSchemaGrammarFromText(schema.dump());
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_LT((*g)->rules().size(), 2000u);
  GrammarAutomaton automaton(*g);
  EXPECT_TRUE(*automaton.Accepts(R"({"p3":-3.103,"p99":693.1})"));
  EXPECT_FALSE(*automaton.Accepts(R"({"p3":-3.104})"));
  EXPECT_FALSE(*automaton.Accepts(R"({"p99":693.104})"));
}

TEST(JsonSchemaBounds, RandomBoundsAndValues) {
  std::mt19937_64 rng(5);
  const auto random_int = [&](int digits) -> __int128 {
    __int128 v = 0;
    for (int i = 0, n = 1 + static_cast<int>(rng() % digits); i < n; ++i) v = v * 10 + rng() % 10;
    return rng() % 2 ? -v : v;
  };
  const auto text_of = [](__int128 v) {
    std::string digits;
    for (__int128 u = v < 0 ? -v : v; digits.empty() || u > 0; u /= 10) {
      digits.insert(digits.begin(), static_cast<char>('0' + static_cast<int>(u % 10)));
    }
    return (v < 0 ? "-" : "") + digits;
  };
  int accepted = 0, total = 0;
  for (int n = 0; n < 160; ++n) {
    const bool integer = n % 2 == 0;
    const int digits = n % 3 == 0 ? 2 : 18;
    // Bounds as decimal texts: whole, or with up to 3 fraction digits (rounded inward for
    // integers) after at most 12 whole ones, which a double holds exactly as written.
    const auto random_bound = [&] {
      if (rng() % 2) return text_of(random_int(digits));
      std::string t = text_of(random_int(std::min(digits, 12))) + absl::StrCat(".", rng() % 1000);
      if (t.starts_with("-0.")) t = t.substr(1);  // "-0.5" written with its sign by hand below
      if (rng() % 4 == 0 && t.starts_with("0.")) t = "-" + t;
      return t;
    };
    std::optional<std::string> lo, hi;
    const bool lo_exclusive = rng() % 2, hi_exclusive = rng() % 2;
    if (rng() % 4 != 0) lo = random_bound();
    if (rng() % 4 != 0) hi = random_bound();
    if (lo && hi && Compare(ParseDecimal(*lo), ParseDecimal(*hi)) > 0) std::swap(lo, hi);
    json schema = {{"type", integer ? "integer" : "number"}};
    if (lo) schema[lo_exclusive ? "exclusiveMinimum" : "minimum"] = json::parse(*lo);
    if (hi) schema[hi_exclusive ? "exclusiveMaximum" : "maximum"] = json::parse(*hi);
    const std::optional<Decimal> lo_d = lo ? std::optional(ParseDecimal(*lo)) : std::nullopt;
    const std::optional<Decimal> hi_d = hi ? std::optional(ParseDecimal(*hi)) : std::nullopt;
    // What the grammar must accept: the decimal text's value within the bounds.
    const auto within = [&](const Decimal& d) {
      return (!lo || (lo_exclusive ? Compare(d, *lo_d) > 0 : Compare(d, *lo_d) >= 0)) &&
             (!hi || (hi_exclusive ? Compare(d, *hi_d) < 0 : Compare(d, *hi_d) <= 0));
    };
    absl::StatusOr<std::shared_ptr<const Grammar>> g = JsonSchemaGrammarFromText(schema.dump());
    if (!g.ok()) {  // an empty range: no integer between them, or one point excluded
      bool some = false;
      if (integer && lo && hi) {
        for (__int128 v = Signed(*lo_d) - 1; v <= Signed(*hi_d) + 1; ++v) {
          some |= within(ParseDecimal(text_of(v)));
        }
      }
      EXPECT_TRUE(lo && hi && !some && (integer || Compare(*lo_d, *hi_d) == 0))
          << schema.dump() << ": " << g.status();
      continue;
    }
    GrammarAutomaton automaton(*g);
    for (int t = 0; t < 60; ++t) {
      // Values near the bounds, at them (with and without trailing zeros), and anywhere.
      __int128 base = random_int(digits);
      if (lo && rng() % 3 == 0) base = Signed(*lo_d) + static_cast<int>(rng() % 5) - 2;
      if (hi && rng() % 3 == 0) base = Signed(*hi_d) + static_cast<int>(rng() % 5) - 2;
      std::string text = text_of(base);
      if (!integer && rng() % 2) text += rng() % 2 ? ".0" : absl::StrCat(".", rng() % 1000);
      if (!integer && rng() % 8 == 0) text = absl::StrCat("-0.", 1 + rng() % 999);
      if (!integer && lo && rng() % 6 == 0) {
        text = *lo + (lo->find('.') == std::string::npos ? "" : "0");
      }
      if (!integer && hi && rng() % 6 == 0) text = *hi;
      const Decimal value = ParseDecimal(text);
      if (text[0] == '-' && !value.negative) continue;  // "-0" forms are never written
      const bool expected = within(value);
      absl::StatusOr<bool> ok = automaton.Accepts(text);
      ASSERT_TRUE(ok.ok()) << ok.status();
      EXPECT_EQ(*ok, expected) << schema.dump() << " text " << text;
      accepted += *ok;
      ++total;
    }
  }
  EXPECT_GT(total, 7000);
  EXPECT_GT(accepted, total / 5);
  EXPECT_LT(accepted, total * 4 / 5);
}

TEST(JsonSchemaBounds, Errors) {
  ExpectError(R"({"type": "integer", "minimum": 5, "maximum": 4})",
              "#: no integer of at most 20 digits lies between the bounds");
  ExpectError(R"({"type": "integer", "exclusiveMinimum": 4, "exclusiveMaximum": 5})", "no integer");
  ExpectError(R"({"type": "number", "minimum": 1e30})", "no number of at most 20 digits");
  ExpectError(R"({"type": "number", "minimum": 0.5, "exclusiveMaximum": 0.5})",
              "no number of at most 20 digits");
  ExpectError(R"({"type": "number", "minimum": 0.75, "maximum": 0.5})", "no number");
  ExpectError(R"({"type": "integer", "minimum": "0"})", "#/minimum: must be a number");
  ExpectError(R"({"type": "string", "maximum": {}})", "#/maximum: must be a number");
  ExpectError(R"({"type": "integer", "exclusiveMinimum": true})",
              "#/exclusiveMinimum: true needs \"minimum\" beside it");
  ExpectError(R"({"enum": [1, 2], "minimum": 0})", "#/minimum: \"minimum\" alongside \"enum\"");
}

// ---- multipleOf ----

TEST(JsonSchemaMultipleOf, Integers) {
  Matcher three(R"({"type": "integer", "multipleOf": 3})");
  for (int v = -40; v <= 40; ++v) EXPECT_EQ(three.Accepts(std::to_string(v)), v % 3 == 0) << v;
  ExpectTexts(R"({"type": "integer", "multipleOf": 3})", {"99999999999999999999", "-3"},
              {"-0", "03", "3.0", "3e0", "999999999999999999999"});
  Matcher bounded(R"({"type": "integer", "minimum": -7, "exclusiveMaximum": 25, "multipleOf": 5})");
  for (int v = -40; v <= 40; ++v) {
    EXPECT_EQ(bounded.Accepts(std::to_string(v)), v >= -7 && v < 25 && v % 5 == 0) << v;
  }
  // Trailing zeros are written after the rest; 0 alone.
  ExpectTexts(R"({"type": "integer", "multipleOf": 100, "minimum": -1000, "maximum": 1000})",
              {"0", "100", "1000", "-500", "-1000"}, {"50", "1100", "-1100", "00", "000", "-0"});
  // A fraction: n is a multiple of 2.5 where it is one of 5; of 0.5, always.
  ExpectTexts(R"({"type": "integer", "multipleOf": 2.5})", {"0", "5", "-15", "10"},
              {"2", "2.5", "7", "5.0"});
  ExpectTexts(R"({"type": "integer", "multipleOf": 0.5, "maximum": 2})", {"2", "1", "-9"},
              {"3", "1.5"});
  // 10.24 = 1024 / 100: integer multiples are those of 256.
  ExpectTexts(R"({"type": "integer", "multipleOf": 10.24})", {"0", "256", "-512"},
              {"128", "1024.0", "10"});
}

TEST(JsonSchemaMultipleOf, NumbersAreWrittenWithItsFractionDigits) {
  ExpectTexts(R"({"type": "number", "multipleOf": 0.01, "minimum": 0, "maximum": 100})",
              {"0.00", "19.99", "100.00", "0.05", "7.10"},
              {"19.999", "100.01", "-0.01", "19.9", "20", "1e1", "-0.00", "00.50"});
  ExpectTexts(R"({"type": "number", "multipleOf": 0.25})", {"0.25", "-1.50", "3.00", "0.00"},
              {"0.20", "0.30", "1.25e0", "0.5"});
  ExpectTexts(R"({"multipleOf": 1.5, "exclusiveMinimum": 0})",  // a number, from the keyword
              {"1.5", "3.0", "4.5", "150.0"}, {"0.0", "1.0", "-1.5", "3"});
  ExpectTexts(R"({"type": "number", "multipleOf": 5, "exclusiveMaximum": 10.5})",
              {"0", "5", "10", "-10"}, {"5.0", "2.5", "3", "15"});
  ExpectTexts(R"({"type": ["number", "null"], "multipleOf": 0.1, "minimum": -0.25,
                  "maximum": 0.25})",
              {"null", "-0.2", "0.0", "0.2"}, {"-0.3", "0.3", "0.25", "-0.0"});
}

TEST(JsonSchemaMultipleOf, Errors) {
  for (const char* m : {"0", "-2", "\"2\"", "true"}) {
    ExpectError(absl::StrCat(R"({"type": "integer", "multipleOf": )", m, "}"),
                "#/multipleOf: must be a number above 0");
  }
  ExpectError(R"({"type": "number", "multipleOf": 1e-11})",
              "#/multipleOf: at most 10 digits after the point are held to");
  ExpectError(R"({"type": "number", "multipleOf": 12.34})", "(1234 here)");
  // All five digits count before an integer's factors of 2 and 5 go: 10245 / 5 = 2049.
  ExpectError(R"({"type": "integer", "multipleOf": 1.0245})", "(10245 here)");
  ExpectError(R"({"type": "integer", "multipleOf": 7, "minimum": 1, "maximum": 6})",
              "#: no integer of at most 20 digits lies between the bounds and is a multiple of 7");
  ExpectError(R"({"type": "integer", "multipleOf": 1e20})",
              "#/multipleOf: no integer of at most 20 digits is a multiple of it but 0");
  ExpectError(R"({"enum": [3, 6], "multipleOf": 3})",
              "#/multipleOf: \"multipleOf\" alongside \"enum\"");
}

// Random multipleOf values (up to 3 fraction digits or 2 trailing zeros), bounds and texts
// against exact arithmetic: a text is accepted iff its value lies within the bounds, is a
// multiple, and it is written as the grammar writes such numbers (no exponent; an integer's or
// a whole multiple's without a point; otherwise with as many fraction digits as the multiple).
TEST(JsonSchemaMultipleOf, RandomMultiplesBoundsAndValues) {
  std::mt19937_64 rng(11);
  const auto text_of = [](__int128 v) {
    std::string digits;
    for (__int128 u = v < 0 ? -v : v; digits.empty() || u > 0; u /= 10) {
      digits.insert(digits.begin(), static_cast<char>('0' + static_cast<int>(u % 10)));
    }
    return (v < 0 ? "-" : "") + digits;
  };
  // v * 10^k as text, the point k digits from the end.
  const auto scaled_text = [&](__int128 scaled, int k) {
    std::string t = text_of(scaled < 0 ? -scaled : scaled);
    if (k > 0) {
      if (static_cast<int>(t.size()) <= k) t.insert(0, k + 1 - t.size(), '0');
      t.insert(t.size() - k, ".");
    }
    return (scaled < 0 ? "-" : "") + t;
  };
  int accepted = 0, total = 0;
  for (int n = 0; n < 120; ++n) {
    const bool integer = n % 2 == 0;
    const int c = 1 + static_cast<int>(rng() % 40), k = static_cast<int>(rng() % 4);
    const int zeros = k == 0 ? static_cast<int>(rng() % 3) : 0;
    const std::string m_text = scaled_text(c, k) + std::string(zeros, '0');
    const Decimal m = ParseDecimal(m_text);
    // The multiple's digits without the point, and its fraction length (from its value).
    const int mk = static_cast<int>(m.fraction.size());
    __int128 m_scaled = m.whole;
    for (char ch : m.fraction) m_scaled = m_scaled * 10 + (ch - '0');
    for (int i = static_cast<int>(m.fraction.size()); i < mk; ++i) m_scaled *= 10;
    const int digits = n % 3 == 0 ? 3 : 8;
    const auto random_int = [&](int d) -> __int128 {
      __int128 v = 0;
      for (int i = 0, len = 1 + static_cast<int>(rng() % d); i < len; ++i) v = v * 10 + rng() % 10;
      return rng() % 2 ? -v : v;
    };
    std::optional<__int128> lo, hi;  // whole bounds
    if (rng() % 3 != 0) lo = random_int(digits);
    if (rng() % 3 != 0) hi = random_int(digits);
    if (lo && hi && *lo > *hi) std::swap(lo, hi);
    const bool lo_exclusive = rng() % 2, hi_exclusive = rng() % 2;
    json schema = {{"type", integer ? "integer" : "number"}, {"multipleOf", json::parse(m_text)}};
    if (lo) schema[lo_exclusive ? "exclusiveMinimum" : "minimum"] = json::parse(text_of(*lo));
    if (hi) schema[hi_exclusive ? "exclusiveMaximum" : "maximum"] = json::parse(text_of(*hi));
    // The fraction digits a written value has: none for integers and whole multiples.
    const int written_k = integer ? 0 : mk;
    const auto expected = [&](const std::string& text) {
      const Decimal v = ParseDecimal(text);
      const size_t point = text.find('.');
      const int fraction = point == std::string::npos ? 0 : int(text.size() - point - 1);
      if (fraction != written_k || (written_k > 0 && point == 0)) return false;
      if (text[0] == '-' && !v.negative) return false;  // "-0"
      if (static_cast<int>(v.fraction.size()) > mk) return false;
      __int128 scaled = v.whole;  // v * 10^mk
      for (int i = 0; i < mk; ++i) {
        scaled = scaled * 10 + (i < static_cast<int>(v.fraction.size()) ? v.fraction[i] - '0' : 0);
      }
      if (scaled % m_scaled != 0) return false;
      const __int128 signed_whole = v.negative ? -v.whole : v.whole;
      const bool has_fraction = !v.fraction.empty();
      if (lo) {
        if (signed_whole < *lo || (signed_whole == *lo && lo_exclusive && !has_fraction) ||
            (signed_whole == *lo && v.negative && has_fraction)) {
          return false;
        }
      }
      if (hi) {
        if (signed_whole > *hi || (signed_whole == *hi && hi_exclusive && !has_fraction) ||
            (signed_whole == *hi && !v.negative && has_fraction)) {
          return false;
        }
      }
      return true;
    };
    absl::StatusOr<std::shared_ptr<const Grammar>> g = JsonSchemaGrammarFromText(schema.dump());
    if (!g.ok()) {  // no multiple between the bounds: none of the texts there is one
      ASSERT_TRUE(lo && hi && *hi - *lo <= 1000) << schema.dump() << ": " << g.status();
      __int128 unit = 1;
      for (int i = 0; i < written_k; ++i) unit *= 10;
      for (__int128 v = *lo * unit; v <= *hi * unit; ++v) {
        EXPECT_FALSE(expected(scaled_text(v, written_k))) << schema.dump() << ": " << g.status();
      }
      continue;
    }
    GrammarAutomaton automaton(*g);
    for (int t = 0; t < 60; ++t) {
      // A scaled value near a bound or anywhere, often rounded to a multiple, written with the
      // multiple's fraction digits or one more or fewer.
      __int128 base = random_int(digits);
      if (lo && rng() % 3 == 0) base = *lo + static_cast<int>(rng() % 5) - 2;
      if (hi && rng() % 3 == 0) base = *hi + static_cast<int>(rng() % 5) - 2;
      const int k_text = std::max(
          0, written_k + (rng() % 5 == 0 ? 1 : 0) - (rng() % 5 == 0 && written_k > 0 ? 1 : 0));
      __int128 scaled = base;
      for (int i = 0; i < k_text; ++i) scaled = scaled * 10 + (rng() % 3 == 0 ? rng() % 10 : 0);
      if (rng() % 2) {  // round to a multiple of m at this scale, where one is whole here
        __int128 unit = m_scaled;
        for (int i = mk; i < k_text; ++i) unit *= 10;
        bool whole_unit = true;
        for (int i = k_text; i < mk; ++i) whole_unit &= unit % 10 == 0, unit /= 10;
        if (whole_unit && unit > 0) scaled -= scaled % unit;
      }
      const std::string text = scaled_text(scaled, k_text);
      absl::StatusOr<bool> ok = automaton.Accepts(text);
      ASSERT_TRUE(ok.ok()) << ok.status();
      EXPECT_EQ(*ok, expected(text)) << schema.dump() << " text " << text;
      accepted += *ok;
      ++total;
    }
  }
  EXPECT_GT(total, 6000);
  EXPECT_GT(accepted, total / 8);
  EXPECT_LT(accepted, total * 7 / 8);
}

}  // namespace
}  // namespace attnres::structured
