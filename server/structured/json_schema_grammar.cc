// JSON Schema -> Grammar (see json_schema_grammar.h). One walk over the schema: each schema becomes
// the alternatives of a rule (inlined where it is one alternative of its parent: anyOf branches),
// each $ref target a rule declared once and compiled from a worklist (so recursive schemas
// terminate and each target is compiled once), and the pieces every schema shares (whitespace,
// strings, numbers, any value) are built once per compile.
#include "server/structured/json_schema_grammar.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "models/status_macros.h"
#include "server/structured/regex_grammar.h"

namespace attnres::structured {
namespace {

using json = nlohmann::ordered_json;  // the schema's key order is the property order
using Alternatives = std::vector<Alternative>;

// Whitespace between tokens: nothing, one space, or a newline and up to 20 spaces or tabs
// (llama.cpp's bound). Enough to pretty-print ten levels deep at two spaces; not enough for a
// model to stall by writing whitespace forever.
constexpr int kMaxIndent = 20;
// Digits of a number: enough for any int64 or uint64 and any double as nlohmann or Python write
// it (17 significant digits), few enough that a model cannot loop on "0.3333...". With at most
// 2 exponent digits no accepted number overflows a double (which nlohmann refuses to read).
constexpr int kMaxIntegerDigits = 20;
constexpr int kMaxFractionDigits = 20;
constexpr int kMaxExponentDigits = 2;
// Schemas nested inside one another (a $ref target starts again from 0).
constexpr int kMaxSchemaDepth = 64;
// Counted repetition (minLength, maxItems, ...) costs a rule per count, so a schema's counts add
// up to at most this, well inside GrammarLimits::max_rules.
constexpr int64_t kMaxCounted = 1 << 15;

// Keywords that do not constrain values; "$defs" and "definitions" hold schemas that only a $ref
// reaches.
bool IsIgnored(std::string_view key) {
  static constexpr std::string_view kIgnored[] = {
      "$schema", "$id",         "$anchor",  "$comment",  "$defs",           "definitions",
      "title",   "description", "default",  "examples",  "example",         "format",
      "strict",  "deprecated",  "readOnly", "writeOnly", "contentEncoding", "contentMediaType"};
  return key.starts_with("x-") ||
         std::find(std::begin(kIgnored), std::end(kIgnored), key) != std::end(kIgnored);
}

bool IsSupported(std::string_view key) {
  static constexpr std::string_view kSupported[] = {"type",
                                                    "enum",
                                                    "const",
                                                    "nullable",
                                                    "anyOf",
                                                    "oneOf",
                                                    "allOf",
                                                    "$ref",
                                                    "properties",
                                                    "required",
                                                    "items",
                                                    "prefixItems",
                                                    "minItems",
                                                    "maxItems",
                                                    "minLength",
                                                    "maxLength",
                                                    "additionalItems",
                                                    "additionalProperties",
                                                    "pattern",
                                                    "minimum",
                                                    "maximum",
                                                    "exclusiveMinimum",
                                                    "exclusiveMaximum",
                                                    "multipleOf",
                                                    "minProperties",
                                                    "maxProperties"};
  return std::find(std::begin(kSupported), std::end(kSupported), key) != std::end(kSupported);
}

// The string formats held to (JSON Schema 2020-12's, RFC 3339 and RFC 5321 among them), as
// whole-text patterns over ASCII. Each accepts only valid values but not every valid value where
// the full rule would not fit a pattern: dates check the month's days (February 29 in leap
// years), times have no leap second, host names at most 4 labels of up to 62 characters (so
// never past 253), email addresses a dot-atom local part of at most 63, IPv6 no embedded IPv4.
// Other formats are annotations.
const char* FormatPattern(std::string_view format) {
  static const auto* const kFormats = new absl::flat_hash_map<std::string_view, std::string>([] {
    const std::string days31 = R"((?:0[13578]|1[02])-(?:0[1-9]|[12]\d|3[01]))";
    const std::string days30 = R"((?:0[469]|11)-(?:0[1-9]|[12]\d|30))";
    const std::string february = R"(02-(?:0[1-9]|1\d|2[0-8]))";
    const std::string leap_year =
        R"((?:\d\d(?:0[48]|[2468][048]|[13579][26])|(?:[02468][048]|[13579][26])00))";
    const std::string date = absl::StrCat(R"((?:\d{4}-(?:)", days31, "|", days30, "|", february,
                                          ")|", leap_year, "-02-29)");
    const std::string time =
        R"((?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d(?:\.\d+)?(?:[Zz]|[+-](?:[01]\d|2[0-3]):[0-5]\d))";
    const std::string dur_time = R"(T(?:\d+H(?:\d+M(?:\d+S)?)?|\d+M(?:\d+S)?|\d+S))";
    const std::string dur_date = R"((?:\d+D|\d+M(?:\d+D)?|\d+Y(?:\d+M(?:\d+D)?)?))";
    const std::string label = R"([A-Za-z0-9](?:[A-Za-z0-9-]{0,60}[A-Za-z0-9])?)";
    const std::string hostname = absl::StrCat(label, R"((?:\.)", label, "){0,3}");
    const std::string atom = R"([A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,31})";
    const std::string h = "[0-9A-Fa-f]{1,4}";
    const std::string octet = R"((?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d))";
    return absl::flat_hash_map<std::string_view, std::string>{
        {"date", date},
        {"time", time},
        {"date-time", absl::StrCat(date, "[Tt]", time)},
        {"duration", absl::StrCat("P(?:", dur_date, "(?:", dur_time, ")?|", dur_time, R"(|\d+W))")},
        {"uuid", "[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"},
        {"ipv4", absl::StrCat(octet, R"((?:\.)", octet, "){3}")},
        {"ipv6", absl::StrCat("(?:(?:", h, ":){7}", h, "|(?:", h, ":){1,7}:|(?:", h, ":){1,6}:", h,
                              "|(?:", h, ":){1,5}(?::", h, "){1,2}|(?:", h, ":){1,4}(?::", h,
                              "){1,3}|(?:", h, ":){1,3}(?::", h, "){1,4}|(?:", h, ":){1,2}(?::", h,
                              "){1,5}|", h, ":(?::", h, "){1,6}|:(?:(?::", h, "){1,7}|:))")},
        {"hostname", hostname},
        {"email", absl::StrCat(atom, R"((?:\.)", atom, ")?@", hostname)},
    };
  }());
  const auto it = kFormats->find(format);
  return it == kFormats->end() ? nullptr : it->second.c_str();
}

template <typename... Args>
absl::Status Invalid(const std::string& at, const Args&... args) {
  return absl::InvalidArgumentError(absl::StrCat(at, ": ", args...));
}

// JSON pointers (RFC 6901) name schema locations: "#/properties/a~1b" is the property "a/b".
std::string Child(const std::string& at, const std::string& key) {
  return absl::StrCat(at, "/", absl::StrReplaceAll(key, {{"~", "~0"}, {"/", "~1"}}));
}
std::string Child(const std::string& at, size_t index) { return absl::StrCat(at, "/", index); }

// The node `ref` ("#", "#/$defs/Name", any JSON pointer into the root) names; nullptr if none.
const json* Resolve(const json& root, const std::string& ref) {
  if (ref.empty() || ref[0] != '#') return nullptr;
  const json* node = &root;
  if (ref.size() == 1) return node;
  if (ref[1] != '/') return nullptr;
  for (const absl::string_view segment : absl::StrSplit(ref.substr(2), '/')) {
    // One pass, so "~01" is "~1", not "/".
    const std::string key = absl::StrReplaceAll(segment, {{"~1", "/"}, {"~0", "~"}});
    if (node->is_object()) {
      const auto it = node->find(key);
      if (it == node->end()) return nullptr;
      node = &*it;
    } else if (node->is_array()) {
      size_t index = 0;
      if (key.empty() || (key.size() > 1 && key[0] == '0') ||
          !std::all_of(key.begin(), key.end(), absl::ascii_isdigit) ||
          !absl::SimpleAtoi(key, &index) || index >= node->size()) {
        return nullptr;
      }
      node = &(*node)[index];
    } else {
      return nullptr;
    }
  }
  return node;
}

// A rule name for a schema location: "#/properties/a b" -> "properties-a-b" (the builder makes
// names unique).
std::string RuleName(const std::string& at, const std::string& suffix = "") {
  std::string name;
  for (char c : at) {
    if (absl::ascii_isalnum(static_cast<unsigned char>(c))) {
      name += c;
    } else if (!name.empty() && name.back() != '-') {
      name += '-';
    }
  }
  if (name.size() > 48) name.erase(0, name.size() - 48);
  if (!name.empty() && name.back() == '-') name.pop_back();
  if (name.empty()) name = "root";
  if (!suffix.empty()) name += "-" + suffix;
  return name;
}

// Compact JSON, as enum and const values and property names are matched. Schemas read from text
// are valid UTF-8; replace keeps dump() from throwing on one built in code that is not.
std::string Dump(const json& value) {
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

constexpr std::string_view kTypeNames[] = {"null",   "boolean", "object", "array",
                                           "number", "integer", "string"};

bool HasType(const json& value, std::string_view type) {
  if (type == "null") return value.is_null();
  if (type == "boolean") return value.is_boolean();
  if (type == "object") return value.is_object();
  if (type == "array") return value.is_array();
  if (type == "string") return value.is_string();
  if (type == "number") return value.is_number();
  // integer: JSON Schema counts 1.0 as an integer.
  if (value.is_number_integer()) return true;
  if (!value.is_number_float()) return false;
  const double d = value.get<double>();
  return std::isfinite(d) && d == std::trunc(d);
}

// Without "type", the kind of value is read from the keywords present (an object for
// "properties", ...), as schemas written for tools mean it; none of them: any value.
std::vector<std::string> InferredTypes(const json& s) {
  const auto any_of = [&s](std::initializer_list<const char*> keys) {
    return std::any_of(keys.begin(), keys.end(), [&s](const char* k) { return s.contains(k); });
  };
  std::vector<std::string> types;
  if (any_of({"properties", "additionalProperties", "required"})) types.push_back("object");
  if (any_of({"items", "prefixItems", "additionalItems", "minItems", "maxItems"})) {
    types.push_back("array");
  }
  if (any_of({"minLength", "maxLength", "pattern"})) types.push_back("string");
  if (any_of({"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"})) {
    types.push_back("number");
  }
  return types;
}

// Continuation byte of a UTF-8 sequence.
constexpr std::pair<uint8_t, uint8_t> kCont{0x80, 0xBF};
// Every well-formed UTF-8 sequence of 2 to 4 bytes (RFC 3629 section 4): no overlong forms, no
// surrogates, nothing past U+10FFFF.
const std::vector<std::vector<std::pair<uint8_t, uint8_t>>>& Utf8Sequences() {
  static const auto* const kSequences = new std::vector<std::vector<std::pair<uint8_t, uint8_t>>>{
      {{0xC2, 0xDF}, kCont},
      {{0xE0, 0xE0}, {0xA0, 0xBF}, kCont},
      {{0xE1, 0xEC}, kCont, kCont},
      {{0xED, 0xED}, {0x80, 0x9F}, kCont},
      {{0xEE, 0xEF}, kCont, kCont},
      {{0xF0, 0xF0}, {0x90, 0xBF}, kCont, kCont},
      {{0xF1, 0xF3}, kCont, kCont, kCont},
      {{0xF4, 0xF4}, {0x80, 0x8F}, kCont, kCont}};
  return *kSequences;
}

ByteSet Bytes(std::string_view chars) {
  ByteSet set;
  for (char c : chars) set.Add(static_cast<uint8_t>(c));
  return set;
}

Alternative Concat(Alternative a, const Alternative& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

// The rules of one schema (and of every schema its $refs reach) in a builder.
class SchemaCompiler {
 public:
  SchemaCompiler(GrammarBuilder& b, const json& root) : b_(b), root_(root) {}

  absl::StatusOr<int> CompileRoot() {
    ASSIGN_OR_RETURN(const Element root, RefElement("#", "#"));
    while (!pending_.empty()) {
      const Pending p = std::move(pending_.back());
      pending_.pop_back();
      ASSIGN_OR_RETURN(Alternatives alternatives, SchemaAlternatives(*p.schema, p.at, 0));
      b_.DefineRule(p.rule, std::move(alternatives));
    }
    return root.index;
  }

 private:
  // A $ref target: declared when first referenced, compiled from the worklist.
  struct Pending {
    int rule;
    const json* schema;
    std::string at;
  };

  // ---- Schemas ----

  // The alternatives of the rule that matches `s`'s values; `at` is `s`'s location.
  absl::StatusOr<Alternatives> SchemaAlternatives(const json& s, const std::string& at, int depth) {
    if (depth > kMaxSchemaDepth) {
      return Invalid(at, "schemas nested more than ", kMaxSchemaDepth, " deep");
    }
    if (s.is_boolean()) {
      if (!s.get<bool>()) return Invalid(at, "schema false accepts nothing");
      return Alternatives{{AnyValue()}};
    }
    if (!s.is_object()) return Invalid(at, "a schema must be an object or a boolean");
    for (auto it = s.begin(); it != s.end(); ++it) {
      if (!IsIgnored(it.key()) && !IsSupported(it.key())) {
        return Invalid(Child(at, it.key()), "keyword \"", it.key(),
                       "\" is not supported (the output would not be held to it)");
      }
    }
    const json* nullable = Find(s, "nullable");
    if (nullable != nullptr && !nullable->is_boolean()) {
      return Invalid(Child(at, "nullable"), "must be a boolean");
    }
    // Keywords of one type are checked even where the schema's type leaves them unused.
    if (const json* pattern = Find(s, "pattern"); pattern != nullptr && !pattern->is_string()) {
      return Invalid(Child(at, "pattern"), "must be a string");
    }
    for (const char* key : {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"}) {
      const json* v = Find(s, key);
      if (v != nullptr && !v->is_number() && !(v->is_boolean() && key[0] == 'e')) {
        return Invalid(Child(at, key), "must be a number");
      }
    }
    if (const json* m = Find(s, "multipleOf");
        m != nullptr && !(m->is_number() && m->get<double>() > 0.0)) {
      return Invalid(Child(at, "multipleOf"), "must be a number above 0");
    }
    Alternatives alternatives;
    if (s.contains("$ref")) {
      ASSIGN_OR_RETURN(alternatives, RefAlternatives(s, at));
    } else if (const char* keyword = Combinator(s)) {
      ASSIGN_OR_RETURN(alternatives, CombinatorAlternatives(s, at, keyword, depth));
    } else if (s.contains("enum") || s.contains("const")) {
      ASSIGN_OR_RETURN(alternatives, LiteralAlternatives(s, at));
    } else {
      ASSIGN_OR_RETURN(alternatives, TypedAlternatives(s, at, depth));
    }
    const Alternative null = b_.Literal("null");
    if (nullable != nullptr && nullable->get<bool>() &&
        std::find(alternatives.begin(), alternatives.end(), null) == alternatives.end()) {
      alternatives.push_back(null);
    }
    return alternatives;
  }

  // One element matching `s`'s values: a rule of its own unless it is one already.
  absl::StatusOr<Element> Value(const json& s, const std::string& at, int depth) {
    ASSIGN_OR_RETURN(Alternatives alternatives, SchemaAlternatives(s, at, depth));
    if (alternatives.size() == 1 && alternatives[0].size() == 1 &&
        alternatives[0][0].kind == Element::Kind::kRule) {
      return alternatives[0][0];
    }
    return b_.Ref(b_.AddRule(RuleName(at), std::move(alternatives)));
  }

  // Value of `s` or nothing when `s` is absent or false (no items, no extra properties).
  absl::StatusOr<std::optional<Element>> ValueUnlessFalse(const json* s, const std::string& at,
                                                          int depth) {
    if (s == nullptr || (s->is_boolean() && !s->get<bool>())) return std::nullopt;
    ASSIGN_OR_RETURN(const Element value, Value(*s, at, depth));
    return value;
  }

  // $ref with only annotations (and nullable) beside it: 2019-09 applies siblings together with
  // the target, which would need an intersection of grammars.
  absl::StatusOr<Alternatives> RefAlternatives(const json& s, const std::string& at) {
    RETURN_IF_ERROR(OnlyAlongside(s, at, "$ref", {"nullable"}));
    const json& ref = s["$ref"];
    if (!ref.is_string()) return Invalid(Child(at, "$ref"), "must be a string");
    ASSIGN_OR_RETURN(const Element target, RefElement(ref.get<std::string>(), Child(at, "$ref")));
    return Alternatives{{target}};
  }

  absl::StatusOr<Element> RefElement(const std::string& ref, const std::string& at) {
    if (const auto it = refs_.find(ref); it != refs_.end()) return b_.Ref(it->second);
    const json* target = Resolve(root_, ref);
    if (target == nullptr) {
      return Invalid(at, "\"", ref,
                     "\" does not resolve (references are JSON pointers into this schema: \"#\", "
                     "\"#/$defs/Name\", \"#/definitions/Name\")");
    }
    const int rule = b_.DeclareRule(RuleName(ref));
    refs_.emplace(ref, rule);
    pending_.push_back({rule, target, ref});
    return b_.Ref(rule);
  }

  static const char* Combinator(const json& s) {
    for (const char* keyword : {"anyOf", "oneOf", "allOf"}) {
      if (s.contains(keyword)) return keyword;
    }
    return nullptr;
  }

  // anyOf and oneOf are alternatives (oneOf's "exactly one" is not checked: branches written
  // for structured outputs rarely overlap); allOf of one schema is that schema. Siblings other
  // than nullable would intersect with the branches: refused.
  absl::StatusOr<Alternatives> CombinatorAlternatives(const json& s, const std::string& at,
                                                      const std::string& keyword, int depth) {
    RETURN_IF_ERROR(OnlyAlongside(s, at, keyword, {"nullable"}));
    const std::string list_at = Child(at, keyword);
    const json& list = s[keyword];
    if (!list.is_array() || list.empty()) {
      return Invalid(list_at, "must be a non-empty array of schemas");
    }
    if (keyword == "allOf" && list.size() != 1) {
      return Invalid(list_at, "allOf of ", list.size(),
                     " schemas is not supported (only of one schema)");
    }
    Alternatives alternatives;
    for (size_t i = 0; i < list.size(); ++i) {
      ASSIGN_OR_RETURN(Alternatives branch,
                       SchemaAlternatives(list[i], Child(list_at, i), depth + 1));
      for (Alternative& a : branch) alternatives.push_back(std::move(a));
    }
    return alternatives;
  }

  // enum and const: each value written compactly, matched literally; a "type" beside them keeps
  // the values of that type.
  absl::StatusOr<Alternatives> LiteralAlternatives(const json& s, const std::string& at) {
    const char* keyword = s.contains("const") ? "const" : "enum";
    RETURN_IF_ERROR(OnlyAlongside(s, at, keyword, {"type", "nullable"}));
    ASSIGN_OR_RETURN(const std::vector<std::string> types, ExplicitTypes(s, at));
    const json& given = s[keyword];
    std::vector<const json*> values;
    if (keyword == std::string_view("const")) {
      values.push_back(&given);
    } else {
      if (!given.is_array() || given.empty()) {
        return Invalid(Child(at, "enum"), "must be a non-empty array");
      }
      for (const json& v : given) values.push_back(&v);
    }
    Alternatives alternatives;
    absl::flat_hash_set<std::string> seen;
    for (const json* v : values) {
      const bool typed =
          types.empty() || std::any_of(types.begin(), types.end(),
                                       [v](const std::string& t) { return HasType(*v, t); });
      std::string text = Dump(*v);
      if (typed && seen.insert(text).second) alternatives.push_back(b_.Literal(text));
    }
    if (alternatives.empty()) {
      return Invalid(Child(at, keyword), "no value has the type the schema names");
    }
    return alternatives;
  }

  // The names "type" lists (empty when absent).
  absl::StatusOr<std::vector<std::string>> ExplicitTypes(const json& s, const std::string& at) {
    const json* type = Find(s, "type");
    if (type == nullptr) return std::vector<std::string>{};
    std::vector<const json*> names;
    if (type->is_array()) {
      for (const json& t : *type) names.push_back(&t);
    } else {
      names.push_back(type);
    }
    std::vector<std::string> types;
    for (const json* t : names) {
      if (!t->is_string() || std::find(std::begin(kTypeNames), std::end(kTypeNames),
                                       t->get<std::string>()) == std::end(kTypeNames)) {
        return Invalid(Child(at, "type"),
                       "must be a type name (null, boolean, object, array, "
                       "number, integer, string) or a non-empty list of them");
      }
      if (std::find(types.begin(), types.end(), t->get<std::string>()) == types.end()) {
        types.push_back(t->get<std::string>());
      }
    }
    if (types.empty()) return Invalid(Child(at, "type"), "lists no type");
    return types;
  }

  absl::StatusOr<Alternatives> TypedAlternatives(const json& s, const std::string& at, int depth) {
    ASSIGN_OR_RETURN(std::vector<std::string> types, ExplicitTypes(s, at));
    if (types.empty()) types = InferredTypes(s);
    if (types.empty()) return Alternatives{{AnyValue()}};
    const bool number = std::find(types.begin(), types.end(), "number") != types.end();
    Alternatives alternatives;
    for (const std::string& type : types) {
      Alternatives more;
      if (type == "null" || type == "boolean") {
        more = type == "null" ? Alternatives{b_.Literal("null")}
                              : Alternatives{b_.Literal("true"), b_.Literal("false")};
      } else if (type == "integer" || type == "number") {
        if (type == "integer" && number) continue;  // numbers include the integers
        ASSIGN_OR_RETURN(more, NumericAlternatives(s, at, type == "integer"));
      } else if (type == "string") {
        ASSIGN_OR_RETURN(const Element string, BoundedString(s, at));
        more = {{string}};
      } else if (type == "array") {
        ASSIGN_OR_RETURN(more, ArrayAlternatives(s, at, depth));
      } else {
        ASSIGN_OR_RETURN(more, ObjectAlternatives(s, at, depth));
      }
      for (Alternative& a : more) alternatives.push_back(std::move(a));
    }
    return alternatives;
  }

  // ---- Strings ----

  absl::StatusOr<Element> BoundedString(const json& s, const std::string& at) {
    const json* pattern = Find(s, "pattern");
    const json* format = Find(s, "format");
    const char* format_pattern = format != nullptr && format->is_string()
                                     ? FormatPattern(format->get<std::string>())
                                     : nullptr;
    if (pattern != nullptr || format_pattern != nullptr) {
      // The grammar cannot intersect two constraints on one string.
      const char* held = pattern != nullptr ? "pattern" : "format";
      std::vector<const char*> others = {"minLength", "maxLength"};
      if (pattern != nullptr && format_pattern != nullptr) others.push_back("format");
      for (const char* other : others) {
        if (s.contains(other)) {
          return Invalid(Child(at, other), "\"", other, "\" alongside \"", held,
                         "\" is not supported (write it into the pattern)");
        }
      }
      if (pattern == nullptr) return PatternString(format_pattern, false, Child(at, "format"));
      return PatternString(pattern->get<std::string>(), true, Child(at, "pattern"));
    }
    ASSIGN_OR_RETURN(const int64_t min, Count(s, "minLength", at));
    ASSIGN_OR_RETURN(const int64_t max, Count(s, "maxLength", at));
    RETURN_IF_ERROR(CheckBounds(min, max, at, "minLength", "maxLength"));
    const int64_t lo = std::max<int64_t>(min, 0);
    if (lo == 0 && max < 0) return String();
    const auto key = std::make_pair(lo, max);
    if (const auto it = strings_.find(key); it != strings_.end()) return it->second;
    ASSIGN_OR_RETURN(const Element chars, Counted("chars", {Char()}, lo, max,
                                                  Child(at, max >= 0 ? "maxLength" : "minLength")));
    const std::string name =
        max >= 0 ? absl::StrCat("string-", lo, "-", max) : absl::StrCat("string-", lo, "-or-more");
    const Element string = b_.Ref(b_.AddRule(name, {{Quote(), chars, Quote()}}));
    strings_.emplace(key, string);
    return string;
  }

  // A JSON string whose characters `pattern` matches: anywhere (JSON Schema's "pattern",
  // ECMA-262) when `search`, else whole (formats). `at` names the keyword.
  absl::StatusOr<Element> PatternString(const std::string& pattern, bool search,
                                        const std::string& at) {
    const auto key = std::make_pair(pattern, search);
    if (const auto it = patterns_.find(key); it != patterns_.end()) return it->second;
    const absl::StatusOr<int> chars =
        AddRegexRules(b_, pattern, {.json_string = true, .ecma_search = search});
    if (!chars.ok()) return Invalid(at, chars.status().message());
    const Element string =
        b_.Ref(b_.AddRule(RuleName(at, "string"), {{Quote(), b_.Ref(*chars), Quote()}}));
    patterns_.emplace(key, string);
    return string;
  }

  // Any JSON string.
  Element String() {
    if (!string_.has_value()) {
      const Element chars = b_.Star("chars", {Char()});
      string_ = b_.Ref(b_.AddRule("string", {{Quote(), chars, Quote()}}));
    }
    return *string_;
  }

  Element Quote() { return b_.Byte('"'); }

  // One character of a string: printable ASCII (DEL included, as JSON allows) but the quote and
  // backslash, an escape, or a well-formed UTF-8 sequence. A \u escape of a surrogate comes in a
  // high-low pair (one character), so every string reads as UTF-8 (nlohmann refuses a lone one).
  Element Char() {
    if (char_.has_value()) return *char_;
    Alternatives alternatives;
    alternatives.push_back({b_.Bytes(ByteSet::Range(0x20, 0x7F).Remove('"').Remove('\\'))});
    alternatives.push_back({b_.Byte('\\'), b_.Bytes(Bytes("\"\\/bfnrt"))});
    const Element hex = b_.Bytes(Bytes("0123456789abcdefABCDEF"));
    const Element d = b_.Bytes(Bytes("dD"));
    const Alternative u = b_.Literal("\\u");
    // \uXXXX outside D800-DFFF, then \uD[89AB]XX \uD[C-F]XX.
    alternatives.push_back(Concat(u, {b_.Bytes(Bytes("0123456789abcefABCEF")), hex, hex, hex}));
    alternatives.push_back(Concat(u, {d, b_.Bytes(ByteSet::Range('0', '7')), hex, hex}));
    alternatives.push_back(Concat(Concat(u, {d, b_.Bytes(Bytes("89abAB")), hex, hex}),
                                  Concat(u, {d, b_.Bytes(Bytes("cdefCDEF")), hex, hex})));
    for (const auto& sequence : Utf8Sequences()) {
      Alternative a;
      for (const auto& [lo, hi] : sequence) a.push_back(b_.Bytes(ByteSet::Range(lo, hi)));
      alternatives.push_back(std::move(a));
    }
    char_ = b_.Ref(b_.AddRule("char", std::move(alternatives)));
    return *char_;
  }

  // ---- Numbers ----

  // -?(0|[1-9][0-9]*), at most kMaxIntegerDigits digits.
  Element Integer() {
    if (!integer_.has_value()) {
      const Element more = b_.Repeat("integer-digits", {Digit()}, 0, kMaxIntegerDigits - 1);
      const int natural =
          b_.AddRule("natural", {{b_.Byte('0')}, {b_.Bytes(ByteSet::Range('1', '9')), more}});
      integer_ =
          b_.Ref(b_.AddRule("integer", {{b_.Ref(natural)}, {b_.Byte('-'), b_.Ref(natural)}}));
    }
    return *integer_;
  }

  // An integer, then an optional fraction and exponent (RFC 8259).
  Element Number() {
    if (!number_.has_value()) {
      const Element fraction = AnyFraction();
      const Element exponent = b_.Optional(
          "exponent", {b_.Bytes(Bytes("eE")), b_.Optional("exponent-sign", {b_.Bytes(Bytes("+-"))}),
                       b_.Repeat("exponent-digits", {Digit()}, 1, kMaxExponentDigits)});
      number_ = b_.Ref(b_.AddRule("number", {{Integer(), fraction, exponent}}));
    }
    return *number_;
  }

  Element Digit() { return b_.Bytes(ByteSet::Range('0', '9')); }

  // ---- Numbers between bounds ----

  // A decimal value ±(whole.fraction), exact for any JSON number within the grammar's digits:
  // `fraction` holds no trailing zeros, and past kMaxFractionDigits digits only whether more
  // non-zero ones follow (a final '1'), which is all a comparison with a written number needs.
  // Wholes past kBeyond are as far as kMaxIntegerDigits reach.
  static constexpr __int128 kBeyond = static_cast<__int128>(10'000'000'000) * 10'000'000'000;
  struct Decimal {
    bool negative = false;  // never for zero
    __int128 whole = 0;
    std::string fraction;
  };
  struct Bound {
    Decimal value;
    bool exclusive = false;
  };

  // Integers or numbers (no exponent) between the schema's bounds; without bounds, Integer()
  // or Number(). "-0" is not written. An integer's bounds are rounded inward.
  absl::StatusOr<Alternatives> NumericAlternatives(const json& s, const std::string& at,
                                                   bool integer) {
    if (s.contains("multipleOf")) return MultipleAlternatives(s, at, integer);
    ASSIGN_OR_RETURN(const std::optional<Bound> lo, ReadBound(s, at, true, integer));
    ASSIGN_OR_RETURN(const std::optional<Bound> hi, ReadBound(s, at, false, integer));
    if (!lo.has_value() && !hi.has_value()) return Alternatives{{integer ? Integer() : Number()}};
    const auto positive = [](const Decimal& d) { return !d.negative && !IsZero(d); };
    // Non-negative values: from 0 or lo; negative ones as magnitudes: above 0 (no "-0") or -hi,
    // up to -lo.
    Alternatives alternatives;
    if (!hi.has_value() || positive(hi->value) || (IsZero(hi->value) && !hi->exclusive)) {
      const Bound from = lo.has_value() && !lo->value.negative ? *lo : Bound{};
      Unsigned(from, hi, integer, {}, &alternatives);
    }
    if (!lo.has_value() || lo->value.negative) {
      const Bound from =
          hi.has_value() && hi->value.negative ? Negated(*hi) : Bound{Decimal{}, true};
      std::optional<Bound> to;
      if (lo.has_value()) to = Negated(*lo);
      Unsigned(from, to, integer, {b_.Byte('-')}, &alternatives);
    }
    if (alternatives.empty()) {
      return Invalid(at, "no ", integer ? "integer" : "number", " of at most ", kMaxIntegerDigits,
                     " digits lies between the bounds");
    }
    return alternatives;
  }

  static bool IsZero(const Decimal& d) { return d.whole == 0 && d.fraction.empty(); }
  static Bound Negated(const Bound& b) {
    Bound n = b;
    n.value.negative = !b.value.negative && !IsZero(b.value);
    return n;
  }

  // The lower (minimum) or upper (maximum) bound of `s`: the tighter of the keyword and its
  // exclusive form (a number, or draft 4's boolean beside it); nullopt without either. For
  // integers, a whole inclusive bound.
  absl::StatusOr<std::optional<Bound>> ReadBound(const json& s, const std::string& at, bool lower,
                                                 bool integer) {
    const std::string key = lower ? "minimum" : "maximum";
    const std::string exclusive_key = lower ? "exclusiveMinimum" : "exclusiveMaximum";
    const json* inclusive = Find(s, key.c_str());
    const json* exclusive = Find(s, exclusive_key.c_str());
    std::optional<Bound> bound;
    auto tighten = [&](const json& v, bool is_exclusive, const std::string& where) {
      if (v.is_number_float() && !std::isfinite(v.get<double>())) {
        return Invalid(where, "must be finite");
      }
      Bound b{ToDecimal(v), is_exclusive};
      if (integer) b = Rounded(b, lower);
      const int c = bound.has_value() ? Compare(b.value, bound->value) : 0;
      if (!bound.has_value() || (lower ? c > 0 : c < 0) || (c == 0 && b.exclusive)) bound = b;
      return absl::OkStatus();
    };
    if (exclusive != nullptr && exclusive->is_boolean()) {  // draft 4
      if (exclusive->get<bool>() && inclusive == nullptr) {
        return Invalid(Child(at, exclusive_key), "true needs \"", key, "\" beside it");
      }
      if (inclusive != nullptr) {
        RETURN_IF_ERROR(tighten(*inclusive, exclusive->get<bool>(), Child(at, key)));
      }
      return bound;
    }
    if (inclusive != nullptr) RETURN_IF_ERROR(tighten(*inclusive, false, Child(at, key)));
    if (exclusive != nullptr) RETURN_IF_ERROR(tighten(*exclusive, true, Child(at, exclusive_key)));
    return bound;
  }

  // A JSON number (checked to be one) as a Decimal, from nlohmann's shortest round-trip text
  // for doubles ("0.1", "1e-05", "1.5e+300").
  static Decimal ToDecimal(const json& v) {
    Decimal d;
    if (v.is_number_unsigned()) {
      d.whole = v.get<uint64_t>();
    } else if (v.is_number_integer()) {
      d.negative = v.get<int64_t>() < 0;
      d.whole = d.negative ? -static_cast<__int128>(v.get<int64_t>()) : v.get<int64_t>();
    } else {
      const std::string text = v.dump();
      size_t i = 0;
      d.negative = text[0] == '-';
      if (d.negative) ++i;
      std::string digits;
      long point = -1, exponent = 0;
      for (; i < text.size() && text[i] != 'e' && text[i] != 'E'; ++i) {
        if (text[i] == '.') {
          point = static_cast<long>(digits.size());
        } else {
          digits += text[i];
        }
      }
      if (point < 0) point = static_cast<long>(digits.size());
      if (i < text.size()) exponent = std::strtol(text.c_str() + i + 1, nullptr, 10);
      point += exponent;  // digits[0:point] is the whole part
      if (point > kMaxIntegerDigits + 1) {
        d.whole = kBeyond;
      } else {
        for (long k = 0; k < point; ++k) {
          d.whole = d.whole * 10 + (k < static_cast<long>(digits.size()) ? digits[k] - '0' : 0);
        }
        d.fraction = point < 0 ? std::string(-point, '0') + digits
                               : digits.substr(std::min<size_t>(point, digits.size()));
      }
    }
    d.whole = std::min(d.whole, kBeyond);
    if (d.whole == kBeyond) d.fraction.clear();
    d.fraction.erase(d.fraction.find_last_not_of('0') + 1);
    if (d.fraction.size() > kMaxFractionDigits) {
      d.fraction.resize(kMaxFractionDigits);
      d.fraction += '1';
    }
    if (IsZero(d)) d.negative = false;
    return d;
  }

  // -1, 0, 1 as a <, =, > b.
  static int Compare(const Decimal& a, const Decimal& b) {
    if (a.negative != b.negative) return a.negative ? -1 : 1;
    int c = a.whole < b.whole ? -1 : a.whole > b.whole ? 1 : a.fraction.compare(b.fraction);
    c = c < 0 ? -1 : c > 0 ? 1 : 0;
    return a.negative ? -c : c;
  }

  // An integer type's bound: the nearest whole number inside it, inclusive.
  static Bound Rounded(const Bound& b, bool lower) {
    const __int128 x = ScaledBound(b, 0, lower);
    Bound r;
    r.value.negative = x < 0;
    r.value.whole = std::min(x < 0 ? -x : x, kBeyond);
    return r;
  }

  // Adds `sign` followed by the unsigned numbers between from and to (to absent: up to 20
  // digits): integers; or numbers by integer part, those strictly inside with any fraction and
  // those at a bound with the fractions it allows.
  void Unsigned(const Bound& from, const std::optional<Bound>& to, bool integer,
                const Alternative& sign, Alternatives* out) {
    const __int128 top = kBeyond - 1;  // 20 nines
    const __int128 a = from.value.whole, b = to.has_value() ? to->value.whole : top + 1;
    if (integer) {
      const __int128 first = from.exclusive ? a + 1 : a;
      const __int128 last = !to.has_value() ? top : to->exclusive ? b - 1 : b;
      for (Alternative& digits : Naturals(first, std::min(last, top))) {
        out->push_back(Concat(sign, digits));
      }
      return;
    }
    if (to.has_value() && a > b) return;
    const FractionBound low{from.value.fraction, from.exclusive};
    const std::optional<FractionBound> high =
        to.has_value() ? std::optional(FractionBound{to->value.fraction, to->exclusive})
                       : std::nullopt;
    auto at_whole = [&](__int128 whole, const FractionBound& lo,
                        const std::optional<FractionBound>& hi) {
      if (whole > top) return;
      const std::optional<Alternatives> fractions = Fractions(lo, hi, kMaxFractionDigits);
      if (!fractions.has_value()) return;
      const Alternative digits = Concat(sign, b_.Literal(DecimalText(whole)));
      for (const Alternative& f : *fractions) out->push_back(Concat(digits, f));
    };
    if (a == b) return at_whole(a, low, high);
    at_whole(a, low, std::nullopt);
    for (Alternative& digits : Naturals(a + 1, std::min(b - 1, top))) {
      Alternative alt = Concat(sign, digits);
      alt.push_back(AnyFraction());
      out->push_back(std::move(alt));
    }
    if (to.has_value()) at_whole(b, FractionBound{}, high);
  }

  // A bound on the digits after the point, compared as decimal fractions (shorter strings
  // padded with zeros): `digits` with no trailing zeros ("" is 0).
  struct FractionBound {
    std::string digits;
    bool exclusive = false;
  };

  // The fraction parts ("" or "." digit{1,k}) whose value lies between lo and hi (absent: below
  // 1), as alternatives; nullopt where none does.
  std::optional<Alternatives> Fractions(const FractionBound& lo,
                                        const std::optional<FractionBound>& hi, int k) {
    if (lo.digits.empty() && !lo.exclusive && !hi.has_value()) return Alternatives{{AnyFraction()}};
    const Digits d = DigitsBetween(lo, hi, k);
    Alternatives alternatives;
    if (d.empty) alternatives.push_back({});
    if (d.more.has_value()) alternatives.push_back({b_.Byte('.'), *d.more});
    if (alternatives.empty()) return std::nullopt;
    return alternatives;
  }

  // The digit strings of length 0 to k whose (zero-padded) value lies between lo and hi:
  // whether the empty one does, and a rule for the others. One call per digit of the bounds'
  // paths: the first digit either leaves both bounds behind (any rest), or follows lo's, hi's or
  // both. Memoized: bounds that share tails (every bound's path ends in zeros) share rules.
  struct Digits {
    bool empty = false;
    std::optional<Element> more;
  };
  Digits DigitsBetween(const FractionBound& lo, const std::optional<FractionBound>& hi, int k) {
    const std::string key =
        absl::StrCat(lo.digits, lo.exclusive ? "<" : "<=", hi.has_value() ? hi->digits : "-",
                     hi.has_value() && hi->exclusive ? "<" : "<=", ",", k);
    if (const auto it = fraction_digits_.find(key); it != fraction_digits_.end()) {
      return it->second;
    }
    const Digits out = NewDigitsBetween(lo, hi, k);
    fraction_digits_.emplace(key, out);
    return out;
  }
  Digits NewDigitsBetween(const FractionBound& lo, const std::optional<FractionBound>& hi, int k) {
    const bool lo_zero = lo.digits.empty(), hi_zero = hi.has_value() && hi->digits.empty();
    Digits out;
    // The empty string is 0: above lo only where lo is 0 inclusive; below hi unless hi is 0
    // exclusive.
    out.empty = lo_zero && !lo.exclusive && !(hi_zero && hi->exclusive);
    if (k == 0) return out;
    const char lo_d = lo_zero ? '0' : lo.digits[0];
    const char hi_d = !hi.has_value() ? '9' : hi_zero ? '0' : hi->digits[0];
    const auto rest = [](const FractionBound& b) {
      return FractionBound{b.digits.empty() ? "" : b.digits.substr(1), b.exclusive};
    };
    Alternatives alternatives;
    const auto add = [&](char first, char last, const Digits& tail) {
      if (tail.empty) alternatives.push_back({b_.Bytes(ByteSet::Range(first, last))});
      if (tail.more.has_value()) {
        alternatives.push_back({b_.Bytes(ByteSet::Range(first, last)), *tail.more});
      }
    };
    const bool hi_open = !hi.has_value();
    // First digits strictly between the bounds' (every 9 too when hi is absent): any rest.
    const char first = lo_d + 1, last = hi_open ? '9' : hi_d - 1;
    if (first <= last) {
      alternatives.push_back({b_.Bytes(ByteSet::Range(first, last)), AnyDigits(k - 1)});
    }
    if (hi_open || lo_d < hi_d) {
      add(lo_d, lo_d, DigitsBetween(rest(lo), std::nullopt, k - 1));
      if (!hi_open) add(hi_d, hi_d, DigitsBetween(FractionBound{}, rest(*hi), k - 1));
    } else if (lo_d == hi_d) {
      add(lo_d, lo_d, DigitsBetween(rest(lo), rest(*hi), k - 1));
    }
    if (!alternatives.empty()) {
      out.more = b_.Ref(b_.AddRule(absl::StrCat("fraction-", k), std::move(alternatives)));
    }
    return out;
  }

  // The decimal spellings (no leading zeros) of the integers in [a, b]: per length, digit-range
  // sequences as a regex range expansion writes them.
  std::vector<Alternative> Naturals(__int128 a, __int128 b) {
    std::vector<Alternative> out;
    a = std::max<__int128>(a, 0);
    __int128 low = 0, high = 9;  // the numbers of `length` digits
    for (int length = 1; length <= kMaxIntegerDigits && a <= b; ++length) {
      if (a <= high && b >= low) {
        DigitRanges(DecimalText(std::max(a, low)), DecimalText(std::min(b, high)), {}, &out);
      }
      low = high + 1;
      high = high * 10 + 9;
    }
    return out;
  }

  // lo <= hi, both of one length: `prefix` then every digit string between them.
  void DigitRanges(const std::string& lo, const std::string& hi, Alternative prefix,
                   std::vector<Alternative>* out) {
    if (lo.empty()) {
      out->push_back(std::move(prefix));
      return;
    }
    const auto with = [&](char first, char last) {
      Alternative a = prefix;
      a.push_back(b_.Bytes(ByteSet::Range(first, last)));
      return a;
    };
    const size_t n = lo.size() - 1;
    if (lo[0] == hi[0]) return DigitRanges(lo.substr(1), hi.substr(1), with(lo[0], lo[0]), out);
    const bool lo_all = lo.find_first_not_of('0', 1) == std::string::npos;
    const bool hi_all = hi.find_first_not_of('9', 1) == std::string::npos;
    if (!lo_all) DigitRanges(lo.substr(1), std::string(n, '9'), with(lo[0], lo[0]), out);
    const char first = lo_all ? lo[0] : lo[0] + 1, last = hi_all ? hi[0] : hi[0] - 1;
    if (first <= last) {
      Alternative a = with(first, last);
      for (size_t i = 0; i < n; ++i) a.push_back(Digit());
      out->push_back(std::move(a));
    }
    if (!hi_all) DigitRanges(std::string(n, '0'), hi.substr(1), with(hi[0], hi[0]), out);
  }

  // ---- multipleOf ----

  // multipleOf m = c * 10^-k * 10^zeros (c whole, without trailing zeros where k = 0; zeros only
  // where k = 0). A value v = M * 10^-k * 10^zeros is written as M's digits, with a point before
  // the last k (at least one digit before it: 0.05 is M = 5, k = 2, written "0.05"), then `zeros`
  // zeros ("0" alone for M = 0), and is a multiple iff c divides M: the digits are read left to
  // right with M's remainder mod c so far (digit d: r -> (10 r + d) mod c). A fraction has
  // exactly k digits and there is no exponent: 2.5 for m = 0.5, never 2.50 or 25e-1.
  static constexpr int kMaxMultipleFraction = 10;      // k
  static constexpr int kMaxMultipleRemainders = 1000;  // c
  struct Multiple {
    int c = 1, k = 0, zeros = 0;
  };

  absl::StatusOr<Multiple> ReadMultipleOf(const json& v, const std::string& at, bool integer) {
    const Decimal d = ToDecimal(v);  // > 0, checked with the keyword's type
    if (d.fraction.size() > kMaxMultipleFraction) {
      return Invalid(at, "at most ", kMaxMultipleFraction, " digits after the point are held to");
    }
    const std::string digits = absl::StrCat(DecimalText(d.whole), d.fraction);
    Multiple m;
    m.k = static_cast<int>(d.fraction.size());
    const size_t last = digits.find_last_not_of('0');  // d > 0: some digit is not 0
    std::string significant = digits.substr(0, last + 1);
    if (m.k == 0) m.zeros = static_cast<int>(digits.size() - last - 1);
    significant.erase(0, std::min(significant.find_first_not_of('0'), significant.size() - 1));
    __int128 c = 0;  // at most 21 whole and 10 fraction digits
    for (char ch : significant) c = c * 10 + (ch - '0');
    if (integer && m.k > 0) {  // n * 10^k divisible by c: n divisible by c / gcd(c, 10^k)
      for (int i = 0; i < m.k; ++i) {
        if (c % 2 == 0) c /= 2;
        if (c % 5 == 0) c /= 5;
      }
      m.k = 0;
    }
    if (c > kMaxMultipleRemainders) {
      return Invalid(at,
                     "held to where its digits without the point and trailing zeros make at "
                     "most ",
                     kMaxMultipleRemainders, " (", significant, " here)");
    }
    m.c = static_cast<int>(c);
    if (m.zeros >= kMaxIntegerDigits) {
      return Invalid(at, "no ", integer ? "integer" : "number", " of at most ", kMaxIntegerDigits,
                     " digits is a multiple of it but 0");
    }
    return m;
  }

  // Integers or numbers between the schema's bounds (if any) that are multiples of its
  // multipleOf; "-0" is not written.
  absl::StatusOr<Alternatives> MultipleAlternatives(const json& s, const std::string& at,
                                                    bool integer) {
    const json& multiple = *Find(s, "multipleOf");
    ASSIGN_OR_RETURN(const Multiple m, ReadMultipleOf(multiple, Child(at, "multipleOf"), integer));
    ASSIGN_OR_RETURN(const std::optional<Bound> lo, ReadBound(s, at, true, false));
    ASSIGN_OR_RETURN(const std::optional<Bound> hi, ReadBound(s, at, false, false));
    // M's range: whole parts of up to kMaxIntegerDigits digits.
    __int128 top = 1;
    for (int i = 0; i < kMaxIntegerDigits + m.k - m.zeros; ++i) top *= 10;
    --top;
    const int shift = m.k - m.zeros;  // M = v * 10^shift
    const __int128 from = lo.has_value() ? ScaledBound(*lo, shift, true) : -top;
    const __int128 to = hi.has_value() ? ScaledBound(*hi, shift, false) : top;
    Alternatives alternatives;
    const Alternative suffix = b_.Literal(std::string(m.zeros, '0'));
    const auto add = [&](__int128 a, __int128 b, const Alternative& sign) {
      a = std::max<__int128>(a, 0);
      b = std::min(b, top);
      if (a > b) return;
      if (m.zeros > 0 && a == 0) {  // M = 0 is "0", not "0000"
        alternatives.push_back(Concat(sign, b_.Literal("0")));
        a = 1;
      }
      for (Alternative& digits : MultiplesBetween(m, a, b)) {
        alternatives.push_back(Concat(Concat(sign, digits), suffix));
      }
    };
    add(from, to, {});
    if (from < 0) add(std::max<__int128>(-to, 1), -from, {b_.Byte('-')});
    if (alternatives.empty()) {
      return Invalid(at, "no ", integer ? "integer" : "number", " of at most ", kMaxIntegerDigits,
                     " digits lies between the bounds and is a multiple of ", multiple.dump());
    }
    return alternatives;
  }

  // The whole number nearest b * 10^shift inside the bound (ceil for a lower bound, floor for
  // an upper one; one step further in where b is exclusive and lands on a whole number), within
  // +-10^(kMaxIntegerDigits + 11).
  static __int128 ScaledBound(const Bound& b, int shift, bool lower) {
    const Decimal& v = b.value;
    std::string digits = DecimalText(v.whole);
    long point = static_cast<long>(digits.size()) + shift;
    digits += v.fraction;
    if (point > static_cast<long>(digits.size())) digits.append(point - digits.size(), '0');
    const std::string head = point > 0 ? digits.substr(0, point) : "0";
    const bool exact = digits.find_first_not_of('0', std::max<long>(point, 0)) == std::string::npos;
    __int128 whole = 0, limit = 1;
    for (int i = 0; i < kMaxIntegerDigits + 11; ++i) limit *= 10;
    for (char ch : head) whole = std::min(whole * 10 + (ch - '0'), limit);
    __int128 x = v.negative ? -whole : whole;  // towards zero
    if (!exact) {
      if (lower && !v.negative) ++x;  // ceil
      if (!lower && v.negative) --x;  // floor
    } else if (b.exclusive) {
      x += lower ? 1 : -1;
    }
    return x;
  }

  // M's digit strings for M in [a, b] (0 <= a <= b) with c dividing M, as m writes them (the
  // point before the last k), per length: one digit at a time, tight to a's or b's digits or
  // free; free tails are shared rules by (digits left, remainder).
  std::vector<Alternative> MultiplesBetween(const Multiple& m, __int128 a, __int128 b) {
    std::vector<Alternative> out;
    __int128 low = 0, high = 9;  // the M written with `length` digits
    int length = 1;
    for (; length < m.k + 1; ++length) high = high * 10 + 9;  // k + 1 digits: 0 to 10^(k+1) - 1
    for (; length <= kMaxIntegerDigits + m.k && a <= b; ++length) {
      if (a <= high && b >= low) {
        const std::string lo_digits = Padded(std::max(a, low), length);
        const std::string hi_digits = Padded(std::min(b, high), length);
        absl::flat_hash_map<std::tuple<int, bool, bool>, std::optional<Alternative>> tight;
        if (auto e = TightMultiples(m, lo_digits, hi_digits, 0, true, true, 0, &tight)) {
          out.push_back(std::move(*e));
        }
      }
      low = high + 1;
      high = high * 10 + 9;
    }
    return out;
  }

  static std::string Padded(__int128 v, int length) {
    std::string t = DecimalText(v);
    return std::string(length - t.size(), '0') + t;
  }

  // The digits from `pos` on, with the ones before tight to lo's (tl) and hi's (th) and
  // leaving remainder r (a rule, or nothing past the last digit); nullopt where none completes a
  // multiple. A bound whose remaining digits are all 0 (lo) or all 9 (hi) no longer constrains:
  // those tails are free.
  std::optional<Alternative> TightMultiples(
      const Multiple& m, const std::string& lo, const std::string& hi, int pos, bool tl, bool th,
      int r, absl::flat_hash_map<std::tuple<int, bool, bool>, std::optional<Alternative>>* memo) {
    const int left = static_cast<int>(lo.size()) - pos;
    tl = tl && lo.find_first_not_of('0', pos) != std::string::npos;
    th = th && hi.find_first_not_of('9', pos) != std::string::npos;
    if (!tl && !th) return FreeMultiples(m, left, r);
    const auto key = std::make_tuple(pos, tl, th);
    if (const auto it = memo->find(key); it != memo->end()) return it->second;
    Alternatives alternatives;
    FreeDigits free;
    const char first = tl ? lo[pos] : '0', last = th ? hi[pos] : '9';
    for (char d = first; d <= last; ++d) {
      const bool ntl = tl && d == lo[pos], nth = th && d == hi[pos];
      const int nr = (10 * r + (d - '0')) % m.c;
      if (!ntl && !nth) {
        free.Add(*this, m, left, d, nr);
        continue;
      }
      std::optional<Alternative> rest = TightMultiples(m, lo, hi, pos + 1, ntl, nth, nr, memo);
      if (!rest.has_value()) continue;
      Alternative a = PointBefore(m, left);
      a.push_back(b_.Byte(d));
      alternatives.push_back(Concat(std::move(a), *rest));
    }
    free.AppendTo(*this, m, left, &alternatives);
    std::optional<Alternative> out;
    if (!alternatives.empty()) {
      out = Alternative{b_.Ref(b_.AddRule("multiple-bound", std::move(alternatives)))};
    }
    memo->emplace(key, out);
    return out;
  }

  // Digits after which any tail may follow, grouped by the remainder they lead to: one
  // alternative per remainder ([digits] then the free rule for it).
  struct FreeDigits {
    absl::flat_hash_map<int, ByteSet> by_next;
    std::vector<int> order;
    void Add(SchemaCompiler& self, const Multiple& m, int left, char d, int nr) {
      if (!self.FreeMultiples(m, left - 1, nr).has_value()) return;
      if (!by_next.contains(nr)) order.push_back(nr);
      by_next[nr].Add(static_cast<uint8_t>(d));
    }
    void AppendTo(SchemaCompiler& self, const Multiple& m, int left, Alternatives* out) {
      for (int nr : order) {
        Alternative a = self.PointBefore(m, left);
        a.push_back(self.b_.Bytes(by_next[nr]));
        out->push_back(Concat(std::move(a), *self.FreeMultiples(m, left - 1, nr)));
      }
    }
  };

  // Any `left` digits after a prefix of remainder r that make M a multiple of c: a rule, or
  // nothing where no digit is left and r is 0; nullopt where none do.
  std::optional<Alternative> FreeMultiples(const Multiple& m, int left, int r) {
    const auto key = std::make_tuple(m.c, m.k, left, r);
    if (const auto it = free_multiples_.find(key); it != free_multiples_.end()) return it->second;
    std::optional<Alternative> out;
    if (left == 0) {
      if (r == 0) out = Alternative{};
    } else {
      FreeDigits free;
      for (char d = '0'; d <= '9'; ++d) free.Add(*this, m, left, d, (10 * r + (d - '0')) % m.c);
      Alternatives alternatives;
      free.AppendTo(*this, m, left, &alternatives);
      if (!alternatives.empty()) {
        out = Alternative{
            b_.Ref(b_.AddRule(absl::StrCat("multiple-", m.c, "-", left), std::move(alternatives)))};
      }
    }
    free_multiples_.emplace(key, out);
    return out;
  }

  // "." where the digit about to be written is the first of the last k.
  Alternative PointBefore(const Multiple& m, int left) {
    return m.k > 0 && left == m.k ? Alternative{b_.Byte('.')} : Alternative{};
  }

  static std::string DecimalText(__int128 v) {
    std::string s;
    do {
      s.insert(s.begin(), static_cast<char>('0' + static_cast<int>(v % 10)));
      v /= 10;
    } while (v > 0);
    return s;
  }

  // ("." digits)?, up to kMaxFractionDigits.
  Element AnyFraction() {
    if (!any_fraction_.has_value()) {
      any_fraction_ =
          b_.Optional("fraction", {b_.Byte('.'), Digit(), AnyDigits(kMaxFractionDigits - 1)});
    }
    return *any_fraction_;
  }

  // digit{0,m}: one rule per m, each the tail of the next.
  Element AnyDigits(int m) {
    while (static_cast<int>(any_digits_.size()) <= m) {
      const int n = static_cast<int>(any_digits_.size());
      Alternatives alternatives = {{}};
      if (n > 0) alternatives.push_back({Digit(), any_digits_[n - 1]});
      any_digits_.push_back(
          b_.Ref(b_.AddRule(absl::StrCat("digits-0-", n), std::move(alternatives))));
    }
    return any_digits_[m];
  }

  // ---- Any value ----

  // Any JSON value ("true", "{}", items or additionalProperties left open).
  Element AnyValue() {
    if (any_value_.has_value()) return *any_value_;
    const int value = b_.DeclareRule("value");
    any_value_ = b_.Ref(value);  // before the object and array rules, which recurse to it
    const Element object =
        b_.Ref(b_.AddRule("object", Bracketed("object", '{', Pair({String()}, *any_value_), '}')));
    const Element array = b_.Ref(b_.AddRule("array", Bracketed("array", '[', {*any_value_}, ']')));
    b_.DefineRule(value, {{object},
                          {array},
                          {String()},
                          {Number()},
                          b_.Literal("true"),
                          b_.Literal("false"),
                          b_.Literal("null")});
    return *any_value_;
  }

  // open ws close | open ws item (ws "," ws item)* ws close
  Alternatives Bracketed(const std::string& name, char open, const Alternative& item, char close) {
    const Element more = b_.Star(name + "-more", Concat(Separator(), item));
    return {{b_.Byte(open), Ws(), b_.Byte(close)},
            Concat(Concat({b_.Byte(open), Ws()}, item), {more, Ws(), b_.Byte(close)})};
  }

  // ---- Whitespace and separators ----

  Element Ws() {
    if (!ws_.has_value()) {
      const Element indent = b_.Repeat("indent", {b_.Bytes(Bytes(" \t"))}, 0, kMaxIndent);
      ws_ = b_.Ref(b_.AddRule("ws", {{}, {b_.Byte(' ')}, {b_.Byte('\n'), indent}}));
    }
    return *ws_;
  }

  Alternative Separator() { return {Ws(), b_.Byte(','), Ws()}; }

  // key ws ":" ws value
  Alternative Pair(Alternative key, Element value) {
    return Concat(std::move(key), {Ws(), b_.Byte(':'), Ws(), value});
  }

  // ---- Arrays ----

  // prefixItems (or items as an array, draft 7's tuples) are the first items in order; items
  // (additionalItems after a draft 7 tuple) the rest: after a tuple none unless given (as for
  // properties), otherwise any value unless given; minItems and maxItems count both.
  absl::StatusOr<Alternatives> ArrayAlternatives(const json& s, const std::string& at, int depth) {
    const json* items = Find(s, "items");
    const json* prefix_items = Find(s, "prefixItems");
    const char* prefix_key = "prefixItems";
    const char* rest_key = "items";
    if (prefix_items == nullptr && items != nullptr && items->is_array()) {
      prefix_items = items;
      items = Find(s, "additionalItems");
      prefix_key = "items";
      rest_key = "additionalItems";
    } else if (items != nullptr && items->is_array()) {
      return Invalid(Child(at, "items"), "must be a schema alongside prefixItems");
    }
    std::vector<Element> prefix;
    if (prefix_items != nullptr) {
      if (!prefix_items->is_array()) return Invalid(Child(at, prefix_key), "must be an array");
      for (size_t i = 0; i < prefix_items->size(); ++i) {
        ASSIGN_OR_RETURN(const Element item,
                         Value((*prefix_items)[i], Child(Child(at, prefix_key), i), depth + 1));
        prefix.push_back(item);
      }
    }
    std::optional<Element> rest;
    if (prefix_items == nullptr && items == nullptr) {
      rest = AnyValue();
    } else {
      ASSIGN_OR_RETURN(rest, ValueUnlessFalse(items, Child(at, rest_key), depth + 1));
    }
    ASSIGN_OR_RETURN(const int64_t min, Count(s, "minItems", at));
    ASSIGN_OR_RETURN(int64_t max, Count(s, "maxItems", at));
    RETURN_IF_ERROR(CheckBounds(min, max, at, "minItems", "maxItems"));
    const int64_t lo = std::max<int64_t>(min, 0);
    const int64_t k = static_cast<int64_t>(prefix.size());
    if (!rest.has_value() && (max < 0 || max > k)) max = k;
    if (lo > max && max >= 0) {
      return Invalid(Child(at, "minItems"), "minItems ", lo, " is more than the ", max,
                     " items the array may hold");
    }
    Alternatives alternatives;
    if (lo == 0) alternatives.push_back({b_.Byte('['), Ws(), b_.Byte(']')});
    if (max == 0) return alternatives;
    // tail: the items after the first j (j >= 1), each after a separator: the rest's repeats
    // once past the tuple, then for each tuple position from the end, its item or (once minItems
    // are written) nothing.
    const int64_t top = (max >= 0 && max < k) ? max : std::max<int64_t>(k, 1);
    std::optional<Element> tail;
    if (top >= k) {  // the rest is reached
      const int64_t rest_max = max < 0 ? -1 : max - top;
      if (rest_max != 0) {
        ASSIGN_OR_RETURN(tail, Counted(RuleName(at, "items"), Concat(Separator(), {*rest}),
                                       std::max<int64_t>(lo - top, 0), rest_max,
                                       Child(at, max >= 0 ? "maxItems" : "minItems")));
      }
    }
    for (int64_t j = std::min(top, k) - 1; j >= 1; --j) {
      Alternative item = Concat(Separator(), {prefix[j]});
      if (tail.has_value()) item.push_back(*tail);
      Alternatives alts = {std::move(item)};
      if (j >= lo) alts.push_back({});
      tail = b_.Ref(b_.AddRule(RuleName(at, absl::StrCat("items-after-", j)), std::move(alts)));
    }
    Alternative body = {b_.Byte('['), Ws(), k > 0 ? prefix[0] : *rest};
    if (tail.has_value()) body.push_back(*tail);
    body.push_back(Ws());
    body.push_back(b_.Byte(']'));
    alternatives.push_back(std::move(body));
    return alternatives;
  }

  // ---- Objects ----

  struct Member {
    std::string name;
    Element value;
    bool required;
  };

  // Properties in the schema's order, required ones always, optional ones when the model writes
  // them; then, where additionalProperties allows, more pairs with any names (not checked against
  // the listed ones). additionalProperties absent means none beside listed properties (OpenAI's
  // and vLLM's strict reading) and any object without "properties" (JSON Schema's).
  absl::StatusOr<Alternatives> ObjectAlternatives(const json& s, const std::string& at, int depth) {
    const json* properties = Find(s, "properties");
    if (properties != nullptr && !properties->is_object()) {
      return Invalid(Child(at, "properties"), "must be an object of schemas");
    }
    std::optional<Element> extra;
    const json* additional = Find(s, "additionalProperties");
    if (additional == nullptr) {
      if (properties == nullptr) extra = AnyValue();
    } else {
      ASSIGN_OR_RETURN(extra,
                       ValueUnlessFalse(additional, Child(at, "additionalProperties"), depth + 1));
    }
    ASSIGN_OR_RETURN(const std::vector<std::string> required, Required(s, at));
    const absl::flat_hash_set<std::string> is_required(required.begin(), required.end());
    std::vector<Member> members;
    if (properties != nullptr) {
      for (auto it = properties->begin(); it != properties->end(); ++it) {
        ASSIGN_OR_RETURN(const Element value,
                         Value(it.value(), Child(Child(at, "properties"), it.key()), depth + 1));
        members.push_back({it.key(), value, is_required.contains(it.key())});
      }
    }
    // A required name without a schema of its own is a member with additionalProperties' schema.
    for (size_t i = 0; i < required.size(); ++i) {
      if (properties != nullptr && properties->contains(required[i])) continue;
      if (!extra.has_value()) {
        return Invalid(Child(Child(at, "required"), i), "\"", required[i],
                       "\" is required but not in properties, and no other property is allowed");
      }
      members.push_back({required[i], *extra, true});
    }
    ASSIGN_OR_RETURN(const int64_t min, Count(s, "minProperties", at));
    ASSIGN_OR_RETURN(const int64_t max, Count(s, "maxProperties", at));
    if (min < 0 && max < 0) return MemberChain(members, extra, 0, -1, at);
    RETURN_IF_ERROR(CheckBounds(min, max, at, "minProperties", "maxProperties"));
    if (max >= 0 && static_cast<int64_t>(required.size()) > max) {
      return Invalid(Child(at, "maxProperties"), "maxProperties ", max, " is less than the ",
                     required.size(), " required properties");
    }
    if (!extra.has_value() && min > static_cast<int64_t>(members.size())) {
      return Invalid(Child(at, "minProperties"), "minProperties ", min, " is more than the ",
                     members.size(), " properties the object may have");
    }
    // The chain's rules carry the count of pairs written up to the larger bound (MemberChain).
    const int64_t n = static_cast<int64_t>(members.size()), cap = CountCap(min, max);
    if (cap > kMaxCounted || (n + 1) * cap > kMaxCounted - counted_) {
      return Invalid(Child(at, max >= 0 ? "maxProperties" : "minProperties"), "(", n,
                     " properties + 1) x ", cap,
                     " counted pairs are more than structured outputs can count (", kMaxCounted,
                     " in all the counts of one schema)");
    }
    counted_ += (n + 1) * cap;
    return MemberChain(members, extra, std::max<int64_t>(min, 0), max, at);
  }

  // "required": names, each once.
  absl::StatusOr<std::vector<std::string>> Required(const json& s, const std::string& at) {
    const json* required = Find(s, "required");
    if (required == nullptr) return std::vector<std::string>{};
    if (!required->is_array()) return Invalid(Child(at, "required"), "must be an array of names");
    std::vector<std::string> names;
    absl::flat_hash_set<std::string> seen;
    for (size_t i = 0; i < required->size(); ++i) {
      const json& name = (*required)[i];
      if (!name.is_string()) return Invalid(Child(Child(at, "required"), i), "must be a string");
      if (seen.insert(name.get<std::string>()).second) names.push_back(name.get<std::string>());
    }
    return names;
  }

  // The highest count of written pairs the chain's rules tell apart: max, or (unbounded) min,
  // past which all counts are alike, and at least 1 (one pair written, so the next needs a comma).
  static int64_t CountCap(int64_t min, int64_t max) {
    return max >= 0 ? max : std::max<int64_t>(min, 1);
  }

  // The members' pairs with commas wherever optional ones are left out, and min..max pairs in all
  // (max < 0: unbounded), listed and extra ones together. The rules carry the count c of pairs
  // written (1 .. CountCap: linear in the number of members without counts):
  //   after(k, c) ::= "," member_k after(k+1, c+1)  [while c < max]  [| after(k+1, c) if optional]
  //   first(k)    ::= member_k after(k+1, 1)                          [| first(k+1) if optional]
  // first(k), where none is written yet, exists up to the first required member. after(n, c) is
  // the extra pairs, each after a comma, ending where c >= min:
  //   after(n, c) ::= "," pair after(n, c+1) | ""      (pair* from CountCap on when unbounded)
  // and first(n) is pair after(n, 1). A state that cannot reach min (or would pass max) has no
  // rule and is left out.
  Alternatives MemberChain(const std::vector<Member>& members, std::optional<Element> extra,
                           int64_t min, int64_t max, const std::string& at) {
    const int64_t n = static_cast<int64_t>(members.size()), cap = CountCap(min, max);
    // A state's continuation: impossible, nothing more (an empty alternative), or a rule.
    struct Tail {
      bool possible = false;
      Alternative rest;
    };
    const auto next_count = [&](int64_t c) { return max >= 0 ? c + 1 : std::min(c + 1, cap); };
    const size_t first_required =
        std::find_if(members.begin(), members.end(), [](const Member& m) { return m.required; }) -
        members.begin();
    // after[c] for the current k (index 0 unused), from k = n down.
    std::vector<Tail> after(cap + 1);
    std::optional<Alternative> pair;
    if (extra.has_value()) pair = Pair({String()}, *extra);
    for (int64_t c = cap; c >= 1; --c) {
      if (!pair.has_value()) {
        after[c] = {c >= min, {}};
      } else if (max < 0 && c == cap) {
        after[c] = {true, {b_.Star(RuleName(at, "more"), Concat(Separator(), *pair))}};
      } else if (c == max) {
        after[c] = {true, {}};
      } else {
        Alternatives alternatives = {Concat(Concat(Separator(), *pair), after[c + 1].rest)};
        if (c >= min) alternatives.push_back({});
        after[c] = {
            true,
            {b_.Ref(b_.AddRule(RuleName(at, absl::StrCat("more-", c)), std::move(alternatives)))}};
      }
    }
    Tail first;  // none written yet
    if (pair.has_value() && max != 0) first = {true, Concat(*pair, after[1].rest)};
    for (int64_t k = n; k-- > 0;) {
      const Member& m = members[k];
      const Alternative written = Pair(b_.Literal(Dump(json(m.name))), m.value);
      std::vector<Tail> now(cap + 1);
      for (int64_t c = 1; c <= cap && k > 0; ++c) {
        Alternatives alternatives;
        if (max < 0 || c < max) {
          const Tail& then = after[next_count(c)];
          if (then.possible) {
            alternatives.push_back(Concat(Concat(Separator(), written), then.rest));
          }
        }
        if (!m.required && after[c].possible) alternatives.push_back(after[c].rest);
        if (alternatives.empty()) continue;
        now[c] = {true,
                  {b_.Ref(b_.AddRule(RuleName(at, absl::StrCat("after-", k, "-", c)),
                                     std::move(alternatives)))}};
      }
      if (k <= static_cast<int64_t>(first_required)) {
        Alternatives alternatives;
        if (max != 0 && after[next_count(0)].possible) {
          alternatives.push_back(Concat(written, after[next_count(0)].rest));
        }
        if (!m.required && first.possible) alternatives.push_back(first.rest);
        first = {false, {}};
        if (!alternatives.empty()) {
          first = {true,
                   {b_.Ref(b_.AddRule(RuleName(at, absl::StrCat("from-", k)),
                                      std::move(alternatives)))}};
        }
      }
      after = std::move(now);
    }
    // ObjectAlternatives' refusals leave some object: "{}" or a first pair.
    Alternatives alternatives;
    if (first_required == members.size() && min == 0) {
      alternatives.push_back({b_.Byte('{'), Ws(), b_.Byte('}')});
    }
    if (first.possible) {
      alternatives.push_back(
          Concat(Concat({b_.Byte('{'), Ws()}, first.rest), {Ws(), b_.Byte('}')}));
    }
    return alternatives;
  }

  // ---- Keyword values ----

  static const json* Find(const json& s, const char* key) {
    const auto it = s.find(key);
    return it == s.end() ? nullptr : &*it;
  }

  // Every keyword of `s` but `keyword`, annotations and `allowed` is refused.
  absl::Status OnlyAlongside(const json& s, const std::string& at, const std::string& keyword,
                             std::initializer_list<std::string_view> allowed) {
    for (auto it = s.begin(); it != s.end(); ++it) {
      const std::string& key = it.key();
      if (key == keyword || IsIgnored(key) ||
          std::find(allowed.begin(), allowed.end(), key) != allowed.end()) {
        continue;
      }
      return Invalid(Child(at, key), "\"", key, "\" alongside \"", keyword, "\" is not supported");
    }
    return absl::OkStatus();
  }

  // A count keyword (minLength, ...): a non-negative integer (2.0 included), -1 when absent.
  static absl::StatusOr<int64_t> Count(const json& s, const char* key, const std::string& at) {
    const json* v = Find(s, key);
    if (v == nullptr) return -1;
    constexpr int64_t kHuge = int64_t{1} << 62;  // past any count that can be built
    if (v->is_number_unsigned()) {
      return static_cast<int64_t>(std::min<uint64_t>(v->get<uint64_t>(), kHuge));
    }
    if (v->is_number_integer() && v->get<int64_t>() >= 0) return v->get<int64_t>();
    if (v->is_number_float()) {
      const double d = v->get<double>();
      if (d >= 0 && d == std::trunc(d)) return d >= 0x1p62 ? kHuge : static_cast<int64_t>(d);
    }
    return Invalid(Child(at, key), "must be a non-negative integer");
  }

  static absl::Status CheckBounds(int64_t min, int64_t max, const std::string& at,
                                  const char* min_key, const char* max_key) {
    if (min >= 0 && max >= 0 && min > max) {
      return Invalid(Child(at, min_key), min_key, " ", min, " is more than ", max_key, " ", max);
    }
    return absl::OkStatus();
  }

  // item{min,max} (max < 0: unbounded), charged against kMaxCounted; `at` names the count.
  absl::StatusOr<Element> Counted(std::string_view name, Alternative item, int64_t min, int64_t max,
                                  const std::string& at) {
    const int64_t count = max < 0 ? min : max;
    if (count > kMaxCounted - counted_) {
      return Invalid(at, count, " is more than structured outputs can count (", kMaxCounted,
                     " in all the counts of one schema)");
    }
    counted_ += count;
    return b_.Repeat(name, std::move(item), static_cast<int>(min), static_cast<int>(max));
  }

  GrammarBuilder& b_;
  const json& root_;
  absl::flat_hash_map<std::string, int> refs_;  // $ref string -> its declared rule
  std::vector<Pending> pending_;
  absl::flat_hash_map<std::pair<int64_t, int64_t>, Element> strings_;  // (minLength, maxLength)
  absl::flat_hash_map<std::pair<std::string, bool>, Element> patterns_;  // (pattern, search)
  int64_t counted_ = 0;
  std::optional<Element> ws_, char_, string_, integer_, number_, any_value_;
  std::optional<Element> any_fraction_;
  std::vector<Element> any_digits_;                           // [m]: digit{0,m}
  absl::flat_hash_map<std::string, Digits> fraction_digits_;  // DigitsBetween's, by its arguments
  // FreeMultiples's, by (c, k, digits left, remainder); nullopt: none completes a multiple.
  absl::flat_hash_map<std::tuple<int, int, int, int>, std::optional<Alternative>> free_multiples_;
};

}  // namespace

absl::StatusOr<int> AddJsonSchemaRules(GrammarBuilder& builder, const json& schema) {
  return SchemaCompiler(builder, schema).CompileRoot();
}

absl::StatusOr<std::shared_ptr<const Grammar>> JsonSchemaGrammar(const json& schema) {
  GrammarBuilder builder;
  ASSIGN_OR_RETURN(const int root, AddJsonSchemaRules(builder, schema));
  return std::move(builder).Build(root);
}

absl::StatusOr<std::shared_ptr<const Grammar>> JsonSchemaGrammarFromText(std::string_view text) {
  const json schema = json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (schema.is_discarded()) return absl::InvalidArgumentError("the schema is not valid JSON");
  if (!schema.is_object() && !schema.is_boolean()) {
    return absl::InvalidArgumentError("the schema must be a JSON object or a boolean");
  }
  return JsonSchemaGrammar(schema);
}

absl::StatusOr<std::shared_ptr<const Grammar>> JsonObjectGrammar() {
  return JsonSchemaGrammar(json{{"type", "object"}});
}

}  // namespace attnres::structured
