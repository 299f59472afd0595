// Python str semantics over UTF-8 bytes for the Jinja renderer: code point decoding (invalid bytes
// survive a round trip as lone surrogates U+DC80..U+DCFF, like Python's surrogateescape), the
// whitespace and case rules of str methods, repr() and json.dumps quoting. Knows nothing about
// templates or values.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace attnres::jinja::pystr {

std::u32string Decode(std::string_view utf8);
std::string Encode(std::u32string_view cps);
void AppendCodePoint(char32_t cp, std::string* out);
bool IsAscii(std::string_view s);
// Number of code points (Python len()).
size_t Length(std::string_view s);

bool IsSpace(char32_t cp);  // str.isspace()
// str.strip/lstrip/rstrip; `chars` nullopt strips whitespace.
std::string Strip(std::string_view s, const std::optional<std::string>& chars, bool left,
                  bool right);
// str.split(sep, maxsplit); sep nullopt splits on whitespace runs. Throws nothing; an empty sep
// is the caller's error.
std::vector<std::string> Split(std::string_view s, const std::optional<std::string>& sep,
                               int64_t maxsplit);
std::vector<std::string> RSplit(std::string_view s, const std::optional<std::string>& sep,
                                int64_t maxsplit);
std::vector<std::string> SplitLines(std::string_view s, bool keepends);
std::string Upper(std::string_view s);
std::string Lower(std::string_view s);
std::string Title(std::string_view s);       // str.title()
std::string Capitalize(std::string_view s);  // str.capitalize()
// str.replace(old, new, count); count < 0 replaces all. `limit` bounds the result size: returns
// nullopt when it would exceed it.
std::optional<std::string> Replace(std::string_view s, std::string_view from, std::string_view to,
                                   int64_t count, size_t limit);
// str.find / str.rfind in code points (-1 when absent).
int64_t Find(std::string_view s, std::string_view sub, bool reverse);
int64_t Count(std::string_view s, std::string_view sub);
bool IsWordChar(char32_t cp);  // regex \w
// repr(str) as Python writes it (quote choice and escapes).
std::string Repr(std::string_view s);
// json.dumps(str, ensure_ascii=False).
void AppendJsonQuoted(std::string_view s, std::string* out);

}  // namespace attnres::jinja::pystr
