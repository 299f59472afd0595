// Values with Python semantics (see value.h).
#include "models/jinja/value.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "models/jinja/py_string.h"

namespace attnres::jinja {

void Fail(std::string message) { throw TemplateError{0, std::move(message), false}; }

namespace {

uint8_t DepthOf(const std::vector<Value>& items) {
  int d = 0;
  for (const Value& v : items) d = std::max(d, static_cast<int>(v.depth()));
  if (d + 1 > kMaxValueDepth)
    Fail(absl::StrCat("value nested too deeply (limit ", kMaxValueDepth, ")"));
  return static_cast<uint8_t>(d + 1);
}

}  // namespace

const Value* DictData::Find(const Value& key) const {
  for (const auto& [k, v] : items) {
    if (k.is_string() && key.is_string()) {
      if (k.str() == key.str()) return &v;
    } else if (Equals(k, key)) {
      return &v;
    }
  }
  return nullptr;
}

Value* Namespace::Find(std::string_view name) {
  for (auto& [k, v] : attrs) {
    if (k == name) return &v;
  }
  return nullptr;
}

Value Value::Undefined(std::string hint) {
  Value v;
  v.s_ = std::make_shared<const std::string>(std::move(hint));
  return v;
}
Value Value::None() {
  Value v;
  v.kind_ = Kind::kNone;
  return v;
}
Value Value::Bool(bool b) {
  Value v;
  v.kind_ = Kind::kBool;
  v.b_ = b;
  v.i_ = b ? 1 : 0;
  return v;
}
Value Value::Int(int64_t i) {
  Value v;
  v.kind_ = Kind::kInt;
  v.i_ = i;
  return v;
}
Value Value::Float(double f) {
  Value v;
  v.kind_ = Kind::kFloat;
  v.f_ = f;
  return v;
}
Value Value::String(std::string s) {
  Value v;
  v.kind_ = Kind::kString;
  v.s_ = std::make_shared<const std::string>(std::move(s));
  return v;
}
Value Value::List(std::vector<Value> items, bool is_tuple) {
  Value v;
  v.kind_ = Kind::kList;
  v.depth_ = DepthOf(items);
  v.list_ = std::make_shared<const ListData>(ListData{std::move(items), is_tuple});
  return v;
}
Value Value::Dict(std::vector<std::pair<Value, Value>> items) {
  Value v;
  v.kind_ = Kind::kDict;
  int d = 0;
  for (const auto& [k, x] : items)
    d = std::max({d, static_cast<int>(k.depth()), static_cast<int>(x.depth())});
  if (d + 1 > kMaxValueDepth)
    Fail(absl::StrCat("value nested too deeply (limit ", kMaxValueDepth, ")"));
  v.depth_ = static_cast<uint8_t>(d + 1);
  v.dict_ = std::make_shared<const DictData>(DictData{std::move(items)});
  return v;
}
Value Value::NewNamespace() {
  Value v;
  v.kind_ = Kind::kNamespace;
  v.ns_ = std::make_shared<Namespace>();
  return v;
}
Value Value::Function(std::string name, std::function<Value(Interpreter&, CallArgs&)> fn) {
  Value v;
  v.kind_ = Kind::kCallable;
  v.fn_ = std::make_shared<const Callable>(Callable{std::move(name), std::move(fn)});
  return v;
}

Value Value::FromJson(const nlohmann::ordered_json& j, int depth) {
  if (depth > kMaxValueDepth)
    Fail(absl::StrCat("value nested too deeply (limit ", kMaxValueDepth, ")"));
  switch (j.type()) {
    case nlohmann::ordered_json::value_t::null:
      return None();
    case nlohmann::ordered_json::value_t::boolean:
      return Bool(j.get<bool>());
    case nlohmann::ordered_json::value_t::number_integer:
      return Int(j.get<int64_t>());
    case nlohmann::ordered_json::value_t::number_unsigned: {
      const uint64_t u = j.get<uint64_t>();
      if (u <= static_cast<uint64_t>(INT64_MAX)) return Int(static_cast<int64_t>(u));
      return Float(static_cast<double>(u));
    }
    case nlohmann::ordered_json::value_t::number_float:
      return Float(j.get<double>());
    case nlohmann::ordered_json::value_t::string:
      return String(j.get<std::string>());
    case nlohmann::ordered_json::value_t::array: {
      std::vector<Value> items;
      items.reserve(j.size());
      for (const auto& e : j) items.push_back(FromJson(e, depth + 1));
      return List(std::move(items));
    }
    case nlohmann::ordered_json::value_t::object: {
      std::vector<std::pair<Value, Value>> items;
      items.reserve(j.size());
      for (const auto& [k, e] : j.items()) items.emplace_back(String(k), FromJson(e, depth + 1));
      return Dict(std::move(items));
    }
    default:
      Fail("binary JSON values are not supported");
  }
}

bool Value::Truthy() const {
  switch (kind_) {
    case Kind::kUndefined:
    case Kind::kNone:
      return false;
    case Kind::kBool:
      return b_;
    case Kind::kInt:
      return i_ != 0;
    case Kind::kFloat:
      return f_ != 0;
    case Kind::kString:
      return !s_->empty();
    case Kind::kList:
      return !list_->items.empty();
    case Kind::kDict:
      return !dict_->items.empty();
    default:
      return true;
  }
}

std::string Value::TypeName() const {
  switch (kind_) {
    case Kind::kUndefined:
      return "Undefined";
    case Kind::kNone:
      return "NoneType";
    case Kind::kBool:
      return "bool";
    case Kind::kInt:
      return "int";
    case Kind::kFloat:
      return "float";
    case Kind::kString:
      return "str";
    case Kind::kList:
      return list_->is_tuple ? "tuple" : "list";
    case Kind::kDict:
      return "dict";
    case Kind::kNamespace:
      return "Namespace";
    case Kind::kCallable:
      return "function";
  }
  return "object";
}

std::string FloatRepr(double d) {
  if (std::isnan(d)) return "nan";
  if (std::isinf(d)) return d > 0 ? "inf" : "-inf";
  if (d == 0) return std::signbit(d) ? "-0.0" : "0.0";
  char buf[64];
  auto res = std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
  std::string sci(buf, res.ptr);
  // sci: [-]D[.DDD]e[+-]XX
  std::string sign;
  if (sci[0] == '-') {
    sign = "-";
    sci.erase(0, 1);
  }
  const size_t e = sci.find('e');
  std::string digits = sci.substr(0, e);
  digits.erase(std::remove(digits.begin(), digits.end(), '.'), digits.end());
  const int exp10 = std::stoi(sci.substr(e + 1));
  const int decpt = exp10 + 1;  // value = 0.DIGITS * 10^decpt
  std::string out = sign;
  if (decpt > 16 || decpt < -3) {
    out += digits.substr(0, 1);
    if (digits.size() > 1) absl::StrAppend(&out, ".", digits.substr(1));
    char eb[16];
    std::snprintf(eb, sizeof eb, "e%c%02d", exp10 < 0 ? '-' : '+', std::abs(exp10));
    out += eb;
  } else if (decpt <= 0) {
    absl::StrAppend(&out, "0.", std::string(static_cast<size_t>(-decpt), '0'), digits);
  } else if (static_cast<size_t>(decpt) >= digits.size()) {
    absl::StrAppend(&out, digits, std::string(static_cast<size_t>(decpt) - digits.size(), '0'),
                    ".0");
  } else {
    absl::StrAppend(&out, digits.substr(0, static_cast<size_t>(decpt)), ".",
                    digits.substr(static_cast<size_t>(decpt)));
  }
  return out;
}

void AppendRepr(const Value& v, std::string* out) {
  switch (v.kind()) {
    case Value::Kind::kUndefined:
      *out += "Undefined";
      return;
    case Value::Kind::kString:
      *out += pystr::Repr(v.str());
      return;
    case Value::Kind::kList: {
      *out += v.is_tuple() ? '(' : '[';
      bool first = true;
      for (const Value& e : v.items()) {
        if (!first) *out += ", ";
        first = false;
        AppendRepr(e, out);
      }
      if (v.is_tuple() && v.items().size() == 1) *out += ',';
      *out += v.is_tuple() ? ')' : ']';
      return;
    }
    case Value::Kind::kDict: {
      *out += '{';
      bool first = true;
      for (const auto& [k, e] : v.dict().items) {
        if (!first) *out += ", ";
        first = false;
        AppendRepr(k, out);
        *out += ": ";
        AppendRepr(e, out);
      }
      *out += '}';
      return;
    }
    case Value::Kind::kNamespace: {
      *out += "<Namespace {";
      bool first = true;
      for (const auto& [k, e] : v.ns().attrs) {
        if (!first) *out += ", ";
        first = false;
        *out += pystr::Repr(k);
        *out += ": ";
        AppendRepr(e, out);
      }
      *out += "}>";
      return;
    }
    case Value::Kind::kCallable:
      absl::StrAppend(out, "<function ", v.callable().name, ">");
      return;
    default:
      AppendStr(v, out);
  }
}

void AppendStr(const Value& v, std::string* out) {
  switch (v.kind()) {
    case Value::Kind::kUndefined:
      return;
    case Value::Kind::kNone:
      *out += "None";
      return;
    case Value::Kind::kBool:
      *out += v.as_bool() ? "True" : "False";
      return;
    case Value::Kind::kInt:
      absl::StrAppend(out, v.as_int());
      return;
    case Value::Kind::kFloat:
      *out += FloatRepr(v.as_double());
      return;
    case Value::Kind::kString:
      *out += v.str();
      return;
    default:
      AppendRepr(v, out);
  }
}

std::string ToStr(const Value& v) {
  if (v.is_string()) return v.str();
  std::string out;
  AppendStr(v, &out);
  return out;
}

bool Equals(const Value& a, const Value& b) {
  using K = Value::Kind;
  if (a.is_number() && b.is_number()) {
    if (a.is_integral() && b.is_integral()) return a.as_int() == b.as_int();
    return a.as_double() == b.as_double();
  }
  if (a.kind() != b.kind()) return false;
  switch (a.kind()) {
    case K::kUndefined:
    case K::kNone:
      return true;
    case K::kString:
      return a.str() == b.str();
    case K::kList: {
      if (a.is_tuple() != b.is_tuple() || a.items().size() != b.items().size()) return false;
      for (size_t i = 0; i < a.items().size(); ++i) {
        if (!Equals(a.items()[i], b.items()[i])) return false;
      }
      return true;
    }
    case K::kDict: {
      if (a.dict().items.size() != b.dict().items.size()) return false;
      for (const auto& [k, v] : a.dict().items) {
        const Value* other = b.dict().Find(k);
        if (other == nullptr || !Equals(v, *other)) return false;
      }
      return true;
    }
    case K::kNamespace:
      return &a.ns() == &b.ns();
    case K::kCallable:
      return &a.callable() == &b.callable();
    default:
      return false;
  }
}

bool Less(const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.is_integral() && b.is_integral()) return a.as_int() < b.as_int();
    return a.as_double() < b.as_double();
  }
  if (a.is_string() && b.is_string()) return a.str() < b.str();
  if (a.is_list() && b.is_list() && a.is_tuple() == b.is_tuple()) {
    const auto& x = a.items();
    const auto& y = b.items();
    for (size_t i = 0; i < x.size() && i < y.size(); ++i) {
      if (!Equals(x[i], y[i])) return Less(x[i], y[i]);
    }
    return x.size() < y.size();
  }
  if (a.is_undefined() || b.is_undefined()) {
    Fail(a.is_undefined() ? a.undefined_hint() : b.undefined_hint());
  }
  Fail(absl::StrCat("'<' not supported between instances of '", a.TypeName(), "' and '",
                    b.TypeName(), "'"));
}

