// JSON Schema -> Grammar (server/structured/json_schema_grammar.h), checked through the grammar's
// automaton on texts: every supported keyword with texts accepted and refused (bytes of UTF-8,
// numbers, property order and commas, whitespace bounds, recursion), the errors that name a
// schema location, and random schemas whose random values must be accepted written compactly or
// pretty-printed, while mutated texts that are not JSON must be refused and accepted ones must
// hold to the schema.
#include "server/structured/json_schema_grammar.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/json_schema_matching.h"

namespace attnres::structured {
namespace {

using json = nlohmann::ordered_json;

// ---- Scalars ----

TEST(JsonSchemaScalars, Integer) {
  ExpectTexts(R"({"type": "integer"})",
              {"0", "-0", "7", "-12", "9007199254740993", "12345678901234567890"},
              {"", "01", "-01", "00", "+1", "1.0", "1e5", "-", "1 ", " 1", "\"1\"", "0x1",
               "123456789012345678901"});  // 21 digits: past the cap
}

TEST(JsonSchemaScalars, Number) {
  ExpectTexts(R"({"type": "number"})",
              {"0", "-0", "1.5", "-0.25", "0.0", "1e5", "1E+5", "1.5e-10", "2e07", "-0.0e0",
               "12345678901234567890.12345678901234567890", "1.7976931348623157e+99"},
              {"1.", ".5", "1e", "1e+", "01.5", "1.5.5", "--1", "NaN", "Infinity", "-", "1e100",
               "1.123456789012345678901", "0x10", "1 "});
}

TEST(JsonSchemaScalars, BooleanAndNull) {
  ExpectTexts(R"({"type": "boolean"})", {"true", "false"}, {"True", "1", "null", "truefalse"});
  ExpectTexts(R"({"type": "null"})", {"null"}, {"nil", "", "None", "nulll"});
}

// ---- Strings ----

TEST(JsonSchemaStrings, EscapesAndUtf8) {
  ExpectTexts(R"({"type": "string"})",
              {"\"\"", "\"abc\"", R"("a\"b")", R"("\\")", R"("\/\b\f\n\r\t")",
               R"("\u00e9\u20AC\uFFFF")", R"("\ud83d\ude00")", R"("\uD7FF\uE000")",
               "\"\xC3\xA9\"",          // é, 2 bytes
               "\"\xE2\x82\xAC\"",      // €, 3 bytes
               "\"\xF0\x9F\x98\x80\"",  // 😀, 4 bytes
               "\"\xED\x9F\xBF\"",      // U+D7FF, the last before the surrogates
               "\"\xF4\x8F\xBF\xBF\"",  // U+10FFFF
               "\"\x7F\"", "\"a b~\""},
              {"\"a",
               "abc",
               "'a'",
               "\"\n\"",
               "\"\x01\"",
               "\"\t\"",
               R"("\x41")",
               R"("\u12")",
               R"("\u12G4")",
               R"("\ud83d")",  // a lone high surrogate
               R"("\ude00")",  // a lone low one
               R"("\ud83d\u0041")",
               R"("\ud83dx")",
               "\"\xC0\xAF\"",          // overlong
               "\"\xC1\xBF\"",          // overlong
               "\"\xE0\x80\xAF\"",      // overlong, 3 bytes
               "\"\xED\xA0\x80\"",      // a surrogate in UTF-8
               "\"\xF0\x8F\xBF\xBF\"",  // overlong, 4 bytes
               "\"\xF4\x90\x80\x80\"",  // past U+10FFFF
               "\"\xF5\x80\x80\x80\"",
               "\"\x80\"",
               "\"\xC3\"",
               "\"\xE2\x82\"",
               "\"\xFF\"",
               "\"a\"\"b\""});
}

TEST(JsonSchemaStrings, LengthCountsCharacters) {
  ExpectTexts(
      R"({"type": "string", "minLength": 2, "maxLength": 3})",
      {"\"ab\"", "\"abc\"", "\"\xC3\xA9\xE2\x82\xAC\"",         // 2 characters, 5 bytes
       "\"\xF0\x9F\x98\x80\xF0\x9F\x98\x80\xF0\x9F\x98\x80\"",  // 3, 12 bytes
       R"("\n\u0041")",                                         // an escape is one
       R"("\ud83d\ude00x")"},                                   // a surrogate pair is one
      {"\"a\"", "\"abcd\"", "\"\xC3\xA9\"", "\"\"",
       "\"\xF0\x9F\x98\x80\xF0\x9F\x98\x80\xF0\x9F\x98\x80\xF0\x9F\x98\x80\"", R"("\n\n\n\n")"});
  ExpectTexts(R"({"type": "string", "maxLength": 0})", {"\"\""}, {"\"a\""});
  ExpectTexts(R"({"minLength": 1})", {"\"a\"", "\"abcdef\""}, {"\"\"", "1"});  // a string
}

// ---- enum and const ----

TEST(JsonSchemaLiterals, EnumMatchesCompactJson) {
  ExpectTexts(
      R"({"enum": ["a\"b", "é", 1, 2.5, null, true, [1, "x"], {"k": [null]}]})",
      {R"("a\"b")", "\"\xC3\xA9\"", "1", "2.5", "null", "true", R"([1,"x"])", R"({"k":[null]})"},
      {R"("a\u0022b")", R"("\u00e9")", "1.0", "2", "false", R"([1, "x"])", R"("a")",
       "\"a\\\"b\" "});
}

TEST(JsonSchemaLiterals, EnumFilteredByTypeAndConst) {
  ExpectTexts(R"({"type": "string", "enum": ["a", 1, "b"]})", {"\"a\"", "\"b\""}, {"1"});
  ExpectTexts(R"({"type": "integer", "enum": [1, 1.0, 1.5]})", {"1", "1.0"}, {"1.5"});
  ExpectTexts(R"({"enum": ["a"], "nullable": true})", {"\"a\"", "null"}, {"\"b\""});
  ExpectTexts(R"({"const": "x", "description": "d"})", {"\"x\""}, {"\"y\"", "null"});
  ExpectTexts(R"({"const": {"a": [1, {}]}})", {R"({"a":[1,{}]})"}, {R"({"a": [1, {}]})"});
  ExpectError(R"({"type": "string", "enum": [1, 2]})", "#/enum: no value has the type");
  ExpectError(R"({"enum": []})", "#/enum: must be a non-empty array");
  ExpectError(R"({"enum": ["a"], "minLength": 1})", "#/minLength");
}

