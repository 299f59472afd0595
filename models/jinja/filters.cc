// The filters (see builtins.h), each as jinja2 3.1 defines it; tojson is transformers' override
// (json.dumps with ensure_ascii=False, indent, separators and sort_keys).
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>

#include "absl/strings/str_cat.h"
#include "models/jinja/builtins.h"
#include "models/jinja/call_args.h"
#include "models/jinja/interpreter.h"
#include "models/jinja/py_string.h"

namespace attnres::jinja {
namespace {

// The ignore_case postprocessor of sort/unique/min/max/dictsort.
Value IgnoreCase(const Value& v, bool case_sensitive) {
  if (!case_sensitive && v.is_string()) return Value::String(pystr::Lower(v.str()));
  return v;
}

Value KeyOf(const Value& item, const Value& attribute, bool case_sensitive) {
  const Value v = attribute.is_none() ? item : GetAttrPath(item, attribute);
  return IgnoreCase(v, case_sensitive);
}

std::vector<Value> Items(Interpreter& in, const Value& v) {
  std::vector<Value> items = Iterate(v);
  in.Charge(static_cast<int64_t>(items.size()));
  return items;
}

Value FAbs(Interpreter&, const Value& v, CallArgs& a) {
  BoundArgs b(a, "abs", {});
  if (v.is_integral()) {
    if (v.as_int() == INT64_MIN) Fail("integer overflow");
    return Value::Int(std::llabs(v.as_int()));
  }
  if (v.is_float()) return Value::Float(std::fabs(v.as_double()));
  if (v.is_undefined()) Fail(v.undefined_hint());
  Fail(absl::StrCat("bad operand type for abs(): '", v.TypeName(), "'"));
}

Value FCapitalize(Interpreter&, const Value& v, CallArgs& a) {
  BoundArgs b(a, "capitalize", {});
  return Value::String(pystr::Capitalize(ToStr(v)));
}

Value FDefault(Interpreter&, const Value& v, CallArgs& a) {
  BoundArgs b(a, "default", {"default_value", "boolean"});
  if (v.is_undefined() || (b.Get(1, Value::Bool(false)).Truthy() && !v.Truthy())) {
    return b.Get(0, Value::String(""));
  }
  return v;
}

Value FDictSort(Interpreter& in, const Value& v, CallArgs& a) {
  BoundArgs b(a, "dictsort", {"case_sensitive", "by", "reverse"});
  if (!v.is_dict()) Fail("You can only sort by either 'key' or 'value'");
  const bool cs = b.Get(0, Value::Bool(false)).Truthy();
  const Value by = b.Get(1, Value::String("key"));
  int pos;
  if (by.is_string() && by.str() == "key") {
    pos = 0;
  } else if (by.is_string() && by.str() == "value") {
    pos = 1;
  } else {
    Fail("You can only sort by either 'key' or 'value'");
  }
  std::vector<Value> items;
  for (const auto& [k, x] : v.dict().items) items.push_back(Value::List({k, x}, true));
  in.Charge(static_cast<int64_t>(items.size()) * 8);
  const bool rev = b.Get(2, Value::Bool(false)).Truthy();
  std::stable_sort(items.begin(), items.end(), [&](const Value& x, const Value& y) {
    const Value kx = IgnoreCase(x.items()[static_cast<size_t>(pos)], cs);
    const Value ky = IgnoreCase(y.items()[static_cast<size_t>(pos)], cs);
    return rev ? Less(ky, kx) : Less(kx, ky);
  });
  return Value::List(std::move(items));
}

Value FEscape(Interpreter& in, const Value& v, CallArgs& a) {
  BoundArgs b(a, "escape", {});
  const std::string s = ToStr(v);
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&#34;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  in.CheckSize(out.size());
  return Value::String(std::move(out));
}

Value FFirst(Interpreter&, const Value& v, CallArgs& a) {
  BoundArgs b(a, "first", {});
  if (v.is_list()) {
    if (v.items().empty()) return Value::Undefined("No first item, sequence was empty.");
    return v.items().front();
  }
  std::vector<Value> items = Iterate(v);
  if (items.empty()) return Value::Undefined("No first item, sequence was empty.");
  return items.front();
}

Value FLast(Interpreter&, const Value& v, CallArgs& a) {
  BoundArgs b(a, "last", {});
  if (v.is_undefined()) Fail(v.undefined_hint());
  if (v.is_list()) {
    if (v.items().empty()) return Value::Undefined("No last item, sequence was empty.");
    return v.items().back();
  }
  std::vector<Value> items = Iterate(v);
  if (items.empty()) return Value::Undefined("No last item, sequence was empty.");
  return items.back();
}

// Python float(str): surrounding whitespace, underscores between digits, inf/nan.
std::optional<double> ParseFloat(const std::string& text) {
  std::string s = pystr::Strip(text, std::nullopt, true, true);
  std::string clean;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '_') {
      if (i == 0 || i + 1 >= s.size() || !::isdigit(static_cast<unsigned char>(s[i - 1])) ||
          !::isdigit(static_cast<unsigned char>(s[i + 1]))) {
        return std::nullopt;
      }
      continue;
    }
    clean += s[i];
  }
  if (clean.empty()) return std::nullopt;
  std::string lower = pystr::Lower(clean);
  const std::string body = (lower[0] == '+' || lower[0] == '-') ? lower.substr(1) : lower;
  if (body == "inf" || body == "infinity" || body == "nan") {
    const double x = body == "nan" ? NAN : INFINITY;
    return lower[0] == '-' ? -x : x;
  }
  for (char c : body) {
    if (!(::isdigit(static_cast<unsigned char>(c)) || c == '.' || c == 'e' || c == '+' ||
          c == '-')) {
      return std::nullopt;
    }
  }
  char* end = nullptr;
  errno = 0;
  const double d = std::strtod(clean.c_str(), &end);
  if (end != clean.c_str() + clean.size()) return std::nullopt;
  return d;
}