bool Contains(const Value& haystack, const Value& needle) {
  switch (haystack.kind()) {
    case Value::Kind::kString:
      if (!needle.is_string()) {
        if (needle.is_undefined()) Fail(needle.undefined_hint());
        Fail(
            absl::StrCat("'in <string>' requires string as left operand, not ", needle.TypeName()));
      }
      return haystack.str().find(needle.str()) != std::string::npos;
    case Value::Kind::kList:
      for (const Value& e : haystack.items()) {
        if (Equals(e, needle)) return true;
      }
      return false;
    case Value::Kind::kDict:
      return haystack.dict().Find(needle) != nullptr;
    case Value::Kind::kUndefined:
      return false;
    default:
      Fail(absl::StrCat("argument of type '", haystack.TypeName(), "' is not iterable"));
  }
}

std::vector<Value> Iterate(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined:
      return {};
    case Value::Kind::kList:
      return v.items();
    case Value::Kind::kDict: {
      std::vector<Value> keys;
      keys.reserve(v.dict().items.size());
      for (const auto& [k, e] : v.dict().items) keys.push_back(k);
      return keys;
    }
    case Value::Kind::kString: {
      std::vector<Value> chars;
      std::string one;
      for (char32_t c : pystr::Decode(v.str())) {
        one.clear();
        pystr::AppendCodePoint(c, &one);
        chars.push_back(Value::String(one));
      }
      return chars;
    }
    default:
      Fail(absl::StrCat("'", v.TypeName(), "' object is not iterable"));
  }
}

