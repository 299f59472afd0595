// Binding a call's arguments to named parameters, shared by the filters, tests, globals and
// methods in builtins.cc and filters.cc. Internal to models/jinja.
#pragma once

#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "models/jinja/value.h"

namespace attnres::jinja {

class BoundArgs {
 public:
  // Binds positional arguments to `names` in order, then keywords by name; an unknown keyword or
  // too many positional arguments is an error naming `callee`.
  BoundArgs(const CallArgs& args, absl::string_view callee,
            std::initializer_list<const char*> names)
      : values_(names.size()) {
    std::vector<std::string> n(names.begin(), names.end());
    if (args.positional.size() > n.size()) {
      Fail(absl::StrCat(callee, "() takes at most ", n.size(), " argument(s) (",
                        args.positional.size(), " given)"));
    }
    for (size_t i = 0; i < args.positional.size(); ++i) values_[i] = args.positional[i];
    for (const auto& [k, v] : args.keyword) {
      size_t i = 0;
      while (i < n.size() && n[i] != k) ++i;
      if (i == n.size()) {
        Fail(absl::StrCat(callee, "() got an unexpected keyword argument '", k, "'"));
      }
      if (values_[i]) Fail(absl::StrCat(callee, "() got multiple values for argument '", k, "'"));
      values_[i] = v;
    }
  }
  bool Has(size_t i) const { return values_[i].has_value(); }
  Value Get(size_t i, Value fallback) const { return values_[i] ? *values_[i] : fallback; }
  Value Get(size_t i) const { return values_[i] ? *values_[i] : Value::None(); }

 private:
  std::vector<std::optional<Value>> values_;
};

// An int argument (bool counts, as in Python).
inline int64_t IntArg(const Value& v, absl::string_view what) {
  if (v.is_integral()) return v.as_int();
  if (v.is_undefined()) Fail(v.undefined_hint());
  Fail(
      absl::StrCat("'", v.TypeName(), "' object cannot be interpreted as an integer (", what, ")"));
}

inline const std::string& StrArg(const Value& v, absl::string_view what) {
  if (v.is_string()) return v.str();
  if (v.is_undefined()) Fail(v.undefined_hint());
  Fail(absl::StrCat(what, " must be str, not ", v.TypeName()));
}

// jinja2's make_attrgetter: "a.b.0" looks up each part with getitem (digits as ints).
Value GetAttrPath(const Value& obj, const Value& attribute);

}  // namespace attnres::jinja