// Python int(str, base) for bases 2..36 (and 0), with sign, whitespace and underscores.
std::optional<int64_t> ParseInt(const std::string& text, int64_t base) {
  std::string s = pystr::Strip(text, std::nullopt, true, true);
  bool neg = false;
  size_t i = 0;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) neg = s[i++] == '-';
  if ((base == 16 || base == 8 || base == 2 || base == 0) && i + 1 < s.size() && s[i] == '0') {
    const char p = static_cast<char>(s[i + 1] | 0x20);
    const int64_t pb = p == 'x' ? 16 : p == 'o' ? 8 : p == 'b' ? 2 : 0;
    if (pb != 0 && (base == 0 || base == pb)) {
      base = pb;
      i += 2;
      if (i < s.size() && s[i] == '_') ++i;
    }
  }
  if (base == 0) base = 10;
  if (base < 2 || base > 36) Fail("int() base must be >= 2 and <= 36, or 0");
  if (i >= s.size()) return std::nullopt;
  int64_t v = 0;
  bool prev_digit = false;
  for (; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '_') {
      if (!prev_digit || i + 1 >= s.size()) return std::nullopt;
      prev_digit = false;
      continue;
    }
    int d = -1;
    if (c >= '0' && c <= '9') d = c - '0';
    if (c >= 'a' && c <= 'z') d = c - 'a' + 10;
    if (c >= 'A' && c <= 'Z') d = c - 'A' + 10;
    if (d < 0 || d >= base) return std::nullopt;
    if (__builtin_mul_overflow(v, base, &v) || __builtin_add_overflow(v, d, &v)) {
      Fail("integer overflow");
    }
    prev_digit = true;
  }
  return neg ? -v : v;
}

Value FloatToInt(double d) {
  if (std::isnan(d)) Fail("cannot convert float NaN to integer");
  if (std::isinf(d)) Fail("cannot convert float infinity to integer");
  if (std::fabs(d) >= 9.2e18) Fail("integer overflow");
  return Value::Int(static_cast<int64_t>(std::trunc(d)));
}

