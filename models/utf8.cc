// UTF-8 classification and lossy repair (Unicode "maximal subpart" practice, table 3-7).
#include "models/utf8.h"

namespace attnres::utf8 {
namespace {

bool InRange(unsigned char b, unsigned char lo, unsigned char hi) { return b >= lo && b <= hi; }

}  // namespace

Sequence NextSequence(std::string_view bytes, size_t pos) {
  const auto b0 = static_cast<unsigned char>(bytes[pos]);
  if (b0 < 0x80) return {Sequence::kValid, 1};
  size_t need;                         // continuation bytes after the lead
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the first continuation
  if (InRange(b0, 0xC2, 0xDF)) {
    need = 1;
  } else if (InRange(b0, 0xE0, 0xEF)) {
    need = 2;
    if (b0 == 0xE0) lo = 0xA0;  // no overlong forms
    if (b0 == 0xED) hi = 0x9F;  // no surrogates
  } else if (InRange(b0, 0xF0, 0xF4)) {
    need = 3;
    if (b0 == 0xF0) lo = 0x90;
    if (b0 == 0xF4) hi = 0x8F;  // nothing above U+10FFFF
  } else {
    return {Sequence::kInvalid, 1};  // 80..C1, F5..FF never start a character
  }
  for (size_t k = 1; k <= need; ++k) {
    if (pos + k >= bytes.size()) return {Sequence::kTruncated, k};
    const auto b = static_cast<unsigned char>(bytes[pos + k]);
    const bool ok = k == 1 ? InRange(b, lo, hi) : InRange(b, 0x80, 0xBF);
    if (!ok) return {Sequence::kInvalid, k};
  }
  return {Sequence::kValid, need + 1};
}

bool IsValid(std::string_view bytes) {
  for (size_t pos = 0; pos < bytes.size();) {
    const Sequence s = NextSequence(bytes, pos);
    if (s.kind != Sequence::kValid) return false;
    pos += s.length;
  }
  return true;
}

size_t AppendLossyPrefix(std::string_view bytes, std::string* out) {
  size_t pos = 0;
  while (pos < bytes.size()) {
    const Sequence s = NextSequence(bytes, pos);
    if (s.kind == Sequence::kTruncated) break;
    if (s.kind == Sequence::kValid) {
      out->append(bytes.substr(pos, s.length));
    } else {
      out->append(kReplacement);
    }
    pos += s.length;
  }
  return pos;
}

void AppendLossy(std::string_view bytes, std::string* out) {
  const size_t done = AppendLossyPrefix(bytes, out);
  if (done < bytes.size()) out->append(kReplacement);  // a truncated tail is one subpart
}

std::string Lossy(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  AppendLossy(bytes, &out);
  return out;
}

char32_t DecodeAt(std::string_view valid, size_t* pos) {
  const auto b0 = static_cast<unsigned char>(valid[*pos]);
  const size_t len = b0 < 0x80 ? 1 : b0 < 0xE0 ? 2 : b0 < 0xF0 ? 3 : 4;
  char32_t cp = len == 1 ? b0 : len == 2 ? (b0 & 0x1F) : len == 3 ? (b0 & 0x0F) : (b0 & 0x07);
  for (size_t k = 1; k < len; ++k) {
    cp = (cp << 6) | (static_cast<unsigned char>(valid[*pos + k]) & 0x3F);
  }
  *pos += len;
  return cp;
}

void AppendCodePoint(char32_t cp, std::string* out) {
  if (cp < 0x80) {
    out->push_back(static_cast<char>(cp));
  } else if (cp < 0x800) {
    out->push_back(static_cast<char>(0xC0 | (cp >> 6)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out->push_back(static_cast<char>(0xE0 | (cp >> 12)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  } else {
    out->push_back(static_cast<char>(0xF0 | (cp >> 18)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3F)));
    out->push_back(static_cast<char>(0x80 | (cp & 0x3F)));
  }
}

}  // namespace attnres::utf8
