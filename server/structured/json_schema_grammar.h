// JSON Schema -> Grammar: the JSON texts a schema accepts, as the byte grammar constrained
// decoding runs (structured outputs: response_format json_object / json_schema, and tool calls
// that must follow their functions' parameters).
//
// The text written:
// - Whitespace between tokens is nothing, one space, or a newline and up to 20 spaces or tabs
//   (pretty-printing ten levels deep at two spaces fits; a model cannot stall on whitespace);
//   none before or after the value, so a finished value ends the output.
// - Strings are UTF-8 spelled out byte by byte (no overlong forms, surrogates or bytes past
//   U+10FFFF), control characters only escaped, \u escapes of surrogates only in pairs.
// - Numbers follow RFC 8259 with at most 20 integer digits, 20 fraction digits and 2 exponent
//   digits (no model loops on "0.3333..."; nothing overflows a double).
// - enum and const values are matched as nlohmann's compact dump() writes them ("\u00e9" does
//   not match an enum's "é", nor "[1, 2]" its [1,2]).
// - Objects list their properties in the schema's order: required ones always, optional ones as
//   the model chooses (rules linear in the number of properties, commas always right).
//   minProperties / maxProperties count the pairs written, listed and extra together (extra
//   names are not checked against each other); the rules then also carry that count, so they
//   grow with (properties + 1) x the larger count, charged against the schema's counts below.
//
// Supported keywords: type (a name or a list; "integer" is integer syntax), enum, const,
// properties, required, additionalProperties, minProperties, maxProperties, items, prefixItems,
// additionalItems (after draft 7's array-valued items), minItems, maxItems, minLength, maxLength
// (characters: an escape or a surrogate pair is one), pattern, format, minimum, maximum,
// exclusiveMinimum, exclusiveMaximum, multipleOf, anyOf and oneOf (both as alternatives), allOf of
// one schema, $ref, and OpenAPI's nullable. Without "type", the kind of value comes from the
// keywords (properties -> object, items
// -> array, minLength or pattern -> string, minimum... or multipleOf -> number); none: any JSON
// value, as for `true`.
// - pattern is ECMA-262's, as JSON Schema means it: it may match anywhere in the string unless
//   ^ / $ anchor it, over the decoded characters (regex_grammar.h, RegexOptions); the string's
//   characters are then written raw, or escaped where JSON must (no \uXXXX spellings of others).
//   Beside minLength, maxLength or an enforced format it is refused (no intersection).
// - format on strings: date-time, date, time, duration, email, hostname, ipv4, ipv6 and uuid
//   are held to (every accepted text valid; a few valid forms left out: leap seconds, IPv4 inside
//   IPv6, quoted or long email local parts, host names past 4 labels); other formats, and format
//   on other types, are annotations.
// - minimum / maximum and their exclusive forms (numbers, or draft 4's booleans beside them)
//   bound integers (rounded inward) and numbers, exactly, as digit-range rules on the integer
//   part and on the fraction where the integer part is a bound's; bounded values are written
//   without exponent and "-0".
// - multipleOf m (above 0; at most 10 digits after its point, and its digits without the point
//   and trailing zeros at most 1000: 0.01, 0.25, 1.5, 7, 500 and 1e6 are held to, 12.34 is
//   refused) with or without bounds: the value's digits are read as one whole number
//   M = value * 10^k (k: m's fraction digits) with M's remainder modulo m's digits, so the rules
//   grow with those (one per remainder and digits left). Multiples are written with exactly k
//   fraction digits (m = 0.25: "1.50", never "1.5" or "1.500"), integers and whole multiples
//   without a point; an integer's m drops the factors of 2 and 5 it shares with 10^k (integer
//   multiples of 2.5 are those of 5).
// - additionalProperties absent means no other properties where "properties" is given (OpenAI's
//   strict mode, vLLM and xgrammar read it so) and any where it is not; true or a schema allows
//   more pairs after the listed ones, with any names (the listed ones are not excluded). A
//   required name missing from properties is a property with additionalProperties' schema.
// - After prefixItems (or an items array) come only the items that items (additionalItems)
//   allows, none when it is absent; without a tuple, absent items allow any values.
// - $ref is a JSON pointer into the schema: "#", "#/$defs/Name", "#/definitions/Name" (~0 and ~1
//   unescaped); recursion is allowed, each target compiled once. Beside $ref, anyOf, oneOf and
//   allOf only annotations and nullable; beside enum and const also type (which filters them).
// Annotations are ignored: title, description, default, examples, example, $schema, $id,
// $anchor, $comment, $defs/definitions (reached through $ref), format (where not held to),
// strict, deprecated, readOnly, writeOnly, contentEncoding, contentMediaType and x-* extensions.
// Every other keyword (not, uniqueItems, patternProperties, ... and unknown ones) is
// refused rather than silently not enforced, as are schema false, malformed keyword values,
// schemas nested more than 64 deep and counts (minLength, maxItems, ...) adding up past 32768.
// Errors are InvalidArgument and name the schema location as a JSON pointer
// ("#/properties/age/pattern").
#pragma once

#include <memory>
#include <string_view>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "server/structured/grammar.h"

namespace attnres::structured {

// Any JSON object (response_format {"type": "json_object"}).
absl::StatusOr<std::shared_ptr<const Grammar>> JsonObjectGrammar();

// The JSON texts `schema` accepts. The schema's key order is kept (property order).
absl::StatusOr<std::shared_ptr<const Grammar>> JsonSchemaGrammar(
    const nlohmann::ordered_json& schema);
// Same, from the schema's text (errors name a schema that is not JSON, or not an object or bool).
absl::StatusOr<std::shared_ptr<const Grammar>> JsonSchemaGrammarFromText(std::string_view text);

// For grammars that embed JSON (tool calls): adds the rules of `schema`'s values to `builder`
// and returns the rule that matches one value ("#" references resolve against `schema`). After
// an error the builder holds rules declared but not defined: discard it.
absl::StatusOr<int> AddJsonSchemaRules(GrammarBuilder& builder,
                                       const nlohmann::ordered_json& schema);

}  // namespace attnres::structured