Value FInt(Interpreter&, const Value& v, CallArgs& a) {
  BoundArgs b(a, "int", {"default", "base"});
  const Value dflt = b.Get(0, Value::Int(0));
  if (v.is_undefined()) Fail(v.undefined_hint());
  if (v.is_integral()) return Value::Int(v.as_int());
  if (v.is_float()) return FloatToInt(v.as_double());
  if (v.is_string()) {
    if (auto i = ParseInt(v.str(), IntArg(b.Get(1, Value::Int(10)), "base"))) {
      return Value::Int(*i);
    }
    if (auto d = ParseFloat(v.str())) return FloatToInt(*d);
  }
  return dflt;
}

Value FFloat(Interpreter&, const Value& v, CallArgs& a) {
  BoundArgs b(a, "float", {"default"});
  if (v.is_undefined()) Fail(v.undefined_hint());
  if (v.is_number()) return Value::Float(v.as_double());
  if (v.is_string()) {
    if (auto d = ParseFloat(v.str())) return Value::Float(*d);
  }
  return b.Get(0, Value::Float(0.0));
}

Value FItems(Interpreter& in, const Value& v, CallArgs& a) {
  BoundArgs b(a, "items", {});
  if (v.is_undefined()) return Value::List({});
  if (!v.is_dict()) Fail("Can only get item pairs from a mapping.");
  std::vector<Value> items;
  for (const auto& [k, x] : v.dict().items) items.push_back(Value::List({k, x}, true));
  in.Charge(static_cast<int64_t>(items.size()));
  return Value::List(std::move(items));
}

Value FJoin(Interpreter& in, const Value& v, CallArgs& a) {
  BoundArgs b(a, "join", {"d", "attribute"});
  const std::string sep = ToStr(b.Get(0, Value::String("")));
  const Value attribute = b.Get(1);
  std::string out;
  bool first = true;
  for (const Value& item : Items(in, v)) {
    if (!first) out += sep;
    first = false;
    AppendStr(attribute.is_none() ? item : GetAttrPath(item, attribute), &out);
    in.CheckSize(out.size());
  }
  in.Charge(static_cast<int64_t>(out.size() / 64));
  return Value::String(std::move(out));
}

Value FLength(Interpreter&, const Value& v, CallArgs& a) {
  BoundArgs b(a, "length", {});
  return Value::Int(Len(v));
}

Value FList(Interpreter& in, const Value& v, CallArgs& a) {
  BoundArgs b(a, "list", {});
  return Value::List(Items(in, v));
}

Value FLower(Interpreter&, const Value& v, CallArgs& a) {
  BoundArgs b(a, "lower", {});
  return Value::String(pystr::Lower(ToStr(v)));
}

Value FUpper(Interpreter&, const Value& v, CallArgs& a) {
  BoundArgs b(a, "upper", {});
  return Value::String(pystr::Upper(ToStr(v)));
}

Value FMap(Interpreter& in, const Value& v, CallArgs& a) {
  std::vector<Value> out;
  const Value* attribute = nullptr;
  const Value* dflt = nullptr;
  for (const auto& [k, x] : a.keyword) {
    if (k == "attribute") attribute = &x;
    if (k == "default") dflt = &x;
  }
  if (attribute != nullptr) {
    for (const Value& item : Items(in, v)) {
      Value r = GetAttrPath(item, *attribute);
      if (r.is_undefined() && dflt != nullptr) r = *dflt;
      out.push_back(std::move(r));
    }
    return Value::List(std::move(out));
  }
  if (a.positional.empty()) Fail("map requires a filter argument");
  const std::string& name = StrArg(a.positional[0], "map filter name");
  FilterFn f = FindFilter(name);
  if (f == nullptr) Fail(absl::StrCat("No filter named '", name, "'."));
  CallArgs rest;
  rest.positional.assign(a.positional.begin() + 1, a.positional.end());
  rest.keyword = a.keyword;
  for (const Value& item : Items(in, v)) {
    CallArgs copy = rest;
    out.push_back(f(in, item, copy));
  }
  return Value::List(std::move(out));
}

