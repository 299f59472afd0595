// Attribute and item access, the methods of str/dict/list values, the global functions and the
// tests (see builtins.h). The filters live in filters.cc.
#include "models/jinja/builtins.h"

#include <unicode/uchar.h>

#include <ctime>
#include <string>

#include "absl/strings/str_cat.h"
#include "models/jinja/call_args.h"
#include "models/jinja/interpreter.h"
#include "models/jinja/py_string.h"

namespace attnres::jinja {
namespace {

// jinja2's object_type_repr: "dict object", "None", ...
std::string ObjectTypeRepr(const Value& v) {
  if (v.is_none()) return "None";
  return absl::StrCat(v.TypeName(), " object");
}

Value NoAttribute(const Value& obj, const std::string& name) {
  return Value::Undefined(
      absl::StrCat("'", ObjectTypeRepr(obj), "' has no attribute '", name, "'"));
}

Value NoElement(const Value& obj, const Value& key) {
  std::string k;
  AppendRepr(key, &k);
  return Value::Undefined(absl::StrCat(ObjectTypeRepr(obj), " has no element ", k));
}

// ---- methods ----

using Method = Value (*)(Interpreter&, const Value& self, CallArgs& args);

std::optional<std::string> OptStr(const Value& v, const char* what) {
  if (v.is_none()) return std::nullopt;
  return StrArg(v, what);
}

Value StrList(std::vector<std::string> parts) {
  std::vector<Value> items;
  items.reserve(parts.size());
  for (auto& p : parts) items.push_back(Value::String(std::move(p)));
  return Value::List(std::move(items));
}

template <bool kLeft, bool kRight>
Value StrStrip(Interpreter&, const Value& self, CallArgs& a) {
  BoundArgs b(a, "strip", {"chars"});
  return Value::String(pystr::Strip(self.str(), OptStr(b.Get(0), "strip arg"), kLeft, kRight));
}

template <bool kReverse>
Value StrSplit(Interpreter& in, const Value& self, CallArgs& a) {
  BoundArgs b(a, "split", {"sep", "maxsplit"});
  const std::optional<std::string> sep = OptStr(b.Get(0), "sep");
  if (sep && sep->empty()) Fail("empty separator");
  const int64_t maxsplit = IntArg(b.Get(1, Value::Int(-1)), "maxsplit");
  auto parts =
      kReverse ? pystr::RSplit(self.str(), sep, maxsplit) : pystr::Split(self.str(), sep, maxsplit);
  in.Charge(static_cast<int64_t>(parts.size()));
  return StrList(std::move(parts));
}

Value StrSplitLines(Interpreter& in, const Value& self, CallArgs& a) {
  BoundArgs b(a, "splitlines", {"keepends"});
  auto parts = pystr::SplitLines(self.str(), b.Get(0, Value::Bool(false)).Truthy());
  in.Charge(static_cast<int64_t>(parts.size()));
  return StrList(std::move(parts));
}

template <bool kStarts>
Value StrAffix(Interpreter&, const Value& self, CallArgs& a) {
  BoundArgs b(a, kStarts ? "startswith" : "endswith", {"prefix"});
  const Value p = b.Get(0, Value::Undefined("missing argument"));
  std::vector<Value> options;
  if (p.is_tuple()) {
    options = p.items();
  } else if (p.is_string()) {
    options.push_back(p);
  } else {
    Fail(absl::StrCat(kStarts ? "startswith" : "endswith",
                      " first arg must be str or a tuple of str, not ", p.TypeName()));
  }
  const std::string& s = self.str();
  for (const Value& o : options) {
    const std::string& x = StrArg(o, "tuple for startswith/endswith");
    if (kStarts ? s.compare(0, x.size(), x) == 0 && s.size() >= x.size()
                : s.size() >= x.size() && s.compare(s.size() - x.size(), x.size(), x) == 0) {
      return Value::Bool(true);
    }
  }
  return Value::Bool(false);
}

template <std::string (*kFn)(std::string_view)>
Value StrCase(Interpreter&, const Value& self, CallArgs& a) {
  BoundArgs b(a, "method", {});
  return Value::String(kFn(self.str()));
}

Value StrReplace(Interpreter& in, const Value& self, CallArgs& a) {
  BoundArgs b(a, "replace", {"old", "new", "count"});
  auto r = pystr::Replace(self.str(), StrArg(b.Get(0), "replace arg 1"),
                          StrArg(b.Get(1), "replace arg 2"),
                          IntArg(b.Get(2, Value::Int(-1)), "count"), 4 << 20);
  if (!r) in.CheckSize(SIZE_MAX);
  in.Charge(static_cast<int64_t>(r->size() / 64));
  return Value::String(std::move(*r));
}

template <bool kReverse, bool kRaise>
Value StrFind(Interpreter&, const Value& self, CallArgs& a) {
  BoundArgs b(a, "find", {"sub"});
  const int64_t at = pystr::Find(self.str(), StrArg(b.Get(0), "find arg"), kReverse);
  if (kRaise && at < 0) Fail("substring not found");
  return Value::Int(at);
}

Value StrCount(Interpreter&, const Value& self, CallArgs& a) {
  BoundArgs b(a, "count", {"sub"});
  return Value::Int(pystr::Count(self.str(), StrArg(b.Get(0), "count arg")));
}

Value StrJoin(Interpreter& in, const Value& self, CallArgs& a) {
  BoundArgs b(a, "join", {"iterable"});
  std::string out;
  size_t i = 0;
  for (const Value& v : Iterate(b.Get(0))) {
    if (!v.is_string()) {
      Fail(absl::StrCat("sequence item ", i, ": expected str instance, ", v.TypeName(), " found"));
    }
    if (i++ > 0) out += self.str();
    out += v.str();
    in.CheckSize(out.size());
  }
  in.Charge(static_cast<int64_t>(i + out.size() / 64));
  return Value::String(std::move(out));
}

template <int kWhich>
Value StrIs(Interpreter&, const Value& self, CallArgs& a) {
  BoundArgs b(a, "is", {});
  const std::u32string cps = pystr::Decode(self.str());
  if (cps.empty()) return Value::Bool(false);
  bool any_cased = false;
  for (char32_t c : cps) {
    const auto u = static_cast<UChar32>(c);
    switch (kWhich) {
      case 0:  // isdigit
        if (!u_isdigit(u)) return Value::Bool(false);
        break;
      case 1:  // isalpha
        if (!u_isalpha(u)) return Value::Bool(false);
        break;
      case 2:  // isalnum
        if (!u_isalnum(u)) return Value::Bool(false);
        break;
      case 3:  // isspace
        if (!pystr::IsSpace(c)) return Value::Bool(false);
        break;
      case 4:  // islower
        if (u_isupper(u) || u_istitle(u)) return Value::Bool(false);
        if (u_islower(u)) any_cased = true;
        break;
      case 5:  // isupper
        if (u_islower(u) || u_istitle(u)) return Value::Bool(false);
        if (u_isupper(u)) any_cased = true;
        break;
    }
  }
  return Value::Bool(kWhich < 4 || any_cased);
}

// str.format with automatic or numbered or named fields and no format specs.
Value StrFormat(Interpreter& in, const Value& self, CallArgs& a) {
  const std::string& s = self.str();
  std::string out;
  size_t auto_index = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    const char c = s[i];
    if (c == '{' && i + 1 < s.size() && s[i + 1] == '{') {
      out += '{';
      ++i;
    } else if (c == '}' && i + 1 < s.size() && s[i + 1] == '}') {
      out += '}';
      ++i;
    } else if (c == '{') {
      const size_t end = s.find('}', i);
      if (end == std::string::npos) Fail("Single '{' encountered in format string");
      const std::string field = s.substr(i + 1, end - i - 1);
      if (field.find_first_of(":!.[") != std::string::npos) {
        Fail("unsupported: format specs in str.format");
      }
      const Value* v = nullptr;
      if (field.empty() || std::all_of(field.begin(), field.end(), ::isdigit)) {
        const size_t idx = field.empty() ? auto_index++ : std::stoul(field);
        if (idx >= a.positional.size())
          Fail("Replacement index out of range for positional args tuple");
        v = &a.positional[idx];
      } else {
        for (const auto& [k, x] : a.keyword) {
          if (k == field) v = &x;
        }
        if (v == nullptr) Fail(absl::StrCat("'", field, "'"));
      }
      AppendStr(*v, &out);
      in.CheckSize(out.size());
      i = end;
    } else if (c == '}') {
      Fail("Single '}' encountered in format string");
    } else {
      out += c;
    }
  }
  return Value::String(std::move(out));
}

Value DictItems(Interpreter& in, const Value& self, CallArgs& a) {
  BoundArgs b(a, "items", {});
  std::vector<Value> items;
  for (const auto& [k, v] : self.dict().items) items.push_back(Value::List({k, v}, true));
  in.Charge(static_cast<int64_t>(items.size()));
  return Value::List(std::move(items));
}

template <bool kKeys>
Value DictKeysOrValues(Interpreter& in, const Value& self, CallArgs& a) {
  BoundArgs b(a, kKeys ? "keys" : "values", {});
  std::vector<Value> items;
  for (const auto& [k, v] : self.dict().items) items.push_back(kKeys ? k : v);
  in.Charge(static_cast<int64_t>(items.size()));
  return Value::List(std::move(items));
}

Value DictGet(Interpreter&, const Value& self, CallArgs& a) {
  BoundArgs b(a, "get", {"key", "default"});
  const Value* v = self.dict().Find(b.Get(0));
  return v ? *v : b.Get(1);
}

Value ListIndex(Interpreter&, const Value& self, CallArgs& a) {
  BoundArgs b(a, "index", {"value"});
  const Value x = b.Get(0);
  for (size_t i = 0; i < self.items().size(); ++i) {
    if (Equals(self.items()[i], x)) return Value::Int(static_cast<int64_t>(i));
  }
  Fail(absl::StrCat(ToStr(x), " is not in list"));
}

Value ListCount(Interpreter&, const Value& self, CallArgs& a) {
  BoundArgs b(a, "count", {"value"});
  int64_t n = 0;
  for (const Value& e : self.items()) n += Equals(e, b.Get(0)) ? 1 : 0;
  return Value::Int(n);
}

struct MethodEntry {
  const char* name;
  Method fn;
};

constexpr MethodEntry kStrMethods[] = {
    {"strip", StrStrip<true, true>},
    {"lstrip", StrStrip<true, false>},
    {"rstrip", StrStrip<false, true>},
    {"split", StrSplit<false>},
    {"rsplit", StrSplit<true>},
    {"splitlines", StrSplitLines},
    {"startswith", StrAffix<true>},
    {"endswith", StrAffix<false>},
    {"upper", StrCase<pystr::Upper>},
    {"lower", StrCase<pystr::Lower>},
    {"title", StrCase<pystr::Title>},
    {"capitalize", StrCase<pystr::Capitalize>},
    {"replace", StrReplace},
    {"find", StrFind<false, false>},
    {"rfind", StrFind<true, false>},
    {"index", StrFind<false, true>},
    {"rindex", StrFind<true, true>},
    {"count", StrCount},
    {"join", StrJoin},
    {"isdigit", StrIs<0>},
    {"isalpha", StrIs<1>},
    {"isalnum", StrIs<2>},
    {"isspace", StrIs<3>},
    {"islower", StrIs<4>},
    {"isupper", StrIs<5>},
    {"format", StrFormat},
};
constexpr MethodEntry kDictMethods[] = {
    {"items", DictItems},
    {"keys", DictKeysOrValues<true>},
    {"values", DictKeysOrValues<false>},
    {"get", DictGet},
};
constexpr MethodEntry kListMethods[] = {
    {"index", ListIndex},
    {"count", ListCount},
};

template <size_t N>
Method Lookup(const MethodEntry (&table)[N], std::string_view name) {
  for (const MethodEntry& e : table) {
    if (name == e.name) return e.fn;
  }
  return nullptr;
}

// ---- globals ----

Value GlobalRange(Interpreter& in, CallArgs& a) {
  if (!a.keyword.empty()) Fail("range() takes no keyword arguments");
  const auto& p = a.positional;
  if (p.empty() || p.size() > 3) Fail("range expected at most 3 arguments");
  int64_t start = 0, stop, step = 1;
  if (p.size() == 1) {
    stop = IntArg(p[0], "range");
  } else {
    start = IntArg(p[0], "range");
    stop = IntArg(p[1], "range");
    if (p.size() == 3) step = IntArg(p[2], "range");
  }
  if (step == 0) Fail("range() arg 3 must not be zero");
  // The sandbox's MAX_RANGE.
  const long double n = step > 0 ? std::ceil((static_cast<long double>(stop) - start) / step)
                                 : std::ceil((static_cast<long double>(start) - stop) / -step);
  if (n > 100000) {
    Fail("Range too big. The sandbox blocks ranges larger than MAX_RANGE (100000).");
  }
  std::vector<Value> items;
  for (int64_t i = start; step > 0 ? i < stop : i > stop; i += step) items.push_back(Value::Int(i));
  in.Charge(static_cast<int64_t>(items.size()));
  return Value::List(std::move(items));
}

// dict(mapping_or_pairs, **kwargs) as (key, value) pairs.
std::vector<std::pair<Value, Value>> DictArgs(CallArgs& a, const char* name) {
  std::vector<std::pair<Value, Value>> items;
  auto put = [&items](Value k, Value v) {
    for (auto& [ek, ev] : items) {
      if (Equals(ek, k)) {
        ev = std::move(v);
        return;
      }
    }
    items.emplace_back(std::move(k), std::move(v));
  };
  if (a.positional.size() > 1) Fail(absl::StrCat(name, " expected at most 1 argument"));
  if (a.positional.size() == 1) {
    const Value& m = a.positional[0];
    if (m.is_dict()) {
      for (const auto& [k, v] : m.dict().items) put(k, v);
    } else {
      for (const Value& pair : Iterate(m)) {
        const std::vector<Value> kv = Iterate(pair);
        if (kv.size() != 2) Fail("dictionary update sequence element has wrong length");
        put(kv[0], kv[1]);
      }
    }
  }
  for (auto& [k, v] : a.keyword) put(Value::String(k), v);
  return items;
}

Value GlobalNamespace(Interpreter&, CallArgs& a) {
  Value ns = Value::NewNamespace();
  for (auto& [k, v] : DictArgs(a, "namespace")) {
    ns.ns().attrs.emplace_back(ToStr(k), std::move(v));
  }
  return ns;
}

Value GlobalDict(Interpreter&, CallArgs& a) { return Value::Dict(DictArgs(a, "dict")); }

Value GlobalRaise(Interpreter&, CallArgs& a) {
  BoundArgs b(a, "raise_exception", {"message"});
  throw TemplateError{0, ToStr(b.Get(0, Value::String(""))), true};
}

Value GlobalStrftimeNow(Interpreter& in, CallArgs& a) {
  BoundArgs b(a, "strftime_now", {"format"});
  const std::string& fmt = StrArg(b.Get(0), "strftime format");
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  localtime_r(&now, &tm);
  if (fmt.empty()) return Value::String("");
  std::string buf(fmt.size() * 4 + 64, '\0');
  while (true) {
    const size_t n = std::strftime(buf.data(), buf.size(), fmt.c_str(), &tm);
    if (n > 0 || buf.size() > (1u << 16)) {
      buf.resize(n);
      break;
    }
    buf.resize(buf.size() * 4);
  }
  in.CheckSize(buf.size());
  return Value::String(std::move(buf));
}

// ---- tests ----

Value Arg0(CallArgs& a, const char* test) {
  BoundArgs b(a, test, {"other"});
  return b.Get(0, Value::Undefined(absl::StrCat("test '", test, "' needs an argument")));
}

bool TestDefined(Interpreter&, const Value& v, CallArgs&) { return !v.is_undefined(); }
bool TestUndefined(Interpreter&, const Value& v, CallArgs&) { return v.is_undefined(); }
bool TestNone(Interpreter&, const Value& v, CallArgs&) { return v.is_none(); }
bool TestBoolean(Interpreter&, const Value& v, CallArgs&) { return v.is_bool(); }
bool TestTrue(Interpreter&, const Value& v, CallArgs&) { return v.is_bool() && v.as_bool(); }
bool TestFalse(Interpreter&, const Value& v, CallArgs&) { return v.is_bool() && !v.as_bool(); }
bool TestInteger(Interpreter&, const Value& v, CallArgs&) { return v.is_int(); }
bool TestFloat(Interpreter&, const Value& v, CallArgs&) { return v.is_float(); }
bool TestNumber(Interpreter&, const Value& v, CallArgs&) { return v.is_number(); }
bool TestString(Interpreter&, const Value& v, CallArgs&) { return v.is_string(); }
bool TestMapping(Interpreter&, const Value& v, CallArgs&) { return v.is_dict(); }
bool TestIterable(Interpreter&, const Value& v, CallArgs&) {
  return v.is_string() || v.is_list() || v.is_dict() || v.is_undefined();
}
bool TestSequence(Interpreter&, const Value& v, CallArgs&) {
  return v.is_string() || v.is_list() || v.is_dict() || v.is_undefined();
}
bool TestCallable(Interpreter&, const Value& v, CallArgs&) { return v.is_callable(); }
int64_t IntOperand(const Value& v) {
  if (v.is_undefined()) Fail(v.undefined_hint());
  if (!v.is_integral()) {
    if (v.is_float()) Fail("unsupported: odd/even/divisibleby of a float");
    Fail(absl::StrCat("unsupported operand type(s) for %: '", v.TypeName(), "' and 'int'"));
  }
  return v.as_int();
}
bool TestOdd(Interpreter&, const Value& v, CallArgs&) { return IntOperand(v) % 2 != 0; }
bool TestEven(Interpreter&, const Value& v, CallArgs&) { return IntOperand(v) % 2 == 0; }
bool TestDivisibleBy(Interpreter&, const Value& v, CallArgs& a) {
  BoundArgs b(a, "divisibleby", {"num"});
  const int64_t d = IntOperand(b.Get(0));
  if (d == 0) Fail("integer division or modulo by zero");
  if (d == -1) return true;
  return IntOperand(v) % d == 0;
}
bool TestEq(Interpreter&, const Value& v, CallArgs& a) { return Equals(v, Arg0(a, "eq")); }
bool TestNe(Interpreter&, const Value& v, CallArgs& a) { return !Equals(v, Arg0(a, "ne")); }
bool TestLt(Interpreter&, const Value& v, CallArgs& a) { return Less(v, Arg0(a, "lt")); }
bool TestGt(Interpreter&, const Value& v, CallArgs& a) { return Less(Arg0(a, "gt"), v); }
bool TestLe(Interpreter&, const Value& v, CallArgs& a) {
  const Value o = Arg0(a, "le");
  return Less(v, o) || Equals(v, o);
}
bool TestGe(Interpreter&, const Value& v, CallArgs& a) {
  const Value o = Arg0(a, "ge");
  return Less(o, v) || Equals(v, o);
}
bool TestIn(Interpreter&, const Value& v, CallArgs& a) {
  BoundArgs b(a, "in", {"seq"});
  return Contains(b.Get(0), v);
}
bool TestSameAs(Interpreter&, const Value& v, CallArgs& a) {
  const Value o = Arg0(a, "sameas");
  if (v.kind() != o.kind()) return false;
  if (v.is_none() || v.is_bool() || v.is_int()) return Equals(v, o);
  if (v.is_namespace() || v.is_callable()) return Equals(v, o);
  return false;
}
bool TestLower(Interpreter&, const Value& v, CallArgs&) {
  const std::string s = ToStr(v);
  return pystr::Lower(s) == s;
}
bool TestUpper(Interpreter&, const Value& v, CallArgs&) {
  const std::string s = ToStr(v);
  return pystr::Upper(s) == s;
}
bool TestFilter(Interpreter&, const Value& v, CallArgs&) {
  return v.is_string() && FindFilter(v.str()) != nullptr;
}
bool TestTest(Interpreter&, const Value& v, CallArgs&) {
  return v.is_string() && FindTest(v.str()) != nullptr;
}
bool TestEscaped(Interpreter&, const Value&, CallArgs&) { return false; }

struct TestEntry {
  const char* name;
  TestFn fn;
};
constexpr TestEntry kTests[] = {
    {"defined", TestDefined},
    {"undefined", TestUndefined},
    {"none", TestNone},
    {"boolean", TestBoolean},
    {"true", TestTrue},
    {"false", TestFalse},
    {"integer", TestInteger},
    {"float", TestFloat},
    {"number", TestNumber},
    {"string", TestString},
    {"mapping", TestMapping},
    {"iterable", TestIterable},
    {"sequence", TestSequence},
    {"callable", TestCallable},
    {"odd", TestOdd},
    {"even", TestEven},
    {"divisibleby", TestDivisibleBy},
    {"eq", TestEq},
    {"equalto", TestEq},
    {"==", TestEq},
    {"ne", TestNe},
    {"!=", TestNe},
    {"lt", TestLt},
    {"lessthan", TestLt},
    {"<", TestLt},
    {"gt", TestGt},
    {"greaterthan", TestGt},
    {">", TestGt},
    {"le", TestLe},
    {"<=", TestLe},
    {"ge", TestGe},
    {">=", TestGe},
    {"in", TestIn},
    {"sameas", TestSameAs},
    {"lower", TestLower},
    {"upper", TestUpper},
    {"filter", TestFilter},
    {"test", TestTest},
    {"escaped", TestEscaped},
};

}  // namespace

