// UTF-8 helpers for the tokenizer: code point iteration and lossy repair of invalid bytes with
// the "maximal subpart" rule shared by Rust's String::from_utf8_lossy and Python's
// bytes.decode(errors="replace"). Knows nothing about tokens.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace attnres::utf8 {

inline constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD

// What starts at a byte position: a whole valid character, an invalid maximal subpart, or a
// valid prefix cut short by the end of the input.
struct Sequence {
  enum Kind { kValid, kInvalid, kTruncated } kind;
  size_t length;  // bytes consumed: the character, the maximal subpart, or the cut prefix
};

// Classifies the bytes at `bytes[pos]` (pos < bytes.size()).
Sequence NextSequence(std::string_view bytes, size_t pos);

bool IsValid(std::string_view bytes);

// Appends `bytes` to `out` with every invalid maximal subpart (and a truncated tail) as U+FFFD.
void AppendLossy(std::string_view bytes, std::string* out);
std::string Lossy(std::string_view bytes);

// Like AppendLossy, but stops before a truncated tail that later bytes could still complete.
// Returns the number of bytes consumed; the caller keeps the rest for later.
size_t AppendLossyPrefix(std::string_view bytes, std::string* out);

// Decodes the character at `*pos` of valid UTF-8 and advances `*pos` past it.
char32_t DecodeAt(std::string_view valid, size_t* pos);

void AppendCodePoint(char32_t cp, std::string* out);

}  // namespace attnres::utf8