Value MinMax(Interpreter& in, const Value& v, CallArgs& a, bool max) {
  BoundArgs b(a, max ? "max" : "min", {"case_sensitive", "attribute"});
  const bool cs = b.Get(0, Value::Bool(false)).Truthy();
  const Value attribute = b.Get(1);
  const std::vector<Value> items = Items(in, v);
  if (items.empty()) return Value::Undefined("No aggregated item, sequence was empty.");
  size_t best = 0;
  Value best_key = KeyOf(items[0], attribute, cs);
  for (size_t i = 1; i < items.size(); ++i) {
    Value k = KeyOf(items[i], attribute, cs);
    if (max ? Less(best_key, k) : Less(k, best_key)) {
      best = i;
      best_key = std::move(k);
    }
  }
  return items[best];
}
Value FMax(Interpreter& in, const Value& v, CallArgs& a) { return MinMax(in, v, a, true); }
Value FMin(Interpreter& in, const Value& v, CallArgs& a) { return MinMax(in, v, a, false); }

// select/reject/selectattr/rejectattr.
Value Select(Interpreter& in, const Value& v, CallArgs& a, bool attr, bool keep) {
  size_t next = 0;
  Value attribute;
  if (attr) {
    if (a.positional.empty()) Fail("Missing parameter for attribute name");
    attribute = a.positional[next++];
  }
  TestFn test = nullptr;
  if (next < a.positional.size()) {
    const std::string& name = StrArg(a.positional[next++], "test name");
    test = FindTest(name);
    if (test == nullptr) Fail(absl::StrCat("No test named '", name, "'."));
  }
  CallArgs rest;
  rest.positional.assign(a.positional.begin() + static_cast<std::ptrdiff_t>(next),
                         a.positional.end());
  rest.keyword = a.keyword;
  std::vector<Value> out;
  for (const Value& item : Items(in, v)) {
    const Value x = attr ? GetAttrPath(item, attribute) : item;
    bool r;
    if (test == nullptr) {
      r = x.Truthy();
    } else {
      CallArgs copy = rest;
      r = test(in, x, copy);
    }
    if (r == keep) out.push_back(item);
  }
  return Value::List(std::move(out));
}
Value FSelect(Interpreter& in, const Value& v, CallArgs& a) {
  return Select(in, v, a, false, true);
}
Value FReject(Interpreter& in, const Value& v, CallArgs& a) {
  return Select(in, v, a, false, false);
}
Value FSelectAttr(Interpreter& in, const Value& v, CallArgs& a) {
  return Select(in, v, a, true, true);
}
Value FRejectAttr(Interpreter& in, const Value& v, CallArgs& a) {
  return Select(in, v, a, true, false);
}

Value FReplace(Interpreter& in, const Value& v, CallArgs& a) {
  BoundArgs b(a, "replace", {"old", "new", "count"});
  const Value count = b.Get(2);
  auto r = pystr::Replace(ToStr(v), ToStr(b.Get(0)), ToStr(b.Get(1)),
                          count.is_none() ? -1 : IntArg(count, "count"), 4 << 20);
  if (!r) in.CheckSize(SIZE_MAX);
  in.Charge(static_cast<int64_t>(r->size() / 64));
  return Value::String(std::move(*r));
}

Value FReverse(Interpreter& in, const Value& v, CallArgs& a) {
  BoundArgs b(a, "reverse", {});
  if (v.is_string()) {
    std::u32string cps = pystr::Decode(v.str());
    std::reverse(cps.begin(), cps.end());
    return Value::String(pystr::Encode(cps));
  }
  std::vector<Value> items = Items(in, v);
  std::reverse(items.begin(), items.end());
  return Value::List(std::move(items));
}