// ---- Objects ----

constexpr std::string_view kThreeProperties = R"({
  "type": "object",
  "properties": {"a": {"type": "integer"}, "b": {"type": "string"}, "c": {"type": "boolean"}},
  "required": ["a", "c"]})";

TEST(JsonSchemaObjects, OrderRequiredOptionalAndCommas) {
  ExpectTexts(kThreeProperties,
              {R"({"a":1,"c":true})", R"({"a":1,"b":"x","c":false})",
               R"({ "a" : 1 , "b" : "x" , "c" : true })",
               "{\n  \"a\": 1,\n  \"b\": \"x\",\n  \"c\": true\n}"},
              {R"({"c":true,"a":1})", R"({"a":1})", R"({"a":1,"b":"x"})", R"({"a":1,,"c":true})",
               R"({"a":1,"c":true,})", R"({,"a":1,"c":true})", R"({"a":1,"c":true,"d":1})",
               R"({"a":"1","c":true})", R"({"a":1 "c":true})", R"({"a":1,"c":true,"b":"x"})", "{}",
               R"({"a":1,"b":"x","b":"x","c":true})"});
}

TEST(JsonSchemaObjects, AllOptional) {
  // No "type": "properties" makes it an object.
  ExpectTexts(R"({"properties": {"a": {}, "b": {}, "c": {}}})",
              {"{}", "{ }", R"({"a":1})", R"({"b":[]})", R"({"c":null})", R"({"a":1,"c":2})",
               R"({"a":1,"b":2,"c":3})", R"({"b":{"x":1},"c":"s"})"},
              {R"({"b":1,"a":2})", R"({"a":1,})", "{,}", R"({"a":1 "b":2})", R"({"d":1})",
               R"({,"b":1})", "[]"});
}

TEST(JsonSchemaObjects, AdditionalProperties) {
  // true: more pairs after the listed ones, any names and values.
  ExpectTexts(
      R"({"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"],
          "additionalProperties": true})",
      {R"({"a":1})", R"({"a":1,"x":[1,{"y":null}],"z":"w"})"},
      {R"({"x":1,"a":1})", R"({"x":1})", R"({"a":1,})"});
  // A schema: the extra values follow it.
  ExpectTexts(R"({"type": "object", "additionalProperties": {"type": "integer"}})",
              {"{}", R"({"x":1,"y":-2})", R"({"":0})"}, {R"({"x":"1"})", R"({"x":1,"y":null})"});
  // false without properties: only the empty object.
  ExpectTexts(R"({"type": "object", "additionalProperties": false})", {"{}", "{ }"},
              {R"({"a":1})"});
  // Absent with properties: none beside them (strict); with "properties": {} only {}.
  ExpectTexts(R"({"type": "object", "properties": {}})", {"{}"}, {R"({"a":1})"});
  // Absent without properties: any object.
  ExpectTexts(R"({"type": "object"})",
              {"{}", R"({"a":{"b":[1,2,{"c":null}]},"d":"e"})", "{\"\xC3\xA9\":1}"},
              {"[]", "\"x\"", R"({"a"})", "{1:2}", R"({"a":1,})"});
}

TEST(JsonSchemaObjects, RequiredNamesWithoutSchemas) {
  // With extra properties allowed, a required name not in properties must appear among them.
  ExpectTexts(R"({"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["z"],
                  "additionalProperties": {"type": "string"}})",
              {R"({"z":"q"})", R"({"a":1,"z":"q"})", R"({"a":1,"z":"q","w":"e"})"},
              {R"({"a":1})", "{}", R"({"z":1})"});
  ExpectTexts(R"({"type": "object", "required": ["id"]})", {R"({"id":[1]})", R"({"id":1,"x":2})"},
              {"{}"});
  ExpectError(R"({"type": "object", "properties": {"a": {}}, "required": ["a", "z"]})",
              "#/required/1: \"z\" is required but not in properties");
}

TEST(JsonSchemaObjects, PropertyCounts) {
  // Listed properties only: at least two of three, in order.
  ExpectTexts(R"({"properties": {"a": {}, "b": {}, "c": {}}, "minProperties": 2})",
              {R"({"a":1,"b":2})", R"({"a":1,"c":2})", R"({"b":1,"c":2})", R"({"a":1,"b":2,"c":3})",
               "{\n  \"b\": 1,\n  \"c\": 2\n}"},
              {"{}", R"({"a":1})", R"({"c":1})", R"({"b":1,"a":2})", R"({"a":1,"b":2,})"});
  // At most one.
  ExpectTexts(R"({"properties": {"a": {}, "b": {}, "c": {}}, "maxProperties": 1})",
              {"{}", "{ }", R"({"a":1})", R"({"c":[]})"},
              {R"({"a":1,"b":2})", R"({"b":1,"c":2})", R"({"a":1,"b":2,"c":3})"});
  // A required one and extra pairs: two or three in all.
  ExpectTexts(R"({"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"],
                  "additionalProperties": {"type": "integer"}, "minProperties": 2,
                  "maxProperties": 3})",
              {R"({"a":"x","y":1})", R"({"a":"x","y":1,"z":2})", R"({ "a" : "x" , "y" : 1 })"},
              {R"({"a":"x"})", R"({"a":"x","y":1,"z":2,"w":3})", R"({"y":1,"z":2})",
               R"({"a":"x","y":"1"})", "{}"});
  // Extra pairs only (any object), at least one; exactly two; none.
  ExpectTexts(R"({"type": "object", "minProperties": 1})",
              {R"({"k":1})", R"({"k":1,"j":[],"i":{"h":null}})"}, {"{}", "{ }"});
  ExpectTexts(R"({"type": "object", "minProperties": 2, "maxProperties": 2})", {R"({"k":1,"j":2})"},
              {"{}", R"({"k":1})", R"({"k":1,"j":2,"i":3})"});
  ExpectTexts(R"({"type": "object", "maxProperties": 0})", {"{}", "{ }"}, {R"({"k":1})"});
  // Optional listed properties, then extras, counted together; past minProperties unbounded.
  ExpectTexts(R"({"properties": {"a": {}, "b": {}}, "additionalProperties": true,
                  "minProperties": 3})",
              {R"({"a":1,"b":2,"x":3})", R"({"a":1,"x":2,"y":3})", R"({"x":1,"y":2,"z":3})",
               R"({"a":1,"b":2,"x":3,"y":4,"z":5,"w":6})"},
              {R"({"a":1,"b":2})", R"({"x":1,"y":2})", R"({"a":1})", "{}"});
}

