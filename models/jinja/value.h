// The Jinja renderer's values with Python semantics: Undefined (jinja2's default Undefined),
// None, bool, int, float, str, list/tuple, dict (insertion-ordered), namespace and callables
// (macros, globals, bound methods). Owns what every operator shares: str()/repr() text,
// truthiness, equality and ordering, json.dumps, conversion from JSON, and the error type that
// every part of the renderer throws. Values are immutable except a namespace's attributes
// (ImmutableSandboxedEnvironment forbids changing lists and dicts), so copies share storage.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "nlohmann/json.hpp"

namespace attnres::jinja {

// Thrown by every piece of the renderer; the public API turns it into a Status. line 0: not yet
// known (the interpreter fills in the line of the node being evaluated).
struct TemplateError {
  int line = 0;
  std::string message;
  bool is_raise = false;  // from raise_exception(): message is the template's own
};
[[noreturn]] void Fail(std::string message);

// Nesting limit of lists and dicts (bounds every recursive walk of a value).
inline constexpr int kMaxValueDepth = 200;

class Value;
class Interpreter;

struct ListData {
  std::vector<Value> items;
  bool is_tuple = false;
};
struct DictData {
  std::vector<std::pair<Value, Value>> items;
  const Value* Find(const Value& key) const;
};
struct Namespace {
  std::vector<std::pair<std::string, Value>> attrs;
  Value* Find(std::string_view name);
};
struct CallArgs {
  std::vector<Value> positional;
  std::vector<std::pair<std::string, Value>> keyword;
};
struct Callable {
  std::string name;
  std::function<Value(Interpreter&, CallArgs&)> fn;
};

class Value {
 public:
  enum class Kind : uint8_t {
    kUndefined,
    kNone,
    kBool,
    kInt,
    kFloat,
    kString,
    kList,
    kDict,
    kNamespace,
    kCallable
  };

  Value() = default;  // Undefined
  static Value Undefined(std::string hint);
  static Value None();
  static Value Bool(bool b);
  static Value Int(int64_t i);
  static Value Float(double f);
  static Value String(std::string s);
  static Value List(std::vector<Value> items, bool is_tuple = false);
  static Value Dict(std::vector<std::pair<Value, Value>> items);
  static Value NewNamespace();
  static Value Function(std::string name, std::function<Value(Interpreter&, CallArgs&)> fn);
  // From JSON (objects keep their order); errors past kMaxValueDepth.
  static Value FromJson(const nlohmann::ordered_json& j, int depth = 0);

  Kind kind() const { return kind_; }
  bool is_undefined() const { return kind_ == Kind::kUndefined; }
  bool is_none() const { return kind_ == Kind::kNone; }
  bool is_bool() const { return kind_ == Kind::kBool; }
  bool is_int() const { return kind_ == Kind::kInt; }  // not bool
  bool is_integral() const { return kind_ == Kind::kInt || kind_ == Kind::kBool; }
  bool is_float() const { return kind_ == Kind::kFloat; }
  bool is_number() const { return is_integral() || is_float(); }
  bool is_string() const { return kind_ == Kind::kString; }
  bool is_list() const { return kind_ == Kind::kList; }  // list or tuple
  bool is_tuple() const { return kind_ == Kind::kList && list_->is_tuple; }
  bool is_dict() const { return kind_ == Kind::kDict; }
  bool is_namespace() const { return kind_ == Kind::kNamespace; }
  bool is_callable() const { return kind_ == Kind::kCallable; }

  bool as_bool() const { return b_; }
  int64_t as_int() const { return i_; }  // int or bool
  double as_double() const { return is_float() ? f_ : static_cast<double>(i_); }
  const std::string& str() const { return *s_; }
  const std::vector<Value>& items() const { return list_->items; }
  const DictData& dict() const { return *dict_; }
  Namespace& ns() const { return *ns_; }
  const Callable& callable() const { return *fn_; }
  // The reason an Undefined is undefined, as jinja2 words it ("'x' is undefined").
  const std::string& undefined_hint() const { return *s_; }
  int depth() const { return depth_; }

  // Python truthiness.
  bool Truthy() const;
  // Python type name for error messages: NoneType, bool, int, float, str, list, tuple, dict, ...
  std::string TypeName() const;

 private:
  Kind kind_ = Kind::kUndefined;
  uint8_t depth_ = 0;  // nesting of lists/dicts inside this value
  bool b_ = false;
  int64_t i_ = 0;
  double f_ = 0;
  std::shared_ptr<const std::string> s_;  // string, or an Undefined's hint
  std::shared_ptr<const ListData> list_;
  std::shared_ptr<const DictData> dict_;
  std::shared_ptr<Namespace> ns_;
  std::shared_ptr<const Callable> fn_;
};

// Python str(): strings raw, Undefined empty, everything else as repr.
std::string ToStr(const Value& v);
void AppendStr(const Value& v, std::string* out);
// Python repr().
void AppendRepr(const Value& v, std::string* out);
// Python float repr (1.0, 0.1, 1e-05, inf, nan).
std::string FloatRepr(double d);

// Python ==.
bool Equals(const Value& a, const Value& b);
// Python a < b; throws TypeError-like errors for unordered types.
bool Less(const Value& a, const Value& b);
// Python `needle in haystack`.
bool Contains(const Value& haystack, const Value& needle);
// Iterates as Python would (list, tuple, dict keys, str characters, Undefined empty); throws for
// the rest.
std::vector<Value> Iterate(const Value& v);
// Python len(); throws for unsized values.
int64_t Len(const Value& v);

struct JsonOptions {
  std::optional<std::string> indent;  // per level; nullopt: one line
  std::string item_separator = ", ";
  std::string key_separator = ": ";
  bool sort_keys = false;
};
// json.dumps(v, ensure_ascii=False, ...); throws for values JSON cannot hold.
void AppendJson(const Value& v, const JsonOptions& options, std::string* out);

}  // namespace attnres::jinja