// Python's round(x, n) for floats: correctly rounded, ties to even on the exact binary value.
double RoundFloat(double x, int64_t n) {
  if (!std::isfinite(x)) return x;
  if (n > 300) return x;
  if (n < -308) return std::copysign(0.0, x);
  if (n >= 0) {
    char buf[512];
    std::snprintf(buf, sizeof buf, "%.*f", static_cast<int>(n), x);
    return std::strtod(buf, nullptr);
  }
  const double p = std::pow(10.0, static_cast<double>(-n));
  double y = x / p;
  double r = std::nearbyint(y);
  return r * p;
}

Value FRound(Interpreter&, const Value& v, CallArgs& a) {
  BoundArgs b(a, "round", {"precision", "method"});
  const int64_t precision = IntArg(b.Get(0, Value::Int(0)), "precision");
  const Value method = b.Get(1, Value::String("common"));
  if (!method.is_string() ||
      (method.str() != "common" && method.str() != "ceil" && method.str() != "floor")) {
    Fail("method must be 'common', 'ceil' or 'floor'");
  }
  if (v.is_undefined()) Fail(v.undefined_hint());
  if (!v.is_number()) {
    Fail(absl::StrCat("type ", v.TypeName(), " doesn't define __round__ method"));
  }
  if (method.str() == "common") {
    if (v.is_integral()) {
      if (precision >= 0) return Value::Int(v.as_int());
      return FloatToInt(RoundFloat(static_cast<double>(v.as_int()), precision));
    }
    return Value::Float(RoundFloat(v.as_double(), precision));
  }
  const double p = std::pow(10.0, static_cast<double>(precision));
  const double x = v.as_double() * p;
  return Value::Float((method.str() == "ceil" ? std::ceil(x) : std::floor(x)) / p);
}

Value FSafe(Interpreter&, const Value& v, CallArgs& a) {
  BoundArgs b(a, "safe", {});
  return v.is_string() ? v : Value::String(ToStr(v));
}

Value FSort(Interpreter& in, const Value& v, CallArgs& a) {
  BoundArgs b(a, "sort", {"reverse", "case_sensitive", "attribute"});
  const bool rev = b.Get(0, Value::Bool(false)).Truthy();
  const bool cs = b.Get(1, Value::Bool(false)).Truthy();
  const Value attribute = b.Get(2);
  std::vector<Value> items = Items(in, v);
  std::vector<std::pair<Value, size_t>> keyed;
  for (size_t i = 0; i < items.size(); ++i) keyed.emplace_back(KeyOf(items[i], attribute, cs), i);
  in.Charge(static_cast<int64_t>(items.size()) * 8);
  std::stable_sort(keyed.begin(), keyed.end(), [rev](const auto& x, const auto& y) {
    return rev ? Less(y.first, x.first) : Less(x.first, y.first);
  });
  std::vector<Value> out;
  for (const auto& [k, i] : keyed) out.push_back(items[i]);
  return Value::List(std::move(out));
}

Value FString(Interpreter&, const Value& v, CallArgs& a) {
  BoundArgs b(a, "string", {});
  return v.is_string() ? v : Value::String(ToStr(v));
}

Value FSum(Interpreter& in, const Value& v, CallArgs& a) {
  BoundArgs b(a, "sum", {"attribute", "start"});
  const Value attribute = b.Get(0);
  Value total = b.Get(1, Value::Int(0));
  for (const Value& item : Items(in, v)) {
    total = PyAdd(in, total, attribute.is_none() ? item : GetAttrPath(item, attribute));
  }
  return total;
}

Value FTitle(Interpreter&, const Value& v, CallArgs& a) {
  BoundArgs b(a, "title", {});
  // jinja2: split at runs of [-\s({\[<], upper-case each piece's first character and
  // lower-case the rest.
  const std::u32string cps = pystr::Decode(ToStr(v));
  auto is_sep = [](char32_t c) {
    return c == '-' || c == '(' || c == '{' || c == '[' || c == '<' || pystr::IsSpace(c);
  };
  std::string out;
  size_t i = 0;
  while (i < cps.size()) {
    size_t j = i;
    const bool sep = is_sep(cps[i]);
    while (j < cps.size() && is_sep(cps[j]) == sep) ++j;
    const std::string piece = pystr::Encode(std::u32string_view(cps).substr(i, j - i));
    const std::string first = pystr::Encode(std::u32string_view(cps).substr(i, 1));
    out += pystr::Upper(first);
    out += pystr::Lower(piece.substr(first.size()));
    i = j;
  }
  return Value::String(std::move(out));
}