TEST(JsonSchemaObjects, NamesAreWrittenAsJson) {
  ExpectTexts(R"({"properties": {"a\"b": {"type": "null"}, "\u00e9/~": {"type": "null"}},
                  "required": ["a\"b", "é/~"]})",
              {"{\"a\\\"b\":null,\"\xC3\xA9/~\":null}"},
              {R"({"a\u0022b":null,"\u00e9/~":null})", R"({"a"b":null,"é/~":null})"});
}

// ---- Arrays ----

TEST(JsonSchemaArrays, ItemsAndCounts) {
  ExpectTexts(R"({"type": "array", "items": {"type": "integer"}})",
              {"[]", "[ ]", "[1]", "[1,2,3]", "[ 1 , 2 ]", "[\n  1,\n  2\n]"},
              {"[1,]", "[,1]", "[\"a\"]", "[1 2]", "[", "[]]", "[[1]]"});
  ExpectTexts(R"({"type": "array", "items": {"type": "integer"}, "minItems": 2, "maxItems": 3})",
              {"[1,2]", "[1,2,3]", "[ 1, 2, 3 ]"}, {"[]", "[1]", "[1,2,3,4]"});
  ExpectTexts(R"({"type": "array"})", {"[]", R"([1,"a",null,[{}],{"b":[]}])"}, {"[,]", "{}"});
  ExpectTexts(R"({"minItems": 1})", {"[null]", "[1,2]"}, {"[]"});  // an array
  ExpectTexts(R"({"type": "array", "maxItems": 0})", {"[]"}, {"[1]"});
  ExpectTexts(R"({"type": "array", "items": false})", {"[]"}, {"[1]"});
}

TEST(JsonSchemaArrays, PrefixItems) {
  // No items: the tuple, possibly cut short (minItems 0), nothing after it.
  ExpectTexts(R"({"type": "array", "prefixItems": [{"type": "integer"}, {"type": "string"}]})",
              {"[]", "[1]", R"([1,"a"])", R"([ 1 , "a" ])"},
              {R"([1,"a",2])", R"(["a"])", "[1,2]", R"([1,"a",])"});
  ExpectTexts(R"({"prefixItems": [{"type": "integer"}], "items": {"type": "string"},
                  "minItems": 2})",
              {R"([1,"a"])", R"([1,"a","b","c"])"}, {"[1]", "[1,2]", R"(["a","b"])", "[]"});
  ExpectTexts(R"({"prefixItems": [{"const": 1}, {"const": 2}, {"const": 3}], "maxItems": 2})",
              {"[]", "[1]", "[1,2]"}, {"[1,2,3]", "[2]"});
  ExpectTexts(R"({"prefixItems": [{"const": 1}, {"const": 2}], "minItems": 2, "items": false})",
              {"[1,2]"}, {"[1]", "[1,2,3]"});
  ExpectTexts(R"({"prefixItems": [{"const": 1}, {"const": 2}], "items": {"const": 3},
                  "minItems": 1, "maxItems": 4})",
              {"[1]", "[1,2]", "[1,2,3]", "[1,2,3,3]"}, {"[]", "[1,2,3,3,3]", "[1,3]"});
  // Draft 7 tuples: items as an array, additionalItems for the rest.
  ExpectTexts(R"({"type": "array", "items": [{"type": "integer"}, {"type": "string"}],
                  "additionalItems": {"type": "boolean"}})",
              {R"([1,"a",true,false])", "[1]"}, {R"([1,"a",2])"});
  ExpectError(R"({"prefixItems": [{}], "minItems": 2})",
              "#/minItems: minItems 2 is more than the 1 items");
  ExpectError(R"({"prefixItems": [{}], "items": [{}]})", "#/items: must be a schema");
}

// ---- $ref ----

TEST(JsonSchemaRefs, RecursiveTree) {
  ExpectTexts(
      R"({
    "$defs": {"node": {"type": "object",
                       "properties": {"value": {"type": "integer"},
                                      "children": {"type": "array",
                                                   "items": {"$ref": "#/$defs/node"}}},
                       "required": ["value"]}},
    "$ref": "#/$defs/node"})",
      {R"({"value":1})", R"({"value":1,"children":[]})",
       R"({"value":1,"children":[{"value":2,"children":[]},{"value":3,"children":[{"value":4}]}]})"},
      {R"({"value":1,"children":[{}]})", R"({"children":[]})",
       R"({"value":1,"children":[{"value":"x"}]})"});
}

TEST(JsonSchemaRefs, RootDefinitionsEscapesAndIndexes) {
  ExpectTexts(R"({"type": "object", "properties": {"next": {"$ref": "#"}}})",
              {"{}", R"({"next":{}})", R"({"next":{"next":{"next":{}}}})"}, {R"({"next":1})"});
  ExpectTexts(R"({"definitions": {"a": {"type": "integer"}}, "type": "array",
                  "items": {"$ref": "#/definitions/a"}})",
              {"[1,2]"}, {"[\"a\"]"});
  ExpectTexts(R"({"$defs": {"a/b": {"type": "null"}, "c~d": {"type": "boolean"}},
                  "anyOf": [{"$ref": "#/$defs/a~1b"}, {"$ref": "#/$defs/c~0d"}]})",
              {"null", "true"}, {"1"});
  ExpectTexts(R"({"prefixItems": [{"type": "integer"}, {"$ref": "#/prefixItems/0"}]})", {"[1,2]"},
              {"[1,\"a\"]"});
  // With annotations (and nullable) beside it.
  ExpectTexts(R"({"$defs": {"a": {"type": "integer"}},
                  "$ref": "#/$defs/a", "description": "d", "nullable": true})",
              {"1", "null"}, {"\"1\""});
}

TEST(JsonSchemaRefs, TargetsAreCompiledOnce) {
  auto rules = [](int properties) {
    json schema = {{"$defs", {{"big", {{"type", "object"}}}}}, {"type", "object"}};
    schema["$defs"]["big"]["properties"] = json::object();
    for (int i = 0; i < 20; ++i) {
      schema["$defs"]["big"]["properties"][absl::StrCat("p", i)] = {{"type", "string"}};
    }
    schema["properties"] = json::object();
    for (int i = 0; i < properties; ++i) {
      schema["properties"][absl::StrCat("q", i)] = {{"$ref", "#/$defs/big"}};
    }
    absl::StatusOr<std::shared_ptr<const Grammar>> g = JsonSchemaGrammar(schema);
    EXPECT_TRUE(g.ok()) << g.status();
    return g.ok() ? static_cast<int>((*g)->rules().size()) : 0;
  };
  // Each more property costs its few chain rules, not another copy of the target's.
  EXPECT_LE(rules(50) - rules(1), 49 * 3);
}