TestFn FindTest(std::string_view name) {
  for (const TestEntry& e : kTests) {
    if (name == e.name) return e.fn;
  }
  return nullptr;
}

Value FindGlobal(std::string_view name) {
  if (name == "range") return Value::Function("range", GlobalRange);
  if (name == "namespace") return Value::Function("namespace", GlobalNamespace);
  if (name == "dict") return Value::Function("dict", GlobalDict);
  if (name == "raise_exception") return Value::Function("raise_exception", GlobalRaise);
  if (name == "strftime_now") return Value::Function("strftime_now", GlobalStrftimeNow);
  return Value();
}

Value FindMethod(const Value& obj, std::string_view name) {
  Method fn = nullptr;
  if (obj.is_string()) {
    fn = Lookup(kStrMethods, name);
  } else if (obj.is_dict()) {
    fn = Lookup(kDictMethods, name);
  } else if (obj.is_list()) {
    fn = Lookup(kListMethods, name);
  }
  if (fn == nullptr) return Value();
  return Value::Function(std::string(name),
                         [fn, obj](Interpreter& in, CallArgs& args) { return fn(in, obj, args); });
}

Value GetAttr(const Value& obj, const std::string& name) {
  if (obj.is_undefined()) Fail(obj.undefined_hint());
  if (!name.empty() && name[0] == '_') return NoAttribute(obj, name);
  Value m = FindMethod(obj, name);
  if (!m.is_undefined()) return m;
  if (obj.is_dict()) {
    if (const Value* v = obj.dict().Find(Value::String(name))) return *v;
  } else if (obj.is_namespace()) {
    if (const Value* v = obj.ns().Find(name)) return *v;
  }
  return NoAttribute(obj, name);
}