Value FToJson(Interpreter& in, const Value& v, CallArgs& a) {
  BoundArgs b(a, "tojson", {"ensure_ascii", "indent", "separators", "sort_keys"});
  JsonOptions o;
  const Value indent = b.Get(1);
  if (indent.is_integral()) {
    o.indent = std::string(static_cast<size_t>(std::clamp<int64_t>(indent.as_int(), 0, 1000)), ' ');
  } else if (indent.is_string()) {
    o.indent = indent.str();
  } else if (!indent.is_none()) {
    Fail("unsupported: a tojson indent that is not an int or a string");
  }
  const Value seps = b.Get(2);
  if (seps.is_none()) {
    if (o.indent) o.item_separator = ",";
  } else {
    const std::vector<Value> two = Iterate(seps);
    if (two.size() != 2) Fail("separators must be a pair of strings");
    o.item_separator = StrArg(two[0], "item separator");
    o.key_separator = StrArg(two[1], "key separator");
  }
  o.sort_keys = b.Get(3, Value::Bool(false)).Truthy();
  std::string out;
  AppendJson(v, o, &out);
  if (b.Get(0, Value::Bool(false)).Truthy()) {
    // ensure_ascii: every non-ASCII character as \uXXXX (surrogate pairs above U+FFFF).
    std::string ascii;
    static const char kHex[] = "0123456789abcdef";
    auto put = [&](uint32_t u) {
      ascii += "\\u";
      for (int k = 3; k >= 0; --k) ascii.push_back(kHex[(u >> (4 * k)) & 0xF]);
    };
    for (char32_t c : pystr::Decode(out)) {
      if (c < 0x80) {
        ascii.push_back(static_cast<char>(c));
      } else if (c >= 0x10000) {
        const uint32_t x = static_cast<uint32_t>(c) - 0x10000;
        put(0xD800 + (x >> 10));
        put(0xDC00 + (x & 0x3FF));
      } else {
        put(static_cast<uint32_t>(c));
      }
    }
    out = std::move(ascii);
  }
  in.CheckSize(out.size());
  in.Charge(static_cast<int64_t>(out.size() / 16));
  return Value::String(std::move(out));
}

Value FTrim(Interpreter&, const Value& v, CallArgs& a) {
  BoundArgs b(a, "trim", {"chars"});
  const Value chars = b.Get(0);
  return Value::String(pystr::Strip(
      ToStr(v), chars.is_none() ? std::nullopt : std::optional<std::string>(ToStr(chars)), true,
      true));
}

Value FUnique(Interpreter& in, const Value& v, CallArgs& a) {
  BoundArgs b(a, "unique", {"case_sensitive", "attribute"});
  const bool cs = b.Get(0, Value::Bool(false)).Truthy();
  const Value attribute = b.Get(1);
  std::vector<Value> seen, out;
  for (const Value& item : Items(in, v)) {
    Value k = KeyOf(item, attribute, cs);
    in.Charge(static_cast<int64_t>(seen.size()));
    if (std::none_of(seen.begin(), seen.end(), [&](const Value& s) { return Equals(s, k); })) {
      seen.push_back(std::move(k));
      out.push_back(item);
    }
  }
  return Value::List(std::move(out));
}

Value FWordCount(Interpreter&, const Value& v, CallArgs& a) {
  BoundArgs b(a, "wordcount", {});
  int64_t n = 0;
  bool in_word = false;
  for (char32_t c : pystr::Decode(ToStr(v))) {
    const bool w = pystr::IsWordChar(c);
    if (w && !in_word) ++n;
    in_word = w;
  }
  return Value::Int(n);
}