TEST(JsonSchemaRefs, Errors) {
  ExpectError(R"({"$ref": "#/$defs/missing"})", "#/$ref: \"#/$defs/missing\" does not resolve");
  ExpectError(R"({"properties": {"a": {"$ref": "#/$defs/x"}}})", "#/properties/a/$ref");
  ExpectError(R"({"$ref": "https://example.com/s.json"})", "does not resolve");
  ExpectError(R"({"prefixItems": [{}], "items": {"$ref": "#/prefixItems/01"}})", "#/items/$ref");
  ExpectError(R"({"$ref": 5})", "#/$ref: must be a string");
  ExpectError(R"({"$defs": {"a": {"type": "integer"}}, "$ref": "#/$defs/a", "type": "string"})",
              "#/type: \"type\" alongside \"$ref\" is not supported");
  // Errors inside a target name its location.
  ExpectError(R"({"$defs": {"x": {"type": "integer", "not": {"const": 3}}},
                  "$ref": "#/$defs/x"})",
              "#/$defs/x/not");
  // A reference loop that matches no byte is refused (by the grammar's left-recursion check).
  EXPECT_FALSE(JsonSchemaGrammarFromText(
                   R"({"$defs": {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}},
                       "$ref": "#/$defs/a"})")
                   .ok());
}

// ---- Combinations and type lists ----

TEST(JsonSchemaCombinators, AnyOfOneOfAllOf) {
  ExpectTexts(R"({"anyOf": [{"type": "integer"}, {"type": "string", "maxLength": 1}]})",
              {"1", "\"a\""}, {"\"ab\"", "null", "1.5"});
  ExpectTexts(R"({"oneOf": [{"type": "object", "properties": {"a": {"const": 1}},
                             "required": ["a"]},
                            {"type": "array", "items": {"type": "null"}}]})",
              {R"({"a":1})", "[null]", "[]"}, {"{}", "[1]"});
  ExpectTexts(R"({"allOf": [{"type": "integer"}], "title": "t"})", {"1"}, {"\"1\""});
  ExpectTexts(R"({"anyOf": [{"type": "string"}, {"type": "null"}], "default": null})",
              {"\"s\"", "null"}, {"1"});
  ExpectError(R"({"allOf": [{"type": "integer"}, {"type": "number"}]})",
              "#/allOf: allOf of 2 schemas is not supported");
  ExpectError(R"({"type": "object", "anyOf": [{"required": ["a"]}]})",
              "#/type: \"type\" alongside \"anyOf\" is not supported");
  ExpectError(R"({"anyOf": []})", "#/anyOf: must be a non-empty array");
  ExpectError(R"({"anyOf": [{"type": "string"}, {"not": {}}]})", "#/anyOf/1/not");
}

TEST(JsonSchemaCombinators, TypeListsNullableAndBooleanSchemas) {
  ExpectTexts(R"({"type": ["string", "null"]})", {"\"a\"", "null"}, {"1", "true"});
  ExpectTexts(R"({"type": ["integer", "number"]})", {"1", "1.5", "-2e3"}, {"\"1\""});
  ExpectTexts(R"({"type": "integer", "nullable": true})", {"1", "null"}, {"\"1\""});
  ExpectTexts(R"({"type": "object", "properties": {"a": {"type": "string", "nullable": true}},
                  "required": ["a"]})",
              {R"({"a":null})", R"({"a":"x"})"}, {"{}"});
  for (const char* any : {"true", "{}", R"({"description": "anything"})"}) {
    ExpectTexts(any, {"1", "\"s\"", "null", R"({"a":[true,{"b":-1.5e3}]})", "[]"},
                {"tru", "{", "[1,]", "'s'"});
  }
  ExpectError("false", "#: schema false accepts nothing");
  ExpectError(R"({"properties": {"a": false}})", "#/properties/a: schema false accepts nothing");
}

// ---- Whitespace ----

TEST(JsonSchemaWhitespace, BoundedBetweenTokensNoneOutside) {
  const std::string schema = R"({"type": "object", "properties": {"a": {"type": "array",
      "items": {"type": "integer"}}}, "required": ["a"]})";
  const std::string indent20(20, ' ');
  ExpectTexts(schema,
              {"{\n  \"a\": [\n    1,\n    2\n  ]\n}", R"({ "a" : [ 1 ] })",
               "{\n\t\"a\":\n\t\t[]\n}", "{\n" + indent20 + "\"a\":[]}", "{\"a\":[]\n}"},
              {" {\"a\":[]}", "{\"a\":[]} ", "{\"a\":[]}\n", "{\n\n\"a\":[]}", "{  \"a\":[]}",
               "{\n" + indent20 + " \"a\":[]}", "{\t\"a\":[]}", "{\r\n\"a\":[]}", "{ \n\"a\":[]}"});
  // Pretty-printing at two spaces fits ten levels.
  json deep = 1;
  for (int i = 0; i < 10; ++i) deep = json::array({deep});
  Matcher any("true");
  EXPECT_TRUE(any.Accepts(deep.dump(2)));
  EXPECT_FALSE(any.Accepts(json::array({deep}).dump(2)));
  EXPECT_TRUE(any.Accepts(json::array({deep}).dump()));
}

// ---- Refused schemas ----

TEST(JsonSchemaErrors, UnenforcedKeywordsNameTheirLocation) {
  ExpectError(R"({"type": "object", "properties": {"age": {"type": "integer", "not": {}}}})",
              "#/properties/age/not: keyword \"not\" is not supported");
  for (const char* keyword :
       {"patternProperties", "propertyNames", "uniqueItems", "contains", "maxContains", "not", "if",
        "then", "else", "dependentRequired", "dependentSchemas", "unevaluatedProperties",
        "unevaluatedItems", "$dynamicRef", "frobnicate"}) {
    json schema = {{"items", {{"type", "string"}}}};
    schema["items"][keyword] = json::object();
    ExpectError(schema.dump(), absl::StrCat("#/items/", keyword, ": keyword \"", keyword, "\""));
  }
  ExpectError(R"({"properties": {"a/b~": {"not": {}}}})", "#/properties/a~1b~0/not");
}