Value GetItem(const Value& obj, const Value& key) {
  if (obj.is_undefined()) Fail(obj.undefined_hint());
  if (obj.is_dict()) {
    if (const Value* v = obj.dict().Find(key)) return *v;
  } else if ((obj.is_list() || obj.is_string()) && key.is_integral()) {
    int64_t i = key.as_int();
    if (obj.is_list()) {
      const int64_t n = static_cast<int64_t>(obj.items().size());
      if (i < 0) i += n;
      if (i >= 0 && i < n) return obj.items()[static_cast<size_t>(i)];
    } else {
      const std::u32string cps = pystr::Decode(obj.str());
      const int64_t n = static_cast<int64_t>(cps.size());
      if (i < 0) i += n;
      if (i >= 0 && i < n)
        return Value::String(pystr::Encode(cps.substr(static_cast<size_t>(i), 1)));
    }
  } else if (obj.is_namespace() && key.is_string()) {
    if (const Value* v = obj.ns().Find(key.str())) return *v;
  }
  if (key.is_string()) {
    if (!key.str().empty() && key.str()[0] != '_') {
      Value m = FindMethod(obj, key.str());
      if (!m.is_undefined()) return m;
    }
    return NoAttribute(obj, key.str());
  }
  return NoElement(obj, key);
}

Value GetAttrPath(const Value& obj, const Value& attribute) {
  if (!attribute.is_string()) return GetItem(obj, attribute);
  Value v = obj;
  const std::string& path = attribute.str();
  size_t start = 0;
  while (true) {
    const size_t dot = path.find('.', start);
    const std::string part =
        path.substr(start, dot == std::string::npos ? std::string::npos : dot - start);
    const bool digits = !part.empty() && std::all_of(part.begin(), part.end(), ::isdigit);
    v = digits && part.size() < 18 ? GetItem(v, Value::Int(std::stoll(part)))
                                   : GetItem(v, Value::String(part));
    if (dot == std::string::npos) break;
    start = dot + 1;
  }
  return v;
}

}  // namespace attnres::jinja
