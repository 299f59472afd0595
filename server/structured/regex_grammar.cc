// Regular expressions and choice lists compiled to byte grammars (see regex_grammar.h).
#include "server/structured/regex_grammar.h"

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <optional>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "models/status_macros.h"

namespace attnres::structured {
namespace {

constexpr uint32_t kMaxCodePoint = 0x10FFFF;
constexpr int kMaxDepth = 256;   // nested groups
constexpr int kMaxCount = 1000;  // {n,m} bounds

// Code point ranges [lo, hi].
using Ranges = std::vector<std::pair<uint32_t, uint32_t>>;

Ranges Normalized(Ranges r) {
  std::sort(r.begin(), r.end());
  Ranges out;
  for (const auto& [lo, hi] : r) {
    if (!out.empty() && lo <= out.back().second + 1) {
      out.back().second = std::max(out.back().second, hi);
    } else {
      out.push_back({lo, hi});
    }
  }
  return out;
}

Ranges Complement(const Ranges& r) {
  Ranges out;
  uint32_t next = 0;
  for (const auto& [lo, hi] : Normalized(r)) {
    if (lo > next) out.push_back({next, lo - 1});
    next = hi + 1;
  }
  if (next <= kMaxCodePoint) out.push_back({next, kMaxCodePoint});
  return out;
}

int EncodeUtf8(uint32_t cp, uint8_t* out) {
  if (cp < 0x80) {
    out[0] = static_cast<uint8_t>(cp);
    return 1;
  }
  if (cp < 0x800) {
    out[0] = static_cast<uint8_t>(0xC0 | (cp >> 6));
    out[1] = static_cast<uint8_t>(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    out[0] = static_cast<uint8_t>(0xE0 | (cp >> 12));
    out[1] = static_cast<uint8_t>(0x80 | ((cp >> 6) & 0x3F));
    out[2] = static_cast<uint8_t>(0x80 | (cp & 0x3F));
    return 3;
  }
  out[0] = static_cast<uint8_t>(0xF0 | (cp >> 18));
  out[1] = static_cast<uint8_t>(0x80 | ((cp >> 12) & 0x3F));
  out[2] = static_cast<uint8_t>(0x80 | ((cp >> 6) & 0x3F));
  out[3] = static_cast<uint8_t>(0x80 | (cp & 0x3F));
  return 4;
}

// The code point at s[*pos] (advancing past it), or none where the bytes are not UTF-8.
std::optional<uint32_t> DecodeUtf8(std::string_view s, size_t* pos) {
  const auto byte = [&](size_t i) { return static_cast<uint8_t>(s[i]); };
  const uint8_t b0 = byte(*pos);
  if (b0 < 0x80) {
    ++*pos;
    return b0;
  }
  const int n = b0 >= 0xF0 ? 4 : b0 >= 0xE0 ? 3 : b0 >= 0xC0 ? 2 : 0;
  if (n == 0 || *pos + n > s.size()) return std::nullopt;
  uint32_t cp = b0 & (0x7F >> n);
  for (int i = 1; i < n; ++i) {
    if ((byte(*pos + i) & 0xC0) != 0x80) return std::nullopt;
    cp = (cp << 6) | (byte(*pos + i) & 0x3F);
  }
  const uint32_t min = n == 2 ? 0x80 : n == 3 ? 0x800 : 0x10000;
  if (cp < min || cp > kMaxCodePoint || (cp >= 0xD800 && cp <= 0xDFFF)) return std::nullopt;
  *pos += n;
  return cp;
}

// Byte-range sequences that spell exactly the UTF-8 of code points [lo, hi] (surrogates left
// out): split at the encodings' length boundaries, then where a range's lower bytes do not span
// whole continuation ranges, until each piece is a product of byte ranges.
using ByteRanges = std::vector<std::pair<uint8_t, uint8_t>>;
void Utf8Split(uint32_t lo, uint32_t hi, std::vector<ByteRanges>* out) {
  if (lo > hi) return;
  if (lo <= 0xDFFF && hi >= 0xD800) {
    if (lo < 0xD800) Utf8Split(lo, 0xD7FF, out);
    if (hi > 0xDFFF) Utf8Split(0xE000, hi, out);
    return;
  }
  for (uint32_t m : {0x7Fu, 0x7FFu, 0xFFFFu}) {
    if (lo <= m && hi > m) {
      Utf8Split(lo, m, out);
      Utf8Split(m + 1, hi, out);
      return;
    }
  }
  const int n = hi <= 0x7F ? 1 : hi <= 0x7FF ? 2 : hi <= 0xFFFF ? 3 : 4;
  for (int i = 1; i < n; ++i) {
    const uint32_t mask = (1u << (6 * i)) - 1;
    if ((lo & ~mask) != (hi & ~mask)) {
      if ((lo & mask) != 0) {
        Utf8Split(lo, lo | mask, out);
        Utf8Split((lo | mask) + 1, hi, out);
        return;
      }
      if ((hi & mask) != mask) {
        Utf8Split(lo, (hi & ~mask) - 1, out);
        Utf8Split(hi & ~mask, hi, out);
        return;
      }
    }
  }
  uint8_t a[4], b[4];
  EncodeUtf8(lo, a);
  EncodeUtf8(hi, b);
  ByteRanges seq;
  for (int i = 0; i < n; ++i) seq.push_back({a[i], b[i]});
  out->push_back(std::move(seq));
}

const Ranges& Digits() {
  static const Ranges r = {{'0', '9'}};
  return r;
}
const Ranges& WordChars() {
  static const Ranges r = {{'0', '9'}, {'A', 'Z'}, {'_', '_'}, {'a', 'z'}};
  return r;
}
const Ranges& Spaces() {
  static const Ranges r = {{'\t', '\r'}, {' ', ' '}};
  return r;
}
// ECMA-262's \s: WhiteSpace and LineTerminator.
const Ranges& UnicodeSpaces() {
  static const Ranges r = {{'\t', '\r'},     {' ', ' '},       {0xA0, 0xA0},     {0x1680, 0x1680},
                           {0x2000, 0x200A}, {0x2028, 0x2029}, {0x202F, 0x202F}, {0x205F, 0x205F},
                           {0x3000, 0x3000}, {0xFEFF, 0xFEFF}};
  return r;
}
// What '.' does not match.
const Ranges& LineTerminators(bool ecma) {
  static const Ranges python = {{'\n', '\n'}};
  static const Ranges ecma_terminators = {{'\n', '\n'}, {'\r', '\r'}, {0x2028, 0x2029}};
  return ecma ? ecma_terminators : python;
}
// The characters a JSON string holds only escaped.
const Ranges& JsonEscaped() {
  static const Ranges r = {{0, 0x1F}, {'"', '"'}, {'\\', '\\'}};
  return r;
}
// a without b.
Ranges Minus(const Ranges& a, const Ranges& b) {
  Ranges both = Complement(a);
  both.insert(both.end(), b.begin(), b.end());
  return Complement(both);
}
bool Contains(const Ranges& normalized, uint32_t cp) {
  return std::any_of(normalized.begin(), normalized.end(),
                     [cp](const auto& r) { return r.first <= cp && cp <= r.second; });
}

class RegexCompiler {
 public:
  RegexCompiler(GrammarBuilder& b, std::string_view pattern, const RegexOptions& options)
      : b_(b), p_(pattern), o_(options) {}

  // The top-level alternatives, each with its anchors: ^ first and $ last change nothing where
  // the whole text matches; under ecma_search an alternative without them may have any text
  // before (after) it.
  absl::StatusOr<int> Compile() {
    if (p_.size() > kMaxRegexBytes) {
      return absl::InvalidArgumentError(
          absl::StrCat("regex: at most ", kMaxRegexBytes, " bytes, got ", p_.size()));
    }
    std::vector<Alternative> branches;
    for (;;) {
      const bool from_start = At('^');
      if (from_start) ++pos_;
      bool to_end = false;
      ASSIGN_OR_RETURN(Piece branch, Concat(0, &to_end));
      Alternative alt;
      if (o_.ecma_search && !from_start) alt.push_back(AnyText());
      alt.insert(alt.end(), branch.alt.begin(), branch.alt.end());
      if (o_.ecma_search && !to_end) alt.push_back(AnyText());
      branches.push_back(std::move(alt));
      if (!At('|')) break;
      ++pos_;
    }
    if (pos_ < p_.size()) return Error("unbalanced parenthesis: ')' without '('");
    return b_.AddRule("regex", std::move(branches));
  }

 private:
  struct Piece {
    Alternative alt;
    bool nullable = false;  // matches the empty string
  };

  bool At(char c) const { return pos_ < p_.size() && p_[pos_] == c; }
  bool AtEnd() const { return pos_ >= p_.size(); }

  absl::Status Error(absl::string_view what) const { return ErrorAt(pos_, what); }
  absl::Status ErrorAt(size_t at, absl::string_view what) const {
    return absl::InvalidArgumentError(absl::StrCat("regex at byte ", at, ": ", what));
  }

  // a|b|...
  absl::StatusOr<Piece> Alternation(int depth) {
    if (depth > kMaxDepth)
      return Error(absl::StrCat("groups nested more than ", kMaxDepth, " deep"));
    std::vector<Alternative> branches;
    bool nullable = false;
    for (;;) {
      ASSIGN_OR_RETURN(Piece branch, Concat(depth));
      nullable |= branch.nullable;
      branches.push_back(std::move(branch.alt));
      if (!At('|')) break;
      ++pos_;
    }
    if (branches.size() == 1) return Piece{std::move(branches[0]), nullable};
    return Piece{{b_.Ref(b_.AddRule("alt", std::move(branches)))}, nullable};
  }

  // Quantified atoms one after another, up to | or ) or the end. At the top level (to_end
  // given) a $ before | or the end ends it too, and sets *to_end.
  absl::StatusOr<Piece> Concat(int depth, bool* to_end = nullptr) {
    Piece seq{{}, true};
    while (!AtEnd() && !At('|') && !At(')')) {
      if (At('$')) {
        if (to_end == nullptr || (pos_ + 1 != p_.size() && p_[pos_ + 1] != '|')) {
          return Error(
              "$ is supported only at the end of the pattern or of a top-level "
              "alternative");
        }
        ++pos_;
        *to_end = true;
        break;
      }
      ASSIGN_OR_RETURN(Piece piece, Quantified(depth));
      seq.alt.insert(seq.alt.end(), piece.alt.begin(), piece.alt.end());
      seq.nullable &= piece.nullable;
    }
    return seq;
  }

  // An atom and its quantifier, if any.
  absl::StatusOr<Piece> Quantified(int depth) {
    const size_t start = pos_;
    ASSIGN_OR_RETURN(Piece atom, Atom(depth));
    int min = 1, max = 1;
    const size_t at = pos_;
    if (At('*')) {
      min = 0, max = -1, ++pos_;
    } else if (At('+')) {
      min = 1, max = -1, ++pos_;
    } else if (At('?')) {
      min = 0, max = 1, ++pos_;
    } else if (!At('{') || !Counts(&min, &max)) {
      return atom;
    }
    if (max >= 0 && max < min) return ErrorAt(at, "min repeat greater than max repeat");
    if (min > kMaxCount || max > kMaxCount) {
      return ErrorAt(at, absl::StrCat("repetition counts above ", kMaxCount, " are not supported"));
    }
    if (At('?')) {
      ++pos_;  // lazy: the same texts
    } else if (At('+')) {
      return Error("possessive quantifiers are not supported");
    }
    if (At('*') || At('+') || At('?') || (At('{') && LooksLikeCounts())) {
      return Error("multiple repeat");
    }
    if (max < 0 && atom.nullable) {
      return ErrorAt(start,
                     "an unbounded repetition of a part that can match the empty string (as in "
                     "(a*)*) is not supported");
    }
    const bool nullable = min == 0 || atom.nullable;
    if (min == 1 && max == 1) return atom;
    if (min == 0 && max == 1) return Piece{{b_.Optional("opt", std::move(atom.alt))}, true};
    if (min == 0 && max < 0) return Piece{{b_.Star("star", std::move(atom.alt))}, true};
    if (min == 1 && max < 0) return Piece{{b_.Plus("plus", std::move(atom.alt))}, nullable};
    return Piece{{b_.Repeat("repeat", std::move(atom.alt), min, max)}, nullable};
  }

  // {n}, {n,} or {n,m} at pos_: reads it (pos_ past the '}') and returns true; otherwise leaves
  // pos_ and returns false (the '{' is then a literal, as in Python).
  bool Counts(int* min, int* max) {
    size_t i = pos_ + 1;
    auto number = [&](int* out) {
      const size_t begin = i;
      long v = 0;
      while (i < p_.size() && p_[i] >= '0' && p_[i] <= '9') {
        v = std::min<long>(v * 10 + (p_[i] - '0'), 1L << 30);
        ++i;
      }
      *out = static_cast<int>(v);
      return i > begin;
    };
    int lo = 0, hi = 0;
    if (!number(&lo)) return false;
    hi = lo;
    if (i < p_.size() && p_[i] == ',') {
      ++i;
      if (!number(&hi)) hi = -1;
    }
    if (i >= p_.size() || p_[i] != '}') return false;
    *min = lo;
    *max = hi;
    pos_ = i + 1;
    return true;
  }
  bool LooksLikeCounts() {
    const size_t saved = pos_;
    int a = 0, b = 0;
    const bool yes = Counts(&a, &b);
    pos_ = saved;
    return yes;
  }

  absl::StatusOr<Piece> Atom(int depth) {
    const size_t at = pos_;
    const char c = p_[pos_];
    switch (c) {
      case '(':
        return Group(depth);
      case '[':
        return Class();
      case '.':
        ++pos_;
        return Piece{{AnyButNewline()}, false};
      case '\\':
        return Escape();
      case '*':
      case '+':
      case '?':
        return Error("nothing to repeat");
      case '^':
        return Error(
            "^ is supported only at the start of the pattern or of a top-level "
            "alternative");
      case '{':
        if (LooksLikeCounts()) return Error("nothing to repeat");
        break;
      default:
        break;
    }
    const std::optional<uint32_t> cp = DecodeUtf8(p_, &pos_);
    if (!cp.has_value()) return ErrorAt(at, "not UTF-8");
    return Piece{Literal(*cp), false};
  }

  absl::StatusOr<Piece> Group(int depth) {
    const size_t open = pos_++;
    if (At('?')) {
      const std::string_view rest = p_.substr(pos_);
      if (rest.starts_with("?:")) {
        pos_ += 2;
      } else if (rest.starts_with("?P<") ||
                 (rest.starts_with("?<") && !rest.starts_with("?<=") && !rest.starts_with("?<!"))) {
        const size_t close = p_.find('>', pos_);
        if (close == std::string_view::npos) return ErrorAt(open, "unterminated group name");
        pos_ = close + 1;
      } else if (rest.starts_with("?=") || rest.starts_with("?!") || rest.starts_with("?<")) {
        return ErrorAt(open, "lookaround is not supported");
      } else if (rest.starts_with("?P=")) {
        return ErrorAt(open, "backreferences are not supported");
      } else {
        return ErrorAt(open, "inline flags and other (? groups are not supported");
      }
    }
    ASSIGN_OR_RETURN(Piece inner, Alternation(depth + 1));
    if (!At(')')) return ErrorAt(open, "missing ), unterminated subpattern");
    ++pos_;
    return inner;
  }

  // What a backslash starts: a code point or a class (outside or inside [...]).
  struct Escaped {
    std::optional<uint32_t> cp;
    Ranges ranges;
  };
  absl::StatusOr<Escaped> ReadEscape() {
    const size_t at = pos_++;
    if (AtEnd()) return ErrorAt(at, "a pattern cannot end with a backslash");
    const char c = p_[pos_];
    auto cp = [&](uint32_t v) {
      ++pos_;
      return Escaped{v, {}};
    };
    auto cls = [&](Ranges ranges) {
      ++pos_;
      return Escaped{std::nullopt, std::move(ranges)};
    };
    switch (c) {
      case 'd':
        return cls(Digits());
      case 'D':
        return cls(Complement(Digits()));
      case 'w':
        return cls(WordChars());
      case 'W':
        return cls(Complement(WordChars()));
      case 's':
        return cls(o_.ecma_search ? UnicodeSpaces() : Spaces());
      case 'S':
        return cls(Complement(o_.ecma_search ? UnicodeSpaces() : Spaces()));
      case 't':
        return cp('\t');
      case 'n':
        return cp('\n');
      case 'r':
        return cp('\r');
      case 'f':
        return cp('\f');
      case 'v':
        return cp('\v');
      case 'a':
        return cp('\a');
      case '0':
        return cp(0);
      case 'x':
      case 'u':
        return HexEscape(at);
      case 'b':
      case 'B':
      case 'A':
      case 'z':
      case 'Z':
      case 'G':
        return ErrorAt(at, "anchors and word boundaries are not supported");
      case 'p':
      case 'P':
        return ErrorAt(at, "\\p classes are not supported");
      case 'k':
        return ErrorAt(at, "backreferences are not supported");
      default:
        break;
    }
    if (c >= '1' && c <= '9') return ErrorAt(at, "backreferences are not supported");
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
      return ErrorAt(at, absl::StrCat("unknown escape \\", std::string(1, c)));
    }
    const std::optional<uint32_t> v = DecodeUtf8(p_, &pos_);  // an escaped literal
    if (!v.has_value()) return ErrorAt(at + 1, "not UTF-8");
    return Escaped{*v, {}};
  }

  // \xHH, \x{H...}, \uHHHH at pos_ (on the letter).
  absl::StatusOr<Escaped> HexEscape(size_t at) {
    const char kind = p_[pos_++];
    const size_t digits = kind == 'u' ? 4 : 2;
    const bool braced = kind == 'x' && At('{');
    if (braced) ++pos_;
    uint32_t v = 0;
    size_t n = 0;
    while (!AtEnd() && (braced || n < digits) && std::isxdigit(static_cast<uint8_t>(p_[pos_]))) {
      const char h = p_[pos_++];
      v = v * 16 + static_cast<uint32_t>(h <= '9' ? h - '0' : (h | 0x20) - 'a' + 10);
      if (v > kMaxCodePoint) return ErrorAt(at, "code point past U+10FFFF");
      ++n;
    }
    if (braced) {
      if (!At('}') || n == 0) return ErrorAt(at, "malformed \\x{...} escape");
      ++pos_;
    } else if (n != digits) {
      return ErrorAt(at,
                     absl::StrCat("\\", std::string(1, kind), " wants ", digits, " hex digits"));
    }
    if (v >= 0xD800 && v <= 0xDFFF) return ErrorAt(at, "a surrogate is not a character");
    return Escaped{v, {}};
  }

  absl::StatusOr<Piece> Escape() {
    ASSIGN_OR_RETURN(Escaped e, ReadEscape());
    if (e.cp.has_value()) return Piece{Literal(*e.cp), false};
    ASSIGN_OR_RETURN(Alternative alt, ClassOf(e.ranges));
    return Piece{std::move(alt), false};
  }

  // [...] at pos_.
  absl::StatusOr<Piece> Class() {
    const size_t open = pos_++;
    const bool negated = At('^');
    if (negated) ++pos_;
    Ranges ranges;
    bool first = true;
    for (;;) {
      if (AtEnd()) return ErrorAt(open, "unterminated character set");
      if (At(']') && !first) break;
      first = false;
      ASSIGN_OR_RETURN(Escaped lo, ClassItem());
      if (!lo.cp.has_value()) {  // \d and such
        ranges.insert(ranges.end(), lo.ranges.begin(), lo.ranges.end());
        continue;
      }
      if (At('-') && pos_ + 1 < p_.size() && p_[pos_ + 1] != ']') {
        const size_t dash = pos_++;
        ASSIGN_OR_RETURN(Escaped hi, ClassItem());
        if (!hi.cp.has_value()) return ErrorAt(dash, "a range cannot end in a class escape");
        if (*hi.cp < *lo.cp) return ErrorAt(dash, "bad character range");
        ranges.push_back({*lo.cp, *hi.cp});
      } else {
        ranges.push_back({*lo.cp, *lo.cp});
      }
    }
    ++pos_;  // ]
    ASSIGN_OR_RETURN(Alternative alt, ClassOf(negated ? Complement(ranges) : ranges));
    return Piece{std::move(alt), false};
  }

  absl::StatusOr<Escaped> ClassItem() {
    if (At('\\')) return ReadEscape();
    const size_t at = pos_;
    const std::optional<uint32_t> cp = DecodeUtf8(p_, &pos_);
    if (!cp.has_value()) return ErrorAt(at, "not UTF-8");
    return Escaped{*cp, {}};
  }

  Alternative Literal(uint32_t cp) {
    if (o_.json_string && Contains(JsonEscaped(), cp)) return CharsOf({{cp, cp}});
    uint8_t bytes[4];
    const int n = EncodeUtf8(cp, bytes);
    Alternative alt;
    for (int i = 0; i < n; ++i) alt.push_back(b_.Byte(bytes[i]));
    return alt;
  }

  // One character of `ranges`, or an error where they hold none.
  absl::StatusOr<Alternative> ClassOf(const Ranges& ranges) {
    const Ranges chars = Minus(Normalized(ranges), {{0xD800, 0xDFFF}});
    if (chars.empty()) return Error("a character set that matches no character");
    return CharsOf(chars);
  }

  // One character of `ranges` (not empty, surrogates aside): ASCII in one byte set, longer
  // encodings as byte-range sequences; under json_string, the characters JSON escapes as their
  // escapes.
  Alternative CharsOf(const Ranges& ranges) {
    std::vector<Alternative> alternatives;
    Ranges plain = Normalized(ranges);
    if (o_.json_string) {
      JsonEscapes(plain, &alternatives);
      plain = Minus(plain, JsonEscaped());
    }
    std::vector<ByteRanges> seqs;
    for (const auto& [lo, hi] : plain) Utf8Split(lo, hi, &seqs);
    ByteSet ascii;
    for (const ByteRanges& seq : seqs) {
      if (seq.size() == 1) {
        ascii.AddRange(seq[0].first, seq[0].second);
        continue;
      }
      Alternative a;
      for (const auto& [lo, hi] : seq) a.push_back(b_.Bytes(ByteSet::Range(lo, hi)));
      alternatives.push_back(std::move(a));
    }
    if (!ascii.empty()) alternatives.insert(alternatives.begin(), {b_.Bytes(ascii)});
    if (alternatives.size() == 1) return std::move(alternatives[0]);
    return Alternative{b_.Ref(b_.AddRule("class", std::move(alternatives)))};
  }

  // The JSON escapes of the characters of `normalized` that JSON escapes: one alternative for
  // the short escapes (\" \\ \b \f \n \r \t) and \u000X / \u001X for the controls.
  void JsonEscapes(const Ranges& normalized, std::vector<Alternative>* out) {
    static constexpr std::pair<uint32_t, char> kShort[] = {
        {'"', '"'}, {'\\', '\\'}, {'\b', 'b'}, {'\f', 'f'}, {'\n', 'n'}, {'\r', 'r'}, {'\t', 't'}};
    ByteSet letters;
    for (const auto& [cp, letter] : kShort) {
      if (Contains(normalized, cp)) letters.Add(static_cast<uint8_t>(letter));
    }
    if (!letters.empty()) out->push_back({b_.Byte('\\'), b_.Bytes(letters)});
    for (uint32_t high = 0; high < 2; ++high) {
      ByteSet low;  // hex digits of the low nibble, both cases
      for (uint32_t n = 0; n < 16; ++n) {
        if (!Contains(normalized, 16 * high + n)) continue;
        const char* digits = "0123456789abcdef";
        low.Add(static_cast<uint8_t>(digits[n]));
        low.Add(static_cast<uint8_t>(absl::ascii_toupper(digits[n])));
      }
      if (low.empty()) continue;
      Alternative a = b_.Literal(high == 0 ? "\\u000" : "\\u001");
      a.push_back(b_.Bytes(low));
      out->push_back(std::move(a));
    }
  }

  Element AnyButNewline() {
    if (!dot_.has_value()) {
      dot_ = CharsOf(Complement(LineTerminators(o_.ecma_search)))[0];  // one rule reference
    }
    return *dot_;
  }

  // Any text (ecma_search's unanchored ends).
  Element AnyText() {
    if (!any_text_.has_value()) {
      any_text_ = b_.Star("any", CharsOf(Minus({{0, kMaxCodePoint}}, {{0xD800, 0xDFFF}})));
    }
    return *any_text_;
  }

  GrammarBuilder& b_;
  std::string_view p_;
  const RegexOptions o_;
  size_t pos_ = 0;
  std::optional<Element> dot_, any_text_;
};

}  // namespace

absl::StatusOr<int> AddRegexRules(GrammarBuilder& builder, std::string_view pattern,
                                  const RegexOptions& options) {
  return RegexCompiler(builder, pattern, options).Compile();
}

absl::StatusOr<std::shared_ptr<const Grammar>> RegexGrammar(std::string_view pattern) {
  GrammarBuilder b;
  ASSIGN_OR_RETURN(const int root, AddRegexRules(b, pattern, {}));
  absl::StatusOr<std::shared_ptr<const Grammar>> g = std::move(b).Build(root);
  if (!g.ok()) return absl::InvalidArgumentError(absl::StrCat("regex: ", g.status().message()));
  return g;
}

absl::StatusOr<std::shared_ptr<const Grammar>> ChoiceGrammar(
    const std::vector<std::string>& choices) {
  constexpr size_t kMaxChoices = 1024, kMaxChoiceBytes = 4096;
  if (choices.empty() || choices.size() > kMaxChoices) {
    return absl::InvalidArgumentError(
        absl::StrCat("choices: 1 to ", kMaxChoices, " strings, got ", choices.size()));
  }
  GrammarBuilder b;
  std::vector<Alternative> alternatives;
  for (size_t i = 0; i < choices.size(); ++i) {
    if (choices[i].size() > kMaxChoiceBytes) {
      return absl::InvalidArgumentError(absl::StrCat("choices[", i, "]: at most ", kMaxChoiceBytes,
                                                     " bytes, got ", choices[i].size()));
    }
    alternatives.push_back(b.Literal(choices[i]));
  }
  const int root = b.AddRule("choice", std::move(alternatives));
  return std::move(b).Build(root);
}

}  // namespace attnres::structured