TEST(JsonSchemaErrors, AnnotationsAreIgnored) {
  ExpectTexts(R"({"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": "x",
                  "$comment": "c", "title": "t", "description": "d", "default": "x",
                  "examples": ["e"], "format": "uri", "deprecated": true,
                  "readOnly": true, "writeOnly": false, "x-extension": {"minimum": 1},
                  "type": "string"})",
              {"\"anything\""}, {"1"});
  ExpectTexts(R"({"type": "object", "strict": true, "properties": {"a": {"type": "integer",
                  "format": "int32"}}, "required": ["a"], "additionalProperties": false})",
              {R"({"a":1})"}, {"{}"});
}

TEST(JsonSchemaErrors, MalformedKeywordValues) {
  ExpectError(R"({"type": "float"})", "#/type: must be a type name");
  ExpectError(R"({"type": []})", "#/type: lists no type");
  ExpectError(R"({"type": "object", "required": "a"})", "#/required: must be an array");
  ExpectError(R"({"type": "object", "required": [1]})", "#/required/0: must be a string");
  ExpectError(R"({"type": "object", "properties": []})", "#/properties: must be an object");
  ExpectError(R"({"type": "array", "minItems": 3, "maxItems": 2})",
              "#/minItems: minItems 3 is more than maxItems 2");
  ExpectError(R"({"type": "string", "minLength": -1})", "#/minLength: must be a non-negative");
  ExpectError(R"({"type": "string", "maxLength": 1.5})", "#/maxLength: must be a non-negative");
  ExpectError(R"({"type": "string", "nullable": "yes"})", "#/nullable: must be a boolean");
  ExpectError(R"({"prefixItems": {}})", "#/prefixItems: must be an array");
  ExpectError(R"({"properties": {"a": 1}})", "#/properties/a: a schema must be an object");
  ExpectTexts(R"({"type": "string", "maxLength": 2.0})", {"\"ab\""}, {"\"abc\""});
}

TEST(JsonSchemaErrors, SizeBounds) {
  std::string nested = R"({"type": "integer"})";
  for (int i = 0; i < 70; ++i) nested = R"({"type": "array", "items": )" + nested + "}";
  ExpectError(nested, "nested more than 64 deep");
  std::string fine = R"({"type": "integer"})";
  for (int i = 0; i < 60; ++i) fine = R"({"type": "array", "items": )" + fine + "}";
  EXPECT_TRUE(JsonSchemaGrammarFromText(fine).ok());

  ExpectError(R"({"type": "string", "maxLength": 100000})", "#/maxLength: 100000 is more than");
  ExpectError(R"({"type": "array", "minItems": 1e300})", "#/minItems");
  EXPECT_TRUE(JsonSchemaGrammarFromText(R"({"type": "string", "maxLength": 1000})").ok());
  // The counts add up over a schema.
  json many = {{"type", "object"}, {"properties", json::object()}};
  for (int i = 0; i < 40; ++i) {
    many["properties"][absl::StrCat("p", i)] = {{"type", "string"}, {"maxLength", 1000 + i}};
  }
  ExpectError(many.dump(), "#/properties/p32/maxLength");
  // Property counts: bounds, what the properties allow, and the rules they take.
  ExpectError(R"({"type": "object", "minProperties": 3, "maxProperties": 2})",
              "#/minProperties: minProperties 3 is more than maxProperties 2");
  ExpectError(R"({"properties": {"a": {}, "b": {}}, "required": ["a", "b"], "maxProperties": 1})",
              "#/maxProperties: maxProperties 1 is less than the 2 required properties");
  ExpectError(R"({"properties": {"a": {}}, "minProperties": 2})",
              "#/minProperties: minProperties 2 is more than the 1 properties the object may have");
  ExpectError(R"({"type": "object", "minProperties": -1})",
              "#/minProperties: must be a non-negative integer");
  ExpectError(R"({"type": "object", "maxProperties": 40000})",
              "#/maxProperties: (0 properties + 1) x 40000 counted pairs are more than");
  ExpectError(R"({"properties": {"a": {}}, "additionalProperties": true, "minProperties": 1e18})",
              "#/minProperties: (1 properties + 1) x 1000000000000000000 counted");
  EXPECT_TRUE(JsonSchemaGrammarFromText(R"({"type": "object", "maxProperties": 1000})").ok());
}

TEST(JsonSchemaErrors, SchemaText) {
  ExpectError("{", "the schema is not valid JSON");
  ExpectError("[1]", "the schema must be a JSON object or a boolean");
  ExpectError("\"string\"", "the schema must be a JSON object or a boolean");
  EXPECT_TRUE(JsonSchemaGrammarFromText("true").ok());
}

// ---- JsonObjectGrammar and embedding ----

TEST(JsonSchemaJsonObject, AnyObject) {
  absl::StatusOr<std::shared_ptr<const Grammar>> g = JsonObjectGrammar();
  ASSERT_TRUE(g.ok()) << g.status();
  GrammarAutomaton a(*g);
  for (const char* ok : {"{}", R"({"a":1})", R"({"a":{"b":[1,{"c":"d"}],"e":null},"f":-0.5})",
                         "{\n  \"a\": [\n    true\n  ]\n}"}) {
    EXPECT_TRUE(*a.Accepts(ok)) << ok;
  }
  for (const char* bad : {"[]", "1", "\"s\"", R"({"a"})", "{1:2}", "{", " {}", "{}{}"}) {
    EXPECT_FALSE(*a.Accepts(bad)) << bad;
  }
}

TEST(JsonSchemaEmbedded, AddJsonSchemaRulesResolvesEachSchemaAgainstItself) {
  GrammarBuilder b;
  const absl::StatusOr<int> first = AddJsonSchemaRules(b, json{{"type", "integer"}});
  const absl::StatusOr<int> second = AddJsonSchemaRules(
      b, json::parse(R"({"type": "array", "items": {"anyOf": [{"type": "integer"},
                                                             {"$ref": "#"}]}})"));
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE(second.ok()) << second.status();
  const int root = b.AddRule("call", {{b.Byte('A'), b.Ref(*first)}, {b.Byte('B'), b.Ref(*second)}});
  absl::StatusOr<std::shared_ptr<const Grammar>> g = std::move(b).Build(root);
  ASSERT_TRUE(g.ok()) << g.status();
  GrammarAutomaton a(*g);
  for (const char* ok : {"A1", "A-20", "B[]", "B[1,[2,[]]]"}) EXPECT_TRUE(*a.Accepts(ok)) << ok;
  for (const char* bad : {"A[1]", "B1", "B[[\"x\"]]", "AB"}) EXPECT_FALSE(*a.Accepts(bad)) << bad;
}

