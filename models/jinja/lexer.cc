// The Jinja lexer (see lexer.h); the rules follow jinja2/lexer.py (3.1) under trim_blocks and
// lstrip_blocks.
#include "models/jinja/lexer.h"

#include <algorithm>
#include <cerrno>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "models/jinja/py_string.h"

namespace attnres::jinja {
namespace {

bool IsWs(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
bool IsDigit(char c) { return c >= '0' && c <= '9'; }
bool IsNameStart(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool IsNameChar(char c) { return IsNameStart(c) || IsDigit(c); }
int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Python's str.rstrip() (whitespace) over UTF-8 bytes.
std::string_view RStripWs(std::string_view s) {
  std::u32string cps = pystr::Decode(s);
  size_t e = cps.size();
  while (e > 0 && pystr::IsSpace(cps[e - 1])) --e;
  if (e == cps.size()) return s;
  return s.substr(0, pystr::Encode(std::u32string_view(cps).substr(0, e)).size());
}

class Lexer {
 public:
  explicit Lexer(std::string_view source) {
    // Newlines: \r\n, \r and \n all become \n; one trailing newline is dropped.
    src_.reserve(source.size());
    for (size_t i = 0; i < source.size(); ++i) {
      if (source[i] == '\r') {
        src_.push_back('\n');
        if (i + 1 < source.size() && source[i + 1] == '\n') ++i;
      } else {
        src_.push_back(source[i]);
      }
    }
    if (!src_.empty() && src_.back() == '\n') src_.pop_back();
    line_starts_.push_back(0);
    for (size_t i = 0; i < src_.size(); ++i) {
      if (src_[i] == '\n') line_starts_.push_back(i + 1);
    }
  }

  std::vector<Token> Run() {
    while (pos_ < src_.size()) {
      const size_t at = FindTagStart(pos_);
      if (at == std::string::npos) {
        EmitData(std::string_view(src_).substr(pos_), pos_);
        pos_ = src_.size();
        break;
      }
      const char kind = src_[at + 1];
      size_t p = at + 2;
      char sign = 0;
      if (p < src_.size() && (src_[p] == '-' || src_[p] == '+')) sign = src_[p++];
      size_t raw_end = 0;
      const bool raw = kind == '%' && MatchRawBegin(p, &raw_end);
      std::string_view text = std::string_view(src_).substr(pos_, at - pos_);
      text = StripBefore(text, sign, kind != '{');
      EmitData(text, pos_);
      if (raw) {
        line_starting_ = src_[raw_end - 1] == '\n';
        LexRaw(raw_end);
      } else if (kind == '#') {
        LexComment(p);
      } else {
        Push(kind == '{' ? Token::Type::kVarBegin : Token::Type::kBlockBegin, "", at);
        LexTag(p, kind == '%');
      }
    }
    Push(Token::Type::kEof, "", src_.size());
    return std::move(out_);
  }

 private:
  [[noreturn]] void Error(size_t at, std::string message) {
    const auto [line, col] = Position(at);
    throw CompileError{line, col, std::move(message)};
  }

  std::pair<int, int> Position(size_t at) const {
    const auto it = std::upper_bound(line_starts_.begin(), line_starts_.end(), at);
    const size_t line = static_cast<size_t>(it - line_starts_.begin());
    return {static_cast<int>(line), static_cast<int>(at - line_starts_[line - 1] + 1)};
  }

  void Push(Token::Type type, std::string text, size_t at) {
    Token t{type, std::move(text)};
    std::tie(t.line, t.column) = Position(at);
    out_.push_back(std::move(t));
  }

  void EmitData(std::string_view text, size_t at) {
    if (!text.empty()) Push(Token::Type::kData, std::string(text), at);
  }

  size_t FindTagStart(size_t from) const {
    for (size_t i = src_.find('{', from); i != std::string::npos; i = src_.find('{', i + 1)) {
      if (i + 1 < src_.size() && (src_[i + 1] == '{' || src_[i + 1] == '%' || src_[i + 1] == '#'))
        return i;
    }
    return std::string::npos;
  }

  // `{%[-+]?\s*raw\s*(-%}\s*|%})` from after the sign; sets *end past it.
  bool MatchRawBegin(size_t p, size_t* end) const {
    while (p < src_.size() && IsWs(src_[p])) ++p;
    if (src_.compare(p, 3, "raw") != 0) return false;
    p += 3;
    while (p < src_.size() && IsWs(src_[p])) ++p;
    if (src_.compare(p, 3, "-%}") == 0) {
      p += 3;
      while (p < src_.size() && IsWs(src_[p])) ++p;
    } else if (src_.compare(p, 2, "%}") == 0) {
      p += 2;
    } else {
      return false;
    }
    *end = p;
    return true;
  }

  // The data before a tag: "-" strips all trailing whitespace; otherwise, for blocks and
  // comments (lstrip_blocks), spaces and tabs between the line's start and the tag go.
  std::string_view StripBefore(std::string_view text, char sign, bool lstrip) const {
    if (sign == '-') return RStripWs(text);
    if (sign == '+' || !lstrip) return text;
    const size_t nl = text.rfind('\n');
    const size_t l_pos = nl == std::string_view::npos ? 0 : nl + 1;
    if (l_pos > 0 || line_starting_) {
      const std::string_view tail = text.substr(l_pos);
      if (tail.find_first_not_of(" \t") == std::string_view::npos) return text.substr(0, l_pos);
    }
    return text;
  }

  // After a block or comment end: "-" eats all following whitespace, "+" nothing, a plain end
  // one newline (trim_blocks).
  size_t AfterEnd(size_t p, char sign, bool trim) {
    if (sign == '-') {
      while (p < src_.size() && IsWs(src_[p])) ++p;
    } else if (sign != '+' && trim && p < src_.size() && src_[p] == '\n') {
      ++p;
    }
    return p;
  }

  void LexComment(size_t p) {
    const size_t j = src_.find("#}", p);
    if (j == std::string::npos) Error(p, "Missing end of comment tag");
    char sign = 0;
    if (j > p && (src_[j - 1] == '-' || src_[j - 1] == '+')) sign = src_[j - 1];
    const size_t end = AfterEnd(j + 2, sign, true);
    line_starting_ = src_[end - 1] == '\n';
    pos_ = end;
  }

  void LexRaw(size_t p) {
    // The first `{%[-+]?\s*endraw\s*(+%}|-%}\s*|%}\n?)`.
    for (size_t i = src_.find("{%", p); i != std::string::npos; i = src_.find("{%", i + 1)) {
      size_t q = i + 2;
      char sign = 0;
      if (q < src_.size() && (src_[q] == '-' || src_[q] == '+')) sign = src_[q++];
      while (q < src_.size() && IsWs(src_[q])) ++q;
      if (src_.compare(q, 6, "endraw") != 0) continue;
      q += 6;
      while (q < src_.size() && IsWs(src_[q])) ++q;
      char end_sign = 0;
      if (q < src_.size() && (src_[q] == '-' || src_[q] == '+')) end_sign = src_[q++];
      if (src_.compare(q, 2, "%}") != 0) continue;
      const std::string_view text =
          StripBefore(std::string_view(src_).substr(p, i - p), sign, true);
      EmitData(text, p);
      const size_t end = AfterEnd(q + 2, end_sign, true);
      line_starting_ = src_[end - 1] == '\n';
      pos_ = end;
      return;
    }
    Error(p, "Missing end of raw directive");
  }

  void LexTag(size_t p, bool block) {
    std::vector<char> balance;
    while (true) {
      if (p >= src_.size()) {
        Error(p, block ? "unexpected end of template, expected 'end of statement block'"
                       : "unexpected end of template, expected 'end of print statement'");
      }
      if (balance.empty()) {
        if (block) {
          char sign = 0;
          size_t q = p;
          if (src_[q] == '-' || src_[q] == '+') sign = src_[q++];
          if (src_.compare(q, 2, "%}") == 0) {
            Push(Token::Type::kBlockEnd, "", p);
            pos_ = AfterEnd(q + 2, sign, true);
            line_starting_ = src_[pos_ - 1] == '\n';
            return;
          }
        } else {
          char sign = 0;
          size_t q = p;
          if (src_[q] == '-') sign = src_[q++];
          if (src_.compare(q, 2, "}}") == 0) {
            Push(Token::Type::kVarEnd, "", p);
            pos_ = AfterEnd(q + 2, sign, false);
            line_starting_ = src_[pos_ - 1] == '\n';
            return;
          }
        }
      }
      const char c = src_[p];
      if (IsWs(c)) {
        ++p;
      } else if (IsDigit(c)) {
        p = LexNumber(p);
      } else if (IsNameStart(c)) {
        size_t q = p;
        while (q < src_.size() && IsNameChar(src_[q])) ++q;
        Push(Token::Type::kName, src_.substr(p, q - p), p);
        p = q;
      } else if (c == '\'' || c == '"') {
        p = LexString(p);
      } else {
        p = LexOperator(p, &balance);
      }
    }
  }

  // Digits with single underscores between them; returns the end or `p` when none.
  size_t Digits(size_t p) const {
    size_t q = p;
    while (q < src_.size() && IsDigit(src_[q])) {
      ++q;
      if (q + 1 < src_.size() && src_[q] == '_' && IsDigit(src_[q + 1])) ++q;
    }
    return q;
  }

  size_t LexNumber(size_t p) {
    // float: digits ((.digits)? e[+-]?digits | .digits), not right after a '.'
    const bool after_dot = p > 0 && src_[p - 1] == '.';
    size_t q = Digits(p);
    size_t fend = 0;
    if (!after_dot) {
      size_t r = q;
      bool frac = false;
      if (r + 1 < src_.size() && src_[r] == '.' && IsDigit(src_[r + 1])) {
        r = Digits(r + 1);
        frac = true;
      }
      size_t e = r;
      if (e < src_.size() && (src_[e] == 'e' || src_[e] == 'E')) {
        size_t s = e + 1;
        if (s < src_.size() && (src_[s] == '+' || src_[s] == '-')) ++s;
        if (s < src_.size() && IsDigit(src_[s])) fend = Digits(s);
      }
      if (fend == 0 && frac) fend = r;
    }
    if (fend != 0) {
      std::string text;
      for (size_t i = p; i < fend; ++i) {
        if (src_[i] != '_') text.push_back(src_[i]);
      }
      Token t{Token::Type::kFloat, src_.substr(p, fend - p)};
      t.float_value = std::strtod(text.c_str(), nullptr);
      std::tie(t.line, t.column) = Position(p);
      out_.push_back(std::move(t));
      return fend;
    }
    // integer: 0b / 0o / 0x prefixes, [1-9](_?\d)*, 0(_?0)*
    int base = 10;
    size_t start = p;
    size_t end = p;
    if (src_[p] == '0' && p + 1 < src_.size() &&
        (src_[p + 1] == 'b' || src_[p + 1] == 'B' || src_[p + 1] == 'o' || src_[p + 1] == 'O' ||
         src_[p + 1] == 'x' || src_[p + 1] == 'X')) {
      const char k = static_cast<char>(src_[p + 1] | 0x20);
      base = k == 'b' ? 2 : k == 'o' ? 8 : 16;
      size_t r = p + 2;
      while (r < src_.size()) {
        size_t s = r;
        if (src_[s] == '_') ++s;
        if (s < src_.size() && HexDigit(src_[s]) >= 0 && HexDigit(src_[s]) < base) {
          r = s + 1;
        } else {
          break;
        }
      }
      if (r > p + 2) {
        start = p + 2;
        end = r;
      }
    }
    if (end == p) {
      base = 10;
      start = p;
      if (src_[p] == '0') {
        end = p + 1;
        while (end < src_.size()) {
          size_t s = end;
          if (src_[s] == '_') ++s;
          if (s < src_.size() && src_[s] == '0') {
            end = s + 1;
          } else {
            break;
          }
        }
      } else {
        end = q;
      }
    }
    std::string digits;
    for (size_t i = start; i < end; ++i) {
      if (src_[i] != '_') digits.push_back(src_[i]);
    }
    errno = 0;
    const long long v = std::strtoll(digits.c_str(), nullptr, base);
    if (errno == ERANGE) Error(p, "integer literal too large");
    Token t{Token::Type::kInt, src_.substr(p, end - p)};
    t.int_value = v;
    std::tie(t.line, t.column) = Position(p);
    out_.push_back(std::move(t));
    return end;
  }

  size_t LexString(size_t p) {
    const char quote = src_[p];
    size_t q = p + 1;
    while (q < src_.size() && src_[q] != quote) q += src_[q] == '\\' ? 2 : 1;
    if (q >= src_.size()) Error(p, absl::StrCat("unexpected char '", std::string(1, quote), "'"));
    Push(Token::Type::kString, Unescape(std::string_view(src_).substr(p + 1, q - p - 1), p), p);
    return q + 1;
  }

  // Python's unicode-escape decoding of a string literal's body.
  std::string Unescape(std::string_view s, size_t at) {
    std::string out;
    for (size_t i = 0; i < s.size(); ++i) {
      if (s[i] != '\\' || i + 1 >= s.size()) {
        out.push_back(s[i]);
        continue;
      }
      const char e = s[++i];
      switch (e) {
        case '\n':
          break;
        case '\\':
          out.push_back('\\');
          break;
        case '\'':
          out.push_back('\'');
          break;
        case '"':
          out.push_back('"');
          break;
        case 'a':
          out.push_back('\a');
          break;
        case 'b':
          out.push_back('\b');
          break;
        case 'f':
          out.push_back('\f');
          break;
        case 'n':
          out.push_back('\n');
          break;
        case 'r':
          out.push_back('\r');
          break;
        case 't':
          out.push_back('\t');
          break;
        case 'v':
          out.push_back('\v');
          break;
        case 'x':
        case 'u':
        case 'U': {
          const int n = e == 'x' ? 2 : e == 'u' ? 4 : 8;
          char32_t cp = 0;
          for (int k = 0; k < n; ++k) {
            if (i + 1 >= s.size() || HexDigit(s[i + 1]) < 0) {
              Error(at,
                    absl::StrCat("truncated \\", std::string(1, e), " escape in string literal"));
            }
            cp = cp * 16 + static_cast<char32_t>(HexDigit(s[++i]));
          }
          if (cp > 0x10FFFF) Error(at, "illegal Unicode character in string literal");
          pystr::AppendCodePoint(cp, &out);
          break;
        }
        default:
          if (e >= '0' && e <= '7') {
            char32_t cp = static_cast<char32_t>(e - '0');
            for (int k = 0; k < 2 && i + 1 < s.size() && s[i + 1] >= '0' && s[i + 1] <= '7'; ++k) {
              cp = cp * 8 + static_cast<char32_t>(s[++i] - '0');
            }
            pystr::AppendCodePoint(cp, &out);
          } else {
            out.push_back('\\');
            out.push_back(e);
          }
      }
    }
    return out;
  }

  size_t LexOperator(size_t p, std::vector<char>* balance) {
    static constexpr std::string_view kTwo[] = {"//", "**", "==", "!=", ">=", "<="};
    for (std::string_view op : kTwo) {
      if (src_.compare(p, 2, op) == 0) {
        Push(Token::Type::kOp, std::string(op), p);
        return p + 2;
      }
    }
    const char c = src_[p];
    if (std::string_view("+-/*%~[](){}><=.:|,;").find(c) == std::string_view::npos) {
      Error(p, absl::StrCat("unexpected char '", std::string(1, c), "'"));
    }
    if (c == '(' || c == '[' || c == '{') {
      balance->push_back(c == '(' ? ')' : c == '[' ? ']' : '}');
    } else if (c == ')' || c == ']' || c == '}') {
      if (balance->empty()) Error(p, absl::StrCat("unexpected '", std::string(1, c), "'"));
      if (balance->back() != c) {
        Error(p, absl::StrCat("unexpected '", std::string(1, c), "', expected '",
                              std::string(1, balance->back()), "'"));
      }
      balance->pop_back();
    }
    Push(Token::Type::kOp, std::string(1, c), p);
    return p + 1;
  }

  std::string src_;
  std::vector<size_t> line_starts_;
  size_t pos_ = 0;
  bool line_starting_ = true;
  std::vector<Token> out_;
};

}  // namespace

std::vector<Token> Lex(std::string_view source) { return Lexer(source).Run(); }

std::string DescribeToken(const Token& t) {
  switch (t.type) {
    case Token::Type::kData:
      return "template data";
    case Token::Type::kVarBegin:
      return "begin of print statement";
    case Token::Type::kVarEnd:
      return "end of print statement";
    case Token::Type::kBlockBegin:
      return "begin of statement block";
    case Token::Type::kBlockEnd:
      return "end of statement block";
    case Token::Type::kEof:
      return "end of template";
    case Token::Type::kString:
      return "string";
    case Token::Type::kInt:
      return "integer";
    case Token::Type::kFloat:
      return "float";
    default:
      return t.text;
  }
}

}  // namespace attnres::jinja