Value FIndent(Interpreter& in, const Value& v, CallArgs& a) {
  BoundArgs b(a, "indent", {"width", "first", "blank"});
  const Value width = b.Get(0, Value::Int(4));
  std::string indention;
  if (width.is_string()) {
    indention = width.str();
  } else {
    const int64_t w = IntArg(width, "width");
    in.CheckSize(static_cast<size_t>(std::max<int64_t>(w, 0)));
    indention = std::string(static_cast<size_t>(std::max<int64_t>(w, 0)), ' ');
  }
  const bool first = b.Get(1, Value::Bool(false)).Truthy();
  const bool blank = b.Get(2, Value::Bool(false)).Truthy();
  const std::vector<std::string> lines = pystr::SplitLines(ToStr(v) + "\n", false);
  std::string rv;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (i > 0) {
      rv += '\n';
      if (blank || !lines[i].empty()) rv += indention;
    }
    rv += lines[i];
    in.CheckSize(rv.size());
  }
  if (first) rv = indention + rv;
  in.CheckSize(rv.size());
  in.Charge(static_cast<int64_t>(lines.size() + rv.size() / 64));
  return Value::String(std::move(rv));
}

Value FAttr(Interpreter&, const Value& v, CallArgs& a) {
  BoundArgs b(a, "attr", {"name"});
  // Python's getattr only: a dict's keys are not attributes.
  const std::string& name = StrArg(b.Get(0), "attribute name");
  if (v.is_undefined()) Fail(v.undefined_hint());
  if (v.is_dict() && !FindMethod(v, name).is_undefined()) return FindMethod(v, name);
  if (v.is_dict())
    return Value::Undefined(absl::StrCat("'dict object' has no attribute '", name, "'"));
  return GetAttr(v, name);
}

Value FCenter(Interpreter& in, const Value& v, CallArgs& a) {
  BoundArgs b(a, "center", {"width"});
  const std::string s = ToStr(v);
  const int64_t width = IntArg(b.Get(0, Value::Int(80)), "width");
  const int64_t len = static_cast<int64_t>(pystr::Length(s));
  if (width <= len) return Value::String(s);
  in.CheckSize(static_cast<size_t>(width));
  // Python's str.center: the extra space goes left when the margin and width are both odd.
  const int64_t marg = width - len;
  const int64_t left = marg / 2 + (marg & width & 1);
  return Value::String(std::string(static_cast<size_t>(left), ' ') + s +
                       std::string(static_cast<size_t>(marg - left), ' '));
}

struct FilterEntry {
  const char* name;
  FilterFn fn;
};
constexpr FilterEntry kFilters[] = {
    {"abs", FAbs},
    {"attr", FAttr},
    {"capitalize", FCapitalize},
    {"center", FCenter},
    {"count", FLength},
    {"d", FDefault},
    {"default", FDefault},
    {"dictsort", FDictSort},
    {"e", FEscape},
    {"escape", FEscape},
    {"first", FFirst},
    {"float", FFloat},
    {"forceescape", FEscape},
    {"indent", FIndent},
    {"int", FInt},
    {"items", FItems},
    {"join", FJoin},
    {"last", FLast},
    {"length", FLength},
    {"list", FList},
    {"lower", FLower},
    {"map", FMap},
    {"max", FMax},
    {"min", FMin},
    {"reject", FReject},
    {"rejectattr", FRejectAttr},
    {"replace", FReplace},
    {"reverse", FReverse},
    {"round", FRound},
    {"safe", FSafe},
    {"select", FSelect},
    {"selectattr", FSelectAttr},
    {"sort", FSort},
    {"string", FString},
    {"sum", FSum},
    {"title", FTitle},
    {"tojson", FToJson},
    {"trim", FTrim},
    {"unique", FUnique},
    {"upper", FUpper},
    {"wordcount", FWordCount},
};

}  // namespace

FilterFn FindFilter(std::string_view name) {
  for (const FilterEntry& e : kFilters) {
    if (name == e.name) return e.fn;
  }
  return nullptr;
}

}  // namespace attnres::jinja
