// The bytes_to_unicode table of GPT-2 (openai/gpt-2 encoder.py) in both directions.
#include "models/byte_level.h"

#include <array>
#include <cstdint>

#include "models/utf8.h"

namespace attnres::byte_level {
namespace {

constexpr char32_t kMaxChar = 256 + 68;  // the 68 unprintable bytes map to U+0100..U+0143

struct Tables {
  std::array<std::string, 256> byte_to_utf8;
  std::array<int16_t, kMaxChar> char_to_byte;  // -1: not a byte-level character
};

const Tables& GetTables() {
  static const Tables* tables = [] {
    auto* t = new Tables();
    t->char_to_byte.fill(-1);
    char32_t next_extra = 256;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE;
      const char32_t cp = printable ? static_cast<char32_t>(b) : next_extra++;
      utf8::AppendCodePoint(cp, &t->byte_to_utf8[b]);
      t->char_to_byte[cp] = static_cast<int16_t>(b);
    }
    return t;
  }();
  return *tables;
}

}  // namespace

void AppendEncoded(std::string_view bytes, std::string* out) {
  const Tables& t = GetTables();
  for (const char c : bytes) out->append(t.byte_to_utf8[static_cast<unsigned char>(c)]);
}

std::string Encode(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size() * 2);
  AppendEncoded(bytes, &out);
  return out;
}

bool TryDecode(std::string_view token, std::string* out) {
  const Tables& t = GetTables();
  std::string bytes;
  bytes.reserve(token.size());
  for (size_t pos = 0; pos < token.size();) {
    const char32_t cp = utf8::DecodeAt(token, &pos);
    if (cp >= kMaxChar || t.char_to_byte[cp] < 0) return false;
    bytes.push_back(static_cast<char>(t.char_to_byte[cp]));
  }
  out->append(bytes);
  return true;
}

void AppendDecodedToken(std::string_view token, std::string* out) {
  if (!TryDecode(token, out)) out->append(token);
}

}  // namespace attnres::byte_level