// ---- Random schemas and values ----

// Random schemas of the supported keywords, random values they accept, and a validator of the
// same semantics (property order, strict additionalProperties) for texts the grammar accepts.
class RandomSchemas {
 public:
  explicit RandomSchemas(uint32_t seed) : rng_(seed) {}

  // A schema with a definition that nested schemas may $ref.
  json Schema() {
    json def = Node(2, /*may_ref=*/false);
    json schema = Node(3, /*may_ref=*/true);
    if (!schema.is_object()) schema = {{"anyOf", {schema}}};
    schema["$defs"] = {{"D", def}};
    root_ = schema;
    return schema;
  }

  json Value(const json& s, int depth = 0) {
    if (s.is_boolean()) return AnyValue(2);
    if (s.contains("$ref")) return Value(root_["$defs"]["D"], depth);
    if (s.value("nullable", false) && Chance(4)) return nullptr;
    if (s.contains("anyOf")) return Value(s["anyOf"][Below(s["anyOf"].size())], depth);
    if (s.contains("enum")) return s["enum"][Below(s["enum"].size())];
    if (s.contains("const")) return s["const"];
    const json& type = s["type"];
    const std::string t =
        type.is_array() ? type[Below(type.size())].get<std::string>() : type.get<std::string>();
    if (t == "null") return nullptr;
    if (t == "boolean") return Chance(2);
    if (t == "integer") return Integer();
    if (t == "number") return Number();
    if (t == "string") {
      const int lo = s.value("minLength", 0);
      return String(lo + Below(s.value("maxLength", lo + 5) - lo + 1));
    }
    if (t == "array") return Array(s, depth);
    return Object(s, depth);
  }

  bool Valid(const json& v, const json& s) {
    if (s.is_boolean()) return s.get<bool>();
    if (s.contains("$ref")) return Valid(v, root_["$defs"]["D"]);
    if (s.value("nullable", false) && v.is_null()) return true;
    if (s.contains("anyOf")) {
      for (const json& branch : s["anyOf"]) {
        if (Valid(v, branch)) return true;
      }
      return false;
    }
    if (s.contains("enum")) {
      for (const json& e : s["enum"]) {
        if (e == v) return true;
      }
      return false;
    }
    if (s.contains("const")) return s["const"] == v;
    const json types = s["type"].is_array() ? s["type"] : json::array({s["type"]});
    for (const json& t : types) {
      if (ValidType(v, s, t.get<std::string>())) return true;
    }
    return false;
  }

