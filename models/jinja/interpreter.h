// Renders a parsed template: walks the statement tree with jinja2's scoping (a for loop's body
// and a macro, block set, filter block, with or generation body each get their own scope; if
// does not), Python's operators, and the render limits (output size, evaluation steps, macro
// depth). One Interpreter per render; the Template it reads is shared and never changed.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "models/jinja/ast.h"
#include "models/jinja/limits.h"
#include "models/jinja/parser.h"
#include "models/jinja/value.h"

namespace attnres::jinja {

class Interpreter {
 public:
  Interpreter(std::shared_ptr<const Template> tmpl, Value context, const Limits& limits);

  // Throws TemplateError with its line filled in.
  std::string Render();

  // For the built-ins:
  void Charge(int64_t steps);          // counts work against max_steps
  void CheckSize(size_t bytes) const;  // a value about to be built of this size
  Value Call(const Value& callee, CallArgs& args);
  int line() const { return line_; }

 private:
  struct Scope {
    std::shared_ptr<Scope> parent;
    std::vector<std::pair<std::string, Value>> vars;
    const Value* Find(const std::string& name) const;
    void Set(const std::string& name, Value v);
  };
  using ScopePtr = std::shared_ptr<Scope>;
  enum class Flow { kNormal, kBreak, kContinue };

  Flow ExecBody(const Body& body, const ScopePtr& scope);
  Flow Exec(const Stmt& s, const ScopePtr& scope);
  void ExecFor(const Stmt& s, const ScopePtr& scope, Flow* flow);
  std::string Capture(const Body& body, const ScopePtr& scope);
  Value ApplyBlockFilters(const Expr& chain, const ScopePtr& scope, std::string text);
  void Assign(const Target& t, const Value& v, Scope& scope);
  Value CallMacro(const Stmt& m, const ScopePtr& defined_in, CallArgs& args);
  void Emit(std::string_view text);

  Value Eval(const Expr& e, const ScopePtr& scope);
  Value Lookup(const std::string& name, const Scope& scope) const;
  CallArgs EvalArgs(const Expr& e, size_t first, const ScopePtr& scope);
  Value Binary(const std::string& op, const Value& a, const Value& b);
  Value Slice(const Value& obj, const Value& start, const Value& stop, const Value& step);

  std::shared_ptr<const Template> tmpl_;
  Limits limits_;
  ScopePtr root_;
  std::string* out_ = nullptr;
  const Value* block_input_ = nullptr;  // the text a filter block or block set pipes
  int64_t steps_ = 0;
  int macro_depth_ = 0;
  int line_ = 0;
};

// Python's + (numbers, str, list, tuple); used by the sum filter too.
Value PyAdd(Interpreter& in, const Value& a, const Value& b);

}  // namespace attnres::jinja
