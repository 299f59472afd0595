// GPT-2's byte <-> printable-character table (bytes_to_unicode) used by ByteLevel
// pre-tokenizers and decoders. Pure functions over strings; no regexes, no vocabulary.
#pragma once

#include <string>
#include <string_view>

namespace attnres::byte_level {

// Appends each byte of `bytes` as its byte-level character (UTF-8 of U+0021..U+0143).
void AppendEncoded(std::string_view bytes, std::string* out);
std::string Encode(std::string_view bytes);

// Maps every character of `token` (valid UTF-8) back to its byte. Returns false, leaving `out`
// untouched, when some character is not a byte-level character; HF's ByteLevel decoder then
// uses the token's own UTF-8 bytes, which AppendDecodedToken does.
bool TryDecode(std::string_view token, std::string* out);
void AppendDecodedToken(std::string_view token, std::string* out);

}  // namespace attnres::byte_level
