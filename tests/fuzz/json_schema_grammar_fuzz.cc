// Fuzz target: JSON Schema -> Grammar (server/structured/json_schema_grammar.h) on arbitrary
// schemas, and the automaton of what compiles. Input: a schema's JSON text, optionally followed
// by a NUL byte and a candidate output text. Checks: the schema compiles or is refused with an
// InvalidArgument error alike from its text and from its parsed JSON; a candidate text the
// grammar accepts is JSON; a walk through the automaton, each byte picked by the input among the
// bytes the grammar allows next, keeps every state live (it can continue or it is complete) and,
// where it ends complete, has written JSON that the grammar accepts whole and that, for a root
// schema of one plain type, has that type (strings: within minLength and maxLength characters,
// and for an ASCII pattern and value, a std::regex_search match; numbers: within their bounds,
// multiples of their multipleOf; objects: within maxProperties).
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <regex>
#include <string>
#include <string_view>
#include <vector>

#include "nlohmann/json.hpp"
#include "server/structured/json_schema_grammar.h"
#include "server/structured/token_constraint.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/fuzz/grammar_walk.h"

namespace {

using json = nlohmann::ordered_json;
using attnres::structured::GrammarAutomaton;

constexpr size_t kMaxWalk = 256;  // bytes written by one walk

bool Ascii(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return static_cast<uint8_t>(c) < 0x80; });
}

// minimum, maximum and their exclusive forms, compared as doubles (rounding is monotonic, so an
// exclusive bound is checked as an inclusive one); multipleOf as a quotient within rounding of
// a whole number.
void CheckBounds(const json& schema, const json& value) {
  const double v = value.get<double>();
  if (const json& m = schema.value("multipleOf", json()); m.is_number() && m.get<double>() > 0) {
    const double q = v / m.get<double>();
    FUZZ_CHECK(std::fabs(q - std::nearbyint(q)) <= 1e-9 * std::max(1.0, std::fabs(q)),
               "a number is a multiple of its multipleOf");
  }
  for (const char* key : {"minimum", "exclusiveMinimum"}) {
    const json& b = schema.value(key, json());
    if (b.is_number()) FUZZ_CHECK(v >= b.get<double>(), "a number holds its lower bound");
  }
  for (const char* key : {"maximum", "exclusiveMaximum"}) {
    const json& b = schema.value(key, json());
    if (b.is_number()) FUZZ_CHECK(v <= b.get<double>(), "a number holds its upper bound");
  }
}

// An ASCII pattern on an ASCII value: ECMAScript's search, where std::regex reads the pattern
// alike (one it refuses, or Python-only syntax, is not compared).
void CheckPattern(const json& schema, const std::string& value) {
  const json& pattern = schema.value("pattern", json());
  if (!pattern.is_string() || !Ascii(pattern.get<std::string>()) || !Ascii(value)) return;
  const std::string p = pattern.get<std::string>();
  if (p.find("(?P") != std::string::npos || p.find("(?<") != std::string::npos ||
      p.find("\\x{") != std::string::npos) {
    return;
  }
  try {
    const std::regex re(p, std::regex::ECMAScript);
    FUZZ_CHECK(std::regex_search(value, re), "a string matches its pattern");
  } catch (const std::regex_error&) {
  }
}

size_t Characters(const std::string& s) {
  size_t n = 0;
  for (const char c : s) n += (static_cast<uint8_t>(c) & 0xC0) != 0x80;
  return n;
}

// For a root schema {"type": T, ...} with nothing else that decides the value (no enum, const,
// $ref, combination or nullable): `value` has type T.
void CheckRootType(const json& schema, const json& value) {
  if (!schema.is_object() || !schema.contains("type") || !schema["type"].is_string()) return;
  for (const char* other : {"enum", "const", "$ref", "anyOf", "oneOf", "allOf", "nullable"}) {
    if (schema.contains(other)) return;
  }
  const std::string type = schema["type"].get<std::string>();
  if (type == "null") FUZZ_CHECK(value.is_null(), "a null schema writes null");
  if (type == "boolean") FUZZ_CHECK(value.is_boolean(), "a boolean schema writes a boolean");
  if (type == "number") {
    FUZZ_CHECK(value.is_number(), "a number schema writes a number");
    CheckBounds(schema, value);
  }
  if (type == "integer") {
    FUZZ_CHECK(
        value.is_number_integer() ||
            (value.is_number_float() && value.get<double>() == std::trunc(value.get<double>())),
        "an integer schema writes an integer");
    CheckBounds(schema, value);
  }
  if (type == "array") FUZZ_CHECK(value.is_array(), "an array schema writes an array");
  if (type == "object") {
    FUZZ_CHECK(value.is_object(), "an object schema writes an object");
    // Pairs written: a duplicate extra name makes one property of two, so only the upper count
    // holds for the parsed value.
    const json& max = schema.value("maxProperties", json());
    if (max.is_number())
      FUZZ_CHECK(value.size() <= max.get<double>(), "an object holds maxProperties");
  }
  if (type == "string") {
    FUZZ_CHECK(value.is_string(), "a string schema writes a string");
    const size_t n = Characters(value.get<std::string>());
    const json& min = schema.value("minLength", json());
    const json& max = schema.value("maxLength", json());
    if (min.is_number()) FUZZ_CHECK(n >= min.get<double>(), "a string holds minLength");
    if (max.is_number()) FUZZ_CHECK(n <= max.get<double>(), "a string holds maxLength");
    CheckPattern(schema, value.get<std::string>());
  }
}

// Text the grammar accepted whole: JSON, of the root's type.
void CheckAccepted(const json& schema, std::string_view text) {
  const json value = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  FUZZ_CHECK(!value.is_discarded(), "an accepted text is JSON");
  CheckRootType(schema, value);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  namespace structured = attnres::structured;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t nul = input.find('\0');
  const std::string_view schema_text = input.substr(0, nul);
  const json schema =
      json::parse(schema_text.begin(), schema_text.end(), nullptr, /*allow_exceptions=*/false);
  if (schema.is_discarded()) return 0;

  const auto grammar = structured::JsonSchemaGrammar(schema);
  const auto from_text = structured::JsonSchemaGrammarFromText(schema_text);
  FUZZ_CHECK(grammar.ok() == from_text.ok(), "a schema compiles alike from its text and its JSON");
  if (!grammar.ok()) {
    FUZZ_CHECK(grammar.status().code() == absl::StatusCode::kInvalidArgument,
               "a refused schema is an invalid argument");
    FUZZ_CHECK(!grammar.status().message().empty(), "a refusal says why");
    return 0;
  }
  (void)(*grammar)->ToString();

  // Small limits: a schema may make a grammar too complex to run, which is an error, not a bug.
  GrammarAutomaton automaton(*grammar, {.max_states = 4096, .max_stacks = 1 << 16});
  if (nul != std::string_view::npos) {
    const std::string_view text = input.substr(nul + 1);
    if (attnres::fuzzing::CheckedAccepts(automaton, text).value_or(false)) {
      CheckAccepted(schema, text);
    }
  }
  if (const auto walked = attnres::fuzzing::Walk(automaton, data, size, kMaxWalk)) {
    CheckAccepted(schema, *walked);
  }
  return 0;
}