int64_t Len(const Value& v) {
  switch (v.kind()) {
    case Value::Kind::kUndefined:
      return 0;
    case Value::Kind::kString:
      return static_cast<int64_t>(pystr::Length(v.str()));
    case Value::Kind::kList:
      return static_cast<int64_t>(v.items().size());
    case Value::Kind::kDict:
      return static_cast<int64_t>(v.dict().items.size());
    default:
      Fail(absl::StrCat("object of type '", v.TypeName(), "' has no len()"));
  }
}

namespace {

void AppendJsonKey(const Value& k, std::string* out) {
  switch (k.kind()) {
    case Value::Kind::kString:
      pystr::AppendJsonQuoted(k.str(), out);
      return;
    case Value::Kind::kNone:
      *out += "\"null\"";
      return;
    case Value::Kind::kBool:
      *out += k.as_bool() ? "\"true\"" : "\"false\"";
      return;
    case Value::Kind::kInt:
    case Value::Kind::kFloat: {
      std::string s;
      AppendJson(k, JsonOptions{}, &s);
      absl::StrAppend(out, "\"", s, "\"");
      return;
    }
    default:
      Fail(absl::StrCat("keys must be str, int, float, bool or None, not ", k.TypeName()));
  }
}

void AppendJsonAt(const Value& v, const JsonOptions& o, int level, std::string* out) {
  std::string newline_indent;
  if (o.indent) {
    newline_indent = "\n";
    for (int i = 0; i <= level; ++i) newline_indent += *o.indent;
  }
  auto close_indent = [&] {
    if (!o.indent) return;
    *out += '\n';
    for (int i = 0; i < level; ++i) *out += *o.indent;
  };
  switch (v.kind()) {
    case Value::Kind::kNone:
      *out += "null";
      return;
    case Value::Kind::kBool:
      *out += v.as_bool() ? "true" : "false";
      return;
    case Value::Kind::kInt:
      absl::StrAppend(out, v.as_int());
      return;
    case Value::Kind::kFloat: {
      const double d = v.as_double();
      if (std::isnan(d)) {
        *out += "NaN";
      } else if (std::isinf(d)) {
        *out += d > 0 ? "Infinity" : "-Infinity";
      } else {
        *out += FloatRepr(d);
      }
      return;
    }
    case Value::Kind::kString:
      pystr::AppendJsonQuoted(v.str(), out);
      return;
    case Value::Kind::kList: {
      if (v.items().empty()) {
        *out += "[]";
        return;
      }
      *out += '[';
      bool first = true;
      for (const Value& e : v.items()) {
        if (!first) *out += o.item_separator;
        first = false;
        *out += newline_indent;
        AppendJsonAt(e, o, level + 1, out);
      }
      close_indent();
      *out += ']';
      return;
    }
    case Value::Kind::kDict: {
      if (v.dict().items.empty()) {
        *out += "{}";
        return;
      }
      std::vector<const std::pair<Value, Value>*> entries;
      for (const auto& e : v.dict().items) entries.push_back(&e);
      if (o.sort_keys) {
        std::stable_sort(entries.begin(), entries.end(),
                         [](const auto* a, const auto* b) { return Less(a->first, b->first); });
      }
      *out += '{';
      bool first = true;
      for (const auto* e : entries) {
        if (!first) *out += o.item_separator;
        first = false;
        *out += newline_indent;
        AppendJsonKey(e->first, out);
        *out += o.key_separator;
        AppendJsonAt(e->second, o, level + 1, out);
      }
      close_indent();
      *out += '}';
      return;
    }
    default:
      Fail(absl::StrCat("Object of type ", v.TypeName(), " is not JSON serializable"));
  }
}

}  // namespace

void AppendJson(const Value& v, const JsonOptions& options, std::string* out) {
  AppendJsonAt(v, options, 0, out);
}

}  // namespace attnres::jinja
