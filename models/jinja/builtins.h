// What templates can call without defining it: filters, tests, the globals (range, namespace,
// dict, raise_exception, strftime_now) and the methods of str, dict and list values. Each follows
// jinja2 3.1 (with transformers' tojson) and Python's builtins.
#pragma once

#include <string_view>

#include "models/jinja/value.h"

namespace attnres::jinja {

using FilterFn = Value (*)(Interpreter&, const Value& input, CallArgs& args);
using TestFn = bool (*)(Interpreter&, const Value& input, CallArgs& args);

// nullptr when there is no such filter/test.
FilterFn FindFilter(std::string_view name);
TestFn FindTest(std::string_view name);
// A global function, or Undefined.
Value FindGlobal(std::string_view name);
// `obj.name` where obj is a str, dict, list or tuple and name one of its methods; else Undefined.
Value FindMethod(const Value& obj, std::string_view name);

// jinja2's environment.getattr / getitem (sandboxed): missing entries give Undefined with
// jinja2's hint; attributes and items of an Undefined raise.
Value GetAttr(const Value& obj, const std::string& name);
Value GetItem(const Value& obj, const Value& key);

}  // namespace attnres::jinja
