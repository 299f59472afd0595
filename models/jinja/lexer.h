// Jinja source -> tokens, as jinja2's lexer does it under transformers' settings: newlines
// normalized to "\n" and one trailing newline dropped, comments removed, raw blocks as data,
// whitespace control ("-" strips, "+" keeps) with trim_blocks and lstrip_blocks applied to the
// data tokens. Expression tokens carry their values (string escapes decoded, numbers parsed).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace attnres::jinja {

// A syntax error at a source position (1-based line and column, in bytes).
struct CompileError {
  int line = 0;
  int column = 0;
  std::string message;
};

struct Token {
  enum class Type {
    kData,        // template text (already stripped)
    kVarBegin,    // {{
    kVarEnd,      // }}
    kBlockBegin,  // {%
    kBlockEnd,    // %}
    kName,
    kString,
    kInt,
    kFloat,
    kOp,  // operator or punctuation, in text
    kEof,
  };
  Type type;
  std::string text;  // data, name, decoded string, operator
  int64_t int_value = 0;
  double float_value = 0;
  int line = 0;
  int column = 0;
};

// Throws CompileError.
std::vector<Token> Lex(std::string_view source);

// How a token reads in error messages ("end of statement block", "'foo'", ...).
std::string DescribeToken(const Token& t);

}  // namespace attnres::jinja
