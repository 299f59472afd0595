// The tree-walking renderer (see interpreter.h).
#include "models/jinja/interpreter.h"

#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "models/jinja/builtins.h"
#include "models/jinja/py_string.h"

namespace attnres::jinja {
namespace {

[[noreturn]] void FailUndefined(const Value& v) { Fail(v.undefined_hint()); }

[[noreturn]] void Unsupported(const char* op, const Value& a, const Value& b) {
  if (a.is_undefined()) FailUndefined(a);
  if (b.is_undefined()) FailUndefined(b);
  Fail(absl::StrCat("unsupported operand type(s) for ", op, ": '", a.TypeName(), "' and '",
                    b.TypeName(), "'"));
}

// Python's float divmod (Objects/floatobject.c).
std::pair<double, double> FloatDivMod(double vx, double wx) {
  double mod = std::fmod(vx, wx);
  double div = (vx - mod) / wx;
  if (mod != 0) {
    if ((wx < 0) != (mod < 0)) {
      mod += wx;
      div -= 1.0;
    }
  } else {
    mod = std::copysign(0.0, wx);
  }
  double floordiv;
  if (div != 0) {
    floordiv = std::floor(div);
    if (div - floordiv > 0.5) floordiv += 1.0;
  } else {
    floordiv = std::copysign(0.0, vx / wx);
  }
  return {floordiv, mod};
}

Value Repeat(Interpreter& in, const Value& seq, int64_t n) {
  if (n < 0) n = 0;
  if (seq.is_string()) {
    const size_t len = seq.str().size();
    if (len > 0)
      in.CheckSize(static_cast<size_t>(n) > (size_t{1} << 40) / len ? SIZE_MAX
                                                                    : len * static_cast<size_t>(n));
    in.Charge(static_cast<int64_t>(len) * n / 64);
    std::string out;
    out.reserve(len * static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) out += seq.str();
    return Value::String(std::move(out));
  }
  const size_t len = seq.items().size();
  if (len > 0)
    in.CheckSize(static_cast<size_t>(n) > (size_t{1} << 40) / len ? SIZE_MAX
                                                                  : len * static_cast<size_t>(n));
  in.Charge(static_cast<int64_t>(len) * n);
  std::vector<Value> out;
  for (int64_t i = 0; i < n; ++i) out.insert(out.end(), seq.items().begin(), seq.items().end());
  return Value::List(std::move(out), seq.is_tuple());
}

}  // namespace

Value PyAdd(Interpreter& in, const Value& a, const Value& b) {
  if (a.is_number() && b.is_number()) {
    if (a.is_integral() && b.is_integral()) {
      int64_t r = 0;
      if (__builtin_add_overflow(a.as_int(), b.as_int(), &r)) Fail("integer overflow");
      return Value::Int(r);
    }
    return Value::Float(a.as_double() + b.as_double());
  }
  if (a.is_string() && b.is_string()) {
    in.CheckSize(a.str().size() + b.str().size());
    in.Charge(static_cast<int64_t>((a.str().size() + b.str().size()) / 64));
    return Value::String(a.str() + b.str());
  }
  if (a.is_list() && b.is_list() && a.is_tuple() == b.is_tuple()) {
    in.CheckSize(a.items().size() + b.items().size());
    in.Charge(static_cast<int64_t>(a.items().size() + b.items().size()));
    std::vector<Value> items = a.items();
    items.insert(items.end(), b.items().begin(), b.items().end());
    return Value::List(std::move(items), a.is_tuple());
  }
  if (a.is_undefined()) FailUndefined(a);
  if (b.is_undefined()) FailUndefined(b);
  if (a.is_string() || a.is_list()) {
    Fail(absl::StrCat("can only concatenate ", a.TypeName(), " (not \"", b.TypeName(), "\") to ",
                      a.TypeName()));
  }
  Unsupported("+", a, b);
}

const Value* Interpreter::Scope::Find(const std::string& name) const {
  for (const auto& [k, v] : vars) {
    if (k == name) return &v;
  }
  return nullptr;
}

void Interpreter::Scope::Set(const std::string& name, Value v) {
  for (auto& [k, x] : vars) {
    if (k == name) {
      x = std::move(v);
      return;
    }
  }
  vars.emplace_back(name, std::move(v));
}

Interpreter::Interpreter(std::shared_ptr<const Template> tmpl, Value context, const Limits& limits)
    : tmpl_(std::move(tmpl)), limits_(limits), root_(std::make_shared<Scope>()) {
  if (context.is_dict()) {
    for (const auto& [k, v] : context.dict().items) {
      if (k.is_string()) root_->Set(k.str(), v);
    }
  }
}

std::string Interpreter::Render() {
  std::string out;
  out_ = &out;
  try {
    ExecBody(tmpl_->body, root_);
  } catch (TemplateError& e) {
    if (e.line == 0) e.line = line_;
    throw;
  }
  return out;
}

void Interpreter::Charge(int64_t steps) {
  steps_ += steps;
  if (steps_ > limits_.max_steps) {
    Fail(absl::StrCat("evaluation step limit (", limits_.max_steps, ") exceeded"));
  }
}

void Interpreter::CheckSize(size_t bytes) const {
  if (bytes > limits_.max_output_bytes) {
    Fail(absl::StrCat("size limit (", limits_.max_output_bytes, " bytes) exceeded"));
  }
}

void Interpreter::Emit(std::string_view text) {
  if (out_->size() + text.size() > limits_.max_output_bytes) {
    Fail(absl::StrCat("output size limit (", limits_.max_output_bytes, " bytes) exceeded"));
  }
  Charge(static_cast<int64_t>(text.size() / 64));
  out_->append(text);
}

Interpreter::Flow Interpreter::ExecBody(const Body& body, const ScopePtr& scope) {
  for (const StmtPtr& s : body) {
    const Flow f = Exec(*s, scope);
    if (f != Flow::kNormal) return f;
  }
  return Flow::kNormal;
}

std::string Interpreter::Capture(const Body& body, const ScopePtr& scope) {
  std::string buf;
  std::string* saved = out_;
  out_ = &buf;
  try {
    ExecBody(body, scope);
  } catch (...) {
    out_ = saved;
    throw;
  }
  out_ = saved;
  return buf;
}

Value Interpreter::ApplyBlockFilters(const Expr& chain, const ScopePtr& scope, std::string text) {
  const Value input = Value::String(std::move(text));
  const Value* saved = block_input_;
  block_input_ = &input;
  Value v;
  try {
    v = Eval(chain, scope);
  } catch (...) {
    block_input_ = saved;
    throw;
  }
  block_input_ = saved;
  return v;
}

Interpreter::Flow Interpreter::Exec(const Stmt& s, const ScopePtr& scope) {
  line_ = s.line;
  Charge(1);
  switch (s.kind) {
    case Stmt::Kind::kText:
      Emit(s.text);
      return Flow::kNormal;
    case Stmt::Kind::kPrint: {
      if (s.text == "print") {  // {% print a, b %}: each item printed
        for (const ExprPtr& item : s.exprs[0]->args) Emit(ToStr(Eval(*item, scope)));
        return Flow::kNormal;
      }
      const Value v = Eval(*s.exprs[0], scope);
      if (v.is_string()) {
        Emit(v.str());
      } else {
        Emit(ToStr(v));
      }
      return Flow::kNormal;
    }
    case Stmt::Kind::kIf:
      for (size_t i = 0; i < s.exprs.size(); ++i) {
        if (Eval(*s.exprs[i], scope).Truthy()) return ExecBody(s.bodies[i], scope);
      }
      return ExecBody(s.bodies.back(), scope);
    case Stmt::Kind::kFor: {
      Flow flow = Flow::kNormal;
      ExecFor(s, scope, &flow);
      return Flow::kNormal;
    }
    case Stmt::Kind::kSet:
      Assign(s.targets[0], Eval(*s.exprs[0], scope), *scope);
      return Flow::kNormal;
    case Stmt::Kind::kSetBlock: {
      auto inner = std::make_shared<Scope>();
      inner->parent = scope;
      std::string text = Capture(s.bodies[0], inner);
      Value v = s.exprs[0] ? ApplyBlockFilters(*s.exprs[0], scope, std::move(text))
                           : Value::String(std::move(text));
      line_ = s.line;
      Assign(s.targets[0], v, *scope);
      return Flow::kNormal;
    }
    case Stmt::Kind::kFilterBlock: {
      auto inner = std::make_shared<Scope>();
      inner->parent = scope;
      std::string text = Capture(s.bodies[0], inner);
      const Value v = ApplyBlockFilters(*s.exprs[0], scope, std::move(text));
      Emit(ToStr(v));
      return Flow::kNormal;
    }
    case Stmt::Kind::kMacro: {
      const Stmt* macro = &s;
      std::weak_ptr<Scope> defined_in = scope;
      scope->Set(s.text,
                 Value::Function(s.text, [macro, defined_in](Interpreter& in, CallArgs& args) {
                   ScopePtr where = defined_in.lock();
                   if (!where) Fail(absl::StrCat("macro '", macro->text, "' outlived its scope"));
                   return in.CallMacro(*macro, where, args);
                 }));
      return Flow::kNormal;
    }
    case Stmt::Kind::kBreak:
      return Flow::kBreak;
    case Stmt::Kind::kContinue:
      return Flow::kContinue;
    case Stmt::Kind::kScope: {
      auto inner = std::make_shared<Scope>();
      inner->parent = scope;
      std::vector<Value> values;
      for (const ExprPtr& e : s.exprs) values.push_back(Eval(*e, scope));
      for (size_t i = 0; i < values.size(); ++i) Assign(s.targets[i], values[i], *inner);
      // A generation/with body's break or continue would be a syntax error in jinja2's output
      // only outside loops; inside one it acts on that loop.
      return ExecBody(s.bodies[0], inner);
    }
  }
  return Flow::kNormal;
}

void Interpreter::ExecFor(const Stmt& s, const ScopePtr& scope, Flow* flow) {
  const Value iterable = Eval(*s.exprs[0], scope);
  std::vector<Value> items = Iterate(iterable);
  Charge(static_cast<int64_t>(items.size()));
  if (s.exprs[1]) {
    std::vector<Value> kept;
    for (Value& item : items) {
      auto probe = std::make_shared<Scope>();
      probe->parent = scope;
      Assign(s.targets[0], item, *probe);
      if (Eval(*s.exprs[1], probe).Truthy()) kept.push_back(std::move(item));
    }
    items = std::move(kept);
  }
  if (items.empty()) {
    auto inner = std::make_shared<Scope>();
    inner->parent = scope;
    ExecBody(s.bodies[1], inner);
    return;
  }
  const int64_t n = static_cast<int64_t>(items.size());
  for (int64_t i = 0; i < n; ++i) {
    line_ = s.line;
    Charge(4);  // an iteration's bookkeeping (scope, loop object) costs about four evaluations
    auto inner = std::make_shared<Scope>();
    inner->parent = scope;
    Assign(s.targets[0], items[static_cast<size_t>(i)], *inner);
    // The loop object, as a dict; its keys are shared, immutable strings.
    static const Value* const kKeys = new Value[12]{
        Value::String("index"),     Value::String("index0"),   Value::String("revindex"),
        Value::String("revindex0"), Value::String("first"),    Value::String("last"),
        Value::String("length"),    Value::String("depth"),    Value::String("depth0"),
        Value::String("previtem"),  Value::String("nextitem"), Value::String("cycle")};
    const Value values[12] = {
        Value::Int(i + 1),
        Value::Int(i),
        Value::Int(n - i),
        Value::Int(n - i - 1),
        Value::Bool(i == 0),
        Value::Bool(i == n - 1),
        Value::Int(n),
        Value::Int(1),
        Value::Int(0),
        i > 0 ? items[static_cast<size_t>(i - 1)] : Value::Undefined("there is no previous item"),
        i + 1 < n ? items[static_cast<size_t>(i + 1)] : Value::Undefined("there is no next item"),
        Value::Function("cycle",
                        [i](Interpreter&, CallArgs& args) {
                          if (args.positional.empty()) Fail("no items for cycling given");
                          return args.positional[static_cast<size_t>(i) % args.positional.size()];
                        }),
    };
    std::vector<std::pair<Value, Value>> loop;
    loop.reserve(12);
    for (int k = 0; k < 12; ++k) loop.emplace_back(kKeys[k], values[k]);
    inner->Set("loop", Value::Dict(std::move(loop)));
    const Flow f = ExecBody(s.bodies[0], inner);
    if (f == Flow::kBreak) break;
  }
  *flow = Flow::kNormal;
}

void Interpreter::Assign(const Target& t, const Value& v, Scope& scope) {
  switch (t.kind) {
    case Target::Kind::kName:
      scope.Set(t.name, v);
      return;
    case Target::Kind::kTuple: {
      const std::vector<Value> items = Iterate(v);
      if (items.size() > t.elements.size()) {
        Fail(absl::StrCat("too many values to unpack (expected ", t.elements.size(), ")"));
      }
      if (items.size() < t.elements.size()) {
        Fail(absl::StrCat("not enough values to unpack (expected ", t.elements.size(), ", got ",
                          items.size(), ")"));
      }
      for (size_t i = 0; i < items.size(); ++i) Assign(t.elements[i], items[i], scope);
      return;
    }
    case Target::Kind::kNamespaceAttr: {
      const Value ns = Lookup(t.name, scope);
      if (!ns.is_namespace()) Fail("cannot assign attribute on non-namespace object");
      if (Value* slot = ns.ns().Find(t.attr)) {
        *slot = v;
      } else {
        ns.ns().attrs.emplace_back(t.attr, v);
      }
      return;
    }
  }
}

Value Interpreter::CallMacro(const Stmt& m, const ScopePtr& defined_in, CallArgs& args) {
  if (macro_depth_ >= limits_.max_macro_depth) {
    Fail(absl::StrCat("macro recursion depth limit (", limits_.max_macro_depth, ") exceeded"));
  }
  const size_t n = m.params.size();
  if (args.positional.size() > n) {
    Fail(absl::StrCat("macro '", m.text, "' takes not more than ", n, " argument(s)"));
  }
  auto scope = std::make_shared<Scope>();
  scope->parent = defined_in;
  std::vector<bool> bound(n, false);
  for (size_t i = 0; i < args.positional.size(); ++i) {
    scope->Set(m.params[i], args.positional[i]);
    bound[i] = true;
  }
  for (auto& [k, v] : args.keyword) {
    size_t i = 0;
    while (i < n && m.params[i] != k) ++i;
    if (i == n) Fail(absl::StrCat("macro '", m.text, "' takes no keyword argument '", k, "'"));
    if (bound[i]) {
      Fail(absl::StrCat("macro '", m.text, "' got multiple values for argument '", k, "'"));
    }
    scope->Set(k, v);
    bound[i] = true;
  }
  for (size_t i = 0; i < n; ++i) {
    if (bound[i]) continue;
    if (m.exprs[i]) {
      scope->Set(m.params[i], Eval(*m.exprs[i], scope));
    } else {
      scope->Set(m.params[i],
                 Value::Undefined(absl::StrCat("parameter '", m.params[i], "' was not provided")));
    }
  }
  ++macro_depth_;
  std::string text;
  try {
    text = Capture(m.bodies[0], scope);
  } catch (...) {
    --macro_depth_;
    throw;
  }
  --macro_depth_;
  return Value::String(std::move(text));
}

Value Interpreter::Call(const Value& callee, CallArgs& args) {
  if (callee.is_callable()) return callee.callable().fn(*this, args);
  if (callee.is_undefined()) FailUndefined(callee);
  Fail(absl::StrCat("'", callee.TypeName(), "' object is not callable"));
}

Value Interpreter::Lookup(const std::string& name, const Scope& scope) const {
  for (const Scope* s = &scope; s != nullptr; s = s->parent.get()) {
    if (const Value* v = s->Find(name)) return *v;
  }
  Value g = FindGlobal(name);
  if (!g.is_undefined()) return g;
  return Value::Undefined(absl::StrCat("'", name, "' is undefined"));
}

CallArgs Interpreter::EvalArgs(const Expr& e, size_t first, const ScopePtr& scope) {
  CallArgs args;
  for (size_t i = first; i < e.args.size(); ++i) args.positional.push_back(Eval(*e.args[i], scope));
  for (const auto& [k, x] : e.kwargs) args.keyword.emplace_back(k, Eval(*x, scope));
  return args;
}

Value Interpreter::Eval(const Expr& e, const ScopePtr& scope) {
  line_ = e.line;
  Charge(1);
  switch (e.kind) {
    case Expr::Kind::kConst:
      return e.value;
    case Expr::Kind::kName:
      return Lookup(e.name, *scope);
    case Expr::Kind::kList:
    case Expr::Kind::kTuple: {
      std::vector<Value> items;
      items.reserve(e.args.size());
      for (const ExprPtr& a : e.args) items.push_back(Eval(*a, scope));
      return Value::List(std::move(items), e.kind == Expr::Kind::kTuple);
    }
    case Expr::Kind::kDict: {
      std::vector<std::pair<Value, Value>> items;
      for (size_t i = 0; i + 1 < e.args.size(); i += 2) {
        Value k = Eval(*e.args[i], scope);
        Value v = Eval(*e.args[i + 1], scope);
        if (k.is_list() && !k.is_tuple()) Fail("unhashable type: 'list'");
        if (k.is_dict()) Fail("unhashable type: 'dict'");
        bool replaced = false;
        for (auto& [ek, ev] : items) {
          if (Equals(ek, k)) {
            ev = v;
            replaced = true;
            break;
          }
        }
        if (!replaced) items.emplace_back(std::move(k), std::move(v));
      }
      return Value::Dict(std::move(items));
    }
    case Expr::Kind::kGetAttr: {
      const Value obj = Eval(*e.args[0], scope);
      line_ = e.line;
      return GetAttr(obj, e.name);
    }
    case Expr::Kind::kGetItem: {
      const Value obj = Eval(*e.args[0], scope);
      const Value key = Eval(*e.args[1], scope);
      line_ = e.line;
      return GetItem(obj, key);
    }
    case Expr::Kind::kSlice: {
      const Value obj = Eval(*e.args[0], scope);
      Value parts[3];
      for (int i = 0; i < 3; ++i) {
        parts[i] = e.args[i + 1] ? Eval(*e.args[i + 1], scope) : Value::None();
      }
      line_ = e.line;
      return Slice(obj, parts[0], parts[1], parts[2]);
    }
    case Expr::Kind::kCall: {
      const Value callee = Eval(*e.args[0], scope);
      CallArgs args = EvalArgs(e, 1, scope);
      line_ = e.line;
      return Call(callee, args);
    }
    case Expr::Kind::kFilter: {
      Value input;
      if (e.args[0]) {
        input = Eval(*e.args[0], scope);
      } else if (block_input_ != nullptr) {
        input = *block_input_;
      }
      CallArgs args = EvalArgs(e, 1, scope);
      line_ = e.line;
      return e.filter(*this, input, args);
    }
    case Expr::Kind::kTest: {
      const Value input = Eval(*e.args[0], scope);
      CallArgs args = EvalArgs(e, 1, scope);
      line_ = e.line;
      return Value::Bool(e.test(*this, input, args) != e.negated);
    }
    case Expr::Kind::kNeg:
    case Expr::Kind::kPos: {
      const Value v = Eval(*e.args[0], scope);
      const bool neg = e.kind == Expr::Kind::kNeg;
      if (v.is_integral()) {
        if (!neg) return Value::Int(v.as_int());
        if (v.as_int() == std::numeric_limits<int64_t>::min()) Fail("integer overflow");
        return Value::Int(-v.as_int());
      }
      if (v.is_float()) return Value::Float(neg ? -v.as_double() : v.as_double());
      if (v.is_undefined()) FailUndefined(v);
      Fail(absl::StrCat("bad operand type for unary ", neg ? "-" : "+", ": '", v.TypeName(), "'"));
    }
    case Expr::Kind::kNot:
      return Value::Bool(!Eval(*e.args[0], scope).Truthy());
    case Expr::Kind::kAnd: {
      Value a = Eval(*e.args[0], scope);
      if (!a.Truthy()) return a;
      return Eval(*e.args[1], scope);
    }
    case Expr::Kind::kOr: {
      Value a = Eval(*e.args[0], scope);
      if (a.Truthy()) return a;
      return Eval(*e.args[1], scope);
    }
    case Expr::Kind::kBinary: {
      const Value a = Eval(*e.args[0], scope);
      const Value b = Eval(*e.args[1], scope);
      line_ = e.line;
      return Binary(e.name, a, b);
    }
    case Expr::Kind::kCompare: {
      Value left = Eval(*e.args[0], scope);
      for (size_t i = 0; i < e.ops.size(); ++i) {
        Value right = Eval(*e.args[i + 1], scope);
        const std::string& op = e.ops[i];
        bool r;
        if (op == "==") {
          r = Equals(left, right);
        } else if (op == "!=") {
          r = !Equals(left, right);
        } else if (op == "<") {
          r = Less(left, right);
        } else if (op == ">") {
          r = Less(right, left);
        } else if (op == "<=") {
          r = Less(left, right) || Equals(left, right);
        } else if (op == ">=") {
          r = Less(right, left) || Equals(left, right);
        } else if (op == "in") {
          r = Contains(right, left);
        } else {
          r = !Contains(right, left);
        }
        if (!r) return Value::Bool(false);
        left = std::move(right);
      }
      return Value::Bool(true);
    }
    case Expr::Kind::kCondExpr: {
      if (Eval(*e.args[0], scope).Truthy()) return Eval(*e.args[1], scope);
      if (e.args[2]) return Eval(*e.args[2], scope);
      return Value::Undefined(absl::StrCat("the inline if-expression on line ", e.line,
                                           " evaluated to false and no else section was "
                                           "defined."));
    }
  }
  return Value();
}

Value Interpreter::Binary(const std::string& op, const Value& a, const Value& b) {
  if (op == "~") {
    std::string s = ToStr(a);
    AppendStr(b, &s);
    CheckSize(s.size());
    Charge(static_cast<int64_t>(s.size() / 64));
    return Value::String(std::move(s));
  }
  if (op == "+") return PyAdd(*this, a, b);
  if (op == "*") {
    if (a.is_number() && b.is_number()) {
      if (a.is_integral() && b.is_integral()) {
        int64_t r = 0;
        if (__builtin_mul_overflow(a.as_int(), b.as_int(), &r)) Fail("integer overflow");
        return Value::Int(r);
      }
      return Value::Float(a.as_double() * b.as_double());
    }
    if ((a.is_string() || a.is_list()) && b.is_integral()) return Repeat(*this, a, b.as_int());
    if ((b.is_string() || b.is_list()) && a.is_integral()) return Repeat(*this, b, a.as_int());
    if (a.is_string() && !b.is_undefined() && !b.is_integral()) {
      Fail(absl::StrCat("can't multiply sequence by non-int of type '", b.TypeName(), "'"));
    }
    Unsupported("*", a, b);
  }
  if (!a.is_number() || !b.is_number()) {
    if (op == "%" && a.is_string()) Fail("unsupported: printf-style string formatting");
    Unsupported(op.c_str(), a, b);
  }
  const bool ints = a.is_integral() && b.is_integral();
  if (op == "-") {
    if (ints) {
      int64_t r = 0;
      if (__builtin_sub_overflow(a.as_int(), b.as_int(), &r)) Fail("integer overflow");
      return Value::Int(r);
    }
    return Value::Float(a.as_double() - b.as_double());
  }
  if (op == "/") {
    if (b.as_double() == 0) Fail(ints ? "division by zero" : "float division by zero");
    return Value::Float(a.as_double() / b.as_double());
  }
  if (op == "//" || op == "%") {
    if (ints) {
      const int64_t x = a.as_int(), y = b.as_int();
      if (y == 0) Fail("integer division or modulo by zero");
      if (x == std::numeric_limits<int64_t>::min() && y == -1) {
        if (op == "%") return Value::Int(0);
        Fail("integer overflow");
      }
      int64_t q = x / y, r = x % y;
      if (r != 0 && ((r < 0) != (y < 0))) {
        q -= 1;
        r += y;
      }
      return Value::Int(op == "//" ? q : r);
    }
    if (b.as_double() == 0) Fail(op == "//" ? "float floor division by zero" : "float modulo");
    const auto [q, r] = FloatDivMod(a.as_double(), b.as_double());
    return Value::Float(op == "//" ? q : r);
  }
  if (op == "**") {
    if (ints && b.as_int() >= 0) {
      int64_t base = a.as_int(), exp = b.as_int(), r = 1;
      while (exp > 0) {
        if (exp & 1) {
          if (__builtin_mul_overflow(r, base, &r)) Fail("integer overflow");
        }
        exp >>= 1;
        if (exp > 0 && __builtin_mul_overflow(base, base, &base)) Fail("integer overflow");
      }
      return Value::Int(r);
    }
    const double x = a.as_double(), y = b.as_double();
    if (x == 0 && y < 0) Fail("0.0 cannot be raised to a negative power");
    const double r = std::pow(x, y);
    if (std::isnan(r) && !std::isnan(x) && !std::isnan(y)) {
      Fail("unsupported: a negative number raised to a fractional power");
    }
    return Value::Float(r);
  }
  Unsupported(op.c_str(), a, b);
}

Value Interpreter::Slice(const Value& obj, const Value& start, const Value& stop,
                         const Value& step) {
  if (obj.is_undefined()) FailUndefined(obj);
  for (const Value* p : {&start, &stop, &step}) {
    if (!p->is_none() && !p->is_integral()) {
      return Value::Undefined(absl::StrCat(obj.TypeName(), " object has no element slice"));
    }
  }
  if (!obj.is_string() && !obj.is_list()) {
    return Value::Undefined(absl::StrCat(obj.TypeName(), " object has no element slice"));
  }
  const int64_t st = step.is_none() ? 1 : step.as_int();
  if (st == 0) Fail("slice step cannot be zero");
  std::u32string cps;
  int64_t len;
  if (obj.is_string()) {
    cps = pystr::Decode(obj.str());
    len = static_cast<int64_t>(cps.size());
  } else {
    len = static_cast<int64_t>(obj.items().size());
  }
  // CPython's PySlice_AdjustIndices.
  auto adjust = [&](const Value& v, bool is_start) -> int64_t {
    if (v.is_none()) {
      if (st > 0) return is_start ? 0 : len;
      return is_start ? len - 1 : -1;
    }
    int64_t i = v.as_int();
    if (i < 0) {
      i += len;
      if (i < 0) i = st < 0 ? -1 : 0;
    } else if (i >= len) {
      i = st < 0 ? len - 1 : len;
    }
    return i;
  };
  const int64_t b = adjust(start, true);
  const int64_t e = adjust(stop, false);
  std::vector<int64_t> idx;
  if (st > 0) {
    for (int64_t i = b; i < e; i += st) idx.push_back(i);
  } else {
    for (int64_t i = b; i > e; i += st) idx.push_back(i);
  }
  Charge(static_cast<int64_t>(idx.size()) / 8);
  if (obj.is_string()) {
    std::string out;
    for (int64_t i : idx) pystr::AppendCodePoint(cps[static_cast<size_t>(i)], &out);
    return Value::String(std::move(out));
  }
  std::vector<Value> out;
  out.reserve(idx.size());
  for (int64_t i : idx) out.push_back(obj.items()[static_cast<size_t>(i)]);
  return Value::List(std::move(out), obj.is_tuple());
}

}  // namespace attnres::jinja