  size_t Below(size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng_); }
  bool Chance(int one_in) { return Below(one_in) == 0; }

 private:
  json Node(int depth, bool may_ref) {
    const int kinds = depth > 0 ? 15 : 7;
    switch (Below(kinds)) {
      case 0:
        return {{"type", "null"}};
      case 1:
        return {{"type", "boolean"}};
      case 2:
        return {{"type", "integer"}};
      case 3:
        return {{"type", "number"}};
      case 4: {
        json s = {{"type", "string"}};
        if (Chance(2)) s["minLength"] = Below(3);
        if (Chance(2)) s["maxLength"] = s.value("minLength", 0) + Below(4);
        return s;
      }
      case 5: {
        json values = json::array();
        for (size_t i = 0, n = 1 + Below(4); i < n; ++i) values.push_back(Scalar());
        return {{"enum", values}};
      }
      case 6:
        return {{"const", Scalar()}};
      case 7:
        return ArraySchema(depth, may_ref);
      case 8:
      case 9:
        return ObjectSchema(depth, may_ref);
      case 10:
        return {{"anyOf", {Node(depth - 1, may_ref), Node(depth - 1, may_ref)}}};
      case 11: {
        const char* pairs[][2] = {{"string", "null"}, {"integer", "boolean"}, {"number", "null"}};
        const auto& p = pairs[Below(3)];
        return {{"type", {p[0], p[1]}}};
      }
      case 12: {
        json s = Node(depth - 1, may_ref);
        if (s.is_object() && !s.contains("$ref")) s["nullable"] = true;
        return s;
      }
      case 13:
        return may_ref ? json{{"$ref", "#/$defs/D"}} : json{{"type", "integer"}};
      default:
        return true;
    }
  }

  json ArraySchema(int depth, bool may_ref) {
    json s = {{"type", "array"}};
    size_t prefix = 0;
    if (Chance(3)) {
      prefix = 1 + Below(3);
      s["prefixItems"] = json::array();
      for (size_t i = 0; i < prefix; ++i) s["prefixItems"].push_back(Node(depth - 1, may_ref));
      if (Chance(2)) s["items"] = Node(depth - 1, may_ref);
    } else if (!Chance(4)) {
      s["items"] = Node(depth - 1, may_ref);
    }
    const bool bounded_by_prefix = prefix > 0 && !s.contains("items");
    if (Chance(2)) s["minItems"] = Below(bounded_by_prefix ? prefix + 1 : 3);
    if (Chance(2)) s["maxItems"] = s.value("minItems", 0) + Below(4);
    return s;
  }

  json ObjectSchema(int depth, bool may_ref) {
    json s = {{"type", "object"}};
    if (Chance(5)) {
      if (Chance(2)) s["additionalProperties"] = Chance(2) ? json(false) : Node(depth - 1, may_ref);
      return s;
    }
    s["properties"] = json::object();
    s["required"] = json::array();
    for (size_t i = 0, n = Below(5); i < n; ++i) {
      const std::string name = absl::StrCat("p", i);
      s["properties"][name] = Node(depth - 1, may_ref);
      if (Chance(2)) s["required"].push_back(name);
    }
    switch (Below(4)) {
      case 0:
        s["additionalProperties"] = false;
        break;
      case 1:
        s["additionalProperties"] = true;
        break;
      case 2:
        s["additionalProperties"] = {{"type", "integer"}};
        break;
      default:
        break;  // absent with properties: none
    }
    if (Chance(3)) AddPropertyCounts(s);
    return s;
  }

  // minProperties and/or maxProperties that some object of s meets.
  void AddPropertyCounts(json& s) {
    const size_t listed = s["properties"].size(), required = s["required"].size();
    const bool extras = !IsFalse(ExtraSchema(s));
    const size_t most = extras ? required + 4 : listed;
    const size_t min = std::min(Below(required + 3), most);
    if (Chance(3) || !Chance(2)) s["minProperties"] = min;
    if (Chance(2)) s["maxProperties"] = std::min(std::max(min, required) + Below(3), most);
  }

  static bool IsFalse(const json& s) { return s.is_boolean() && !s.get<bool>(); }

  json Array(const json& s, int depth) {
    const json& prefix = s.contains("prefixItems") ? s["prefixItems"] : json::array();
    const bool rest = !s.contains("prefixItems") || s.contains("items");
    const size_t lo = s.value("minItems", 0);
    size_t hi = s.value("maxItems", lo + 3);
    if (!rest) hi = std::min(hi, prefix.size());
    json out = json::array();
    for (size_t i = 0, n = lo + Below(hi - lo + 1); i < n; ++i) {
      const json item_schema = i < prefix.size()     ? prefix[i]
                               : s.contains("items") ? s["items"]
                                                     : json(true);
      out.push_back(Value(item_schema, depth + 1));
    }
    return out;
  }

  json Object(const json& s, int depth) {
    if (s.contains("minProperties") || s.contains("maxProperties")) return CountedObject(s, depth);
    json out = json::object();
    std::vector<std::string> required;
    if (s.contains("required")) required = s["required"].get<std::vector<std::string>>();
    if (s.contains("properties")) {
      for (const auto& [name, schema] : s["properties"].items()) {
        if (std::find(required.begin(), required.end(), name) != required.end() || Chance(2)) {
          out[name] = Value(schema, depth + 1);
        }
      }
    }
    const json extra = ExtraSchema(s);
    if (!(extra.is_boolean() && !extra.get<bool>())) {
      for (size_t i = 0, n = Below(3); i < n; ++i) {
        out[absl::StrCat("x", i)] = Value(extra, depth + 1);
      }
    }
    return out;
  }

  // An object of s with a number of pairs between its counts: the required properties, then
  // optional ones (in order) and extra pairs making up a random total.
  json CountedObject(const json& s, int depth) {
    const json& properties = s.contains("properties") ? s["properties"] : json::object();
    std::vector<std::string> required;
    if (s.contains("required")) required = s["required"].get<std::vector<std::string>>();
    std::vector<std::string> optional;
    for (const auto& [name, schema] : properties.items()) {
      if (std::find(required.begin(), required.end(), name) == required.end()) {
        optional.push_back(name);
      }
    }
    const json extra = ExtraSchema(s);
    const size_t extras_most = IsFalse(extra) ? 0 : 3;
    const size_t lo = std::max<size_t>(s.value("minProperties", size_t{0}), required.size());
    const size_t hi =
        std::min(s.value("maxProperties", lo + 2), required.size() + optional.size() + extras_most);
    const size_t total = lo + Below(hi - lo + 1);
    // How many optional ones: as many as fit beside the extras that are allowed.
    const size_t want = total - required.size();
    const size_t from = want > extras_most ? want - extras_most : 0;
    const size_t take = from + Below(std::min(want, optional.size()) - from + 1);
    std::vector<bool> pick(optional.size(), false);
    for (size_t i = 0; i < take; ++i) pick[i] = true;
    std::shuffle(pick.begin(), pick.end(), rng_);
    json out = json::object();
    size_t o = 0;
    for (const auto& [name, schema] : properties.items()) {
      const bool is_required = std::find(required.begin(), required.end(), name) != required.end();
      if (is_required || pick[o]) out[name] = Value(schema, depth + 1);
      if (!is_required) ++o;
    }
    for (size_t i = 0; i < want - take; ++i) out[absl::StrCat("x", i)] = Value(extra, depth + 1);
    return out;
  }

  // additionalProperties as the grammar reads it: absent is false beside properties.
  static json ExtraSchema(const json& s) {
    if (s.contains("additionalProperties")) return s["additionalProperties"];
    return !s.contains("properties");
  }

  json Scalar() {
    switch (Below(6)) {
      case 0:
        return nullptr;
      case 1:
        return Chance(2);
      case 2:
        return Integer();
      case 3:
        return Number();
      default:
        return String(Below(4));
    }
  }

  json AnyValue(int depth) {
    switch (Below(depth > 0 ? 4 : 2)) {
      case 0:
        return Scalar();
      case 1:
        return String(Below(3));
      case 2: {
        json a = json::array();
        for (size_t i = 0, n = Below(3); i < n; ++i) a.push_back(AnyValue(depth - 1));
        return a;
      }
      default: {
        json o = json::object();
        for (size_t i = 0, n = Below(3); i < n; ++i) o[absl::StrCat("k", i)] = AnyValue(depth - 1);
        return o;
      }
    }
  }

  json Integer() {
    switch (Below(4)) {
      case 0:
        return static_cast<int64_t>(Below(10));
      case 1:
        return -static_cast<int64_t>(Below(1000000));
      case 2:
        return std::numeric_limits<int64_t>::min();
      default:
        return std::numeric_limits<uint64_t>::max();
    }
  }

  json Number() {
    switch (Below(4)) {
      case 0:
        return std::uniform_real_distribution<double>(-1e6, 1e6)(rng_);
      case 1:
        return std::uniform_real_distribution<double>(-1, 1)(rng_) * 1e-30;
      case 2:
        return static_cast<double>(Below(100));  // written "42.0"
      default:
        return std::uniform_real_distribution<double>(0, 1)(rng_) * 1e90;
    }
  }

  // `length` characters: ASCII, the ones JSON escapes, and 2, 3 and 4-byte UTF-8.
  std::string String(size_t length) {
    static constexpr std::string_view kPieces[] = {"a",
                                                   "Z",
                                                   " ",
                                                   "\"",
                                                   "\\",
                                                   "/",
                                                   "\n",
                                                   "\t",
                                                   "\x01",
                                                   "\x7F",
                                                   "\xC3\xA9",
                                                   "\xE2\x82\xAC",
                                                   "\xF0\x9F\x98\x80",
                                                   "\xED\x9F\xBF",
                                                   "\xF4\x8F\xBF\xBF"};
    std::string out;
    for (size_t i = 0; i < length; ++i) out += kPieces[Below(std::size(kPieces))];
    return out;
  }

  static size_t Characters(const std::string& s) {
    return std::count_if(s.begin(), s.end(), [](char c) { return (c & 0xC0) != 0x80; });
  }

  bool ValidType(const json& v, const json& s, const std::string& t) {
    if (t == "null") return v.is_null();
    if (t == "boolean") return v.is_boolean();
    if (t == "number") return v.is_number();
    if (t == "integer") {
      return v.is_number_integer() ||
             (v.is_number_float() && v.get<double>() == std::trunc(v.get<double>()));
    }
    if (t == "string") {
      if (!v.is_string()) return false;
      const size_t n = Characters(v.get<std::string>());
      return n >= s.value("minLength", size_t{0}) &&
             n <= s.value("maxLength", std::numeric_limits<size_t>::max());
    }
    if (t == "array") return v.is_array() && ValidArray(v, s);
    return v.is_object() && ValidObject(v, s);
  }

  bool ValidArray(const json& v, const json& s) {
    const json& prefix = s.contains("prefixItems") ? s["prefixItems"] : json::array();
    const json rest = s.contains("items") ? s["items"] : json(!s.contains("prefixItems"));
    if (v.size() < s.value("minItems", size_t{0}) ||
        v.size() > s.value("maxItems", std::numeric_limits<size_t>::max())) {
      return false;
    }
    for (size_t i = 0; i < v.size(); ++i) {
      if (!Valid(v[i], i < prefix.size() ? prefix[i] : rest)) return false;
    }
    return true;
  }

  // Listed properties in order (optional ones may be missing), then extra pairs where allowed.
  bool ValidObject(const json& v, const json& s) {
    const json& properties = s.contains("properties") ? s["properties"] : json::object();
    std::vector<std::string> names;
    for (const auto& [name, schema] : properties.items()) names.push_back(name);
    std::vector<std::string> required;
    if (s.contains("required")) required = s["required"].get<std::vector<std::string>>();
    const auto is_required = [&](size_t i) {
      return std::find(required.begin(), required.end(), names[i]) != required.end();
    };
    const auto skippable = [&](size_t from, size_t to) {
      for (size_t i = from; i < to; ++i) {
        if (is_required(i)) return false;
      }
      return true;
    };
    const json extra = ExtraSchema(s);
    size_t next = 0;
    bool in_extras = false;
    for (const auto& [key, value] : v.items()) {
      if (!in_extras) {
        const auto it = std::find(names.begin() + next, names.end(), key);
        const size_t at = it - names.begin();
        if (it != names.end() && skippable(next, at) && Valid(value, properties[key])) {
          next = at + 1;
          continue;
        }
      }
      if (!skippable(next, names.size()) || !Valid(value, extra)) return false;
      in_extras = true;
      next = names.size();
    }
    return skippable(next, names.size()) && v.size() >= s.value("minProperties", size_t{0}) &&
           v.size() <= s.value("maxProperties", std::numeric_limits<size_t>::max());
  }

  std::mt19937 rng_;
  json root_;
};

// A random edit: a byte deleted, inserted, replaced, the text cut, or a structural byte (one
// of `,:[]{}"`) deleted or doubled.
std::string Mutate(std::string text, RandomSchemas& r) {
  static constexpr std::string_view kBytes =
      "{}[]\",:0123456789-+.eE \n\t\\/abfnrtux\x80\xBF\xC0\xC3\xE0\xED\xF0\xF4\xFF\x01";
  static constexpr std::string_view kStructural = ",:[]{}\"";
  if (text.empty()) return std::string(1, kBytes[r.Below(kBytes.size())]);
  const size_t at = r.Below(text.size());
  switch (r.Below(5)) {
    case 0:
      text.erase(at, 1);
      break;
    case 1:
      text.insert(at, 1, kBytes[r.Below(kBytes.size())]);
      break;
    case 2:
      text[at] = kBytes[r.Below(kBytes.size())];
      break;
    case 3:
      text.resize(at);
      break;
    default: {
      std::vector<size_t> structural;
      for (size_t i = 0; i < text.size(); ++i) {
        if (kStructural.find(text[i]) != std::string_view::npos) structural.push_back(i);
      }
      if (structural.empty()) break;
      const size_t pick = structural[r.Below(structural.size())];
      if (r.Chance(2)) {
        text.erase(pick, 1);
      } else {
        text.insert(pick, 1, text[pick]);
      }
    }
  }
  return text;
}

TEST(JsonSchemaRandom, ValuesAreAcceptedCompactAndPretty) {
  RandomSchemas r(20261205);
  int values = 0;
  for (int i = 0; i < 300; ++i) {
    const json schema = r.Schema();
    SCOPED_TRACE(schema.dump());
    Matcher m(schema.dump());
    for (int k = 0; k < 4; ++k) {
      const json value = r.Value(schema);
      ASSERT_TRUE(r.Valid(value, schema)) << value.dump();  // the generator and validator agree
      for (const std::string& text : {value.dump(), value.dump(2), value.dump(1, '\t')}) {
        EXPECT_TRUE(m.Accepts(text)) << text;
      }
      ++values;
    }
  }
  EXPECT_EQ(values, 1200);
}

TEST(JsonSchemaRandom, MutatedTextsAreRefusedUnlessValid) {
  RandomSchemas r(7);
  int refused = 0, accepted = 0;
  for (int i = 0; i < 200; ++i) {
    const json schema = r.Schema();
    SCOPED_TRACE(schema.dump());
    Matcher m(schema.dump());
    for (int k = 0; k < 20; ++k) {
      const json value = r.Value(schema);
      std::string text = r.Chance(2) ? value.dump() : value.dump(2);
      for (size_t n = 1 + r.Below(2); n > 0; --n) text = Mutate(std::move(text), r);
      const json parsed = json::parse(text, nullptr, /*allow_exceptions=*/false);
      if (!m.Accepts(text)) {
        ++refused;
        continue;
      }
      ++accepted;
      // Accepted: JSON, and a value of the schema.
      ASSERT_FALSE(parsed.is_discarded()) << "accepted a text that is not JSON: " << text;
      EXPECT_TRUE(r.Valid(parsed, schema)) << "accepted a value outside the schema: " << text;
    }
  }
  // Both outcomes were exercised.
  EXPECT_GT(refused, 1000);
  EXPECT_GT(accepted, 100);
}

}  // namespace
}  // namespace attnres::structured
