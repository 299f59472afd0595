// The compiled form of a template: expression and statement trees as the parser builds them and
// the interpreter walks them. Immutable after parsing, so one tree serves concurrent renders.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "models/jinja/builtins.h"
#include "models/jinja/value.h"

namespace attnres::jinja {

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Expr {
  enum class Kind {
    kConst,     // value
    kName,      // name
    kList,      // args: elements
    kTuple,     // args: elements
    kDict,      // args: key, value, key, value, ...
    kGetAttr,   // args[0].name
    kGetItem,   // args[0][args[1]]
    kSlice,     // args[0][args[1]:args[2]:args[3]] (null where absent)
    kCall,      // args[0](args[1..], kwargs)
    kFilter,    // args[0] | name(args[1..], kwargs); args[0] null in filter blocks
    kTest,      // args[0] is name(args[1..], kwargs); negated: `is not`
    kNeg,       // -args[0]
    kPos,       // +args[0]
    kNot,       // not args[0]
    kBinary,    // args[0] name args[1]; name one of + - * / // % ** ~
    kAnd,       // args[0] and args[1]
    kOr,        // args[0] or args[1]
    kCompare,   // args[0] ops[0] args[1] ops[1] args[2] ...
    kCondExpr,  // args[1] if args[0] else args[2] (args[2] null: undefined)
  };
  Kind kind;
  int line = 0;
  Value value;
  std::string name;
  std::vector<ExprPtr> args;
  std::vector<std::pair<std::string, ExprPtr>> kwargs;
  std::vector<std::string> ops;
  bool negated = false;
  int depth = 1;  // nesting below and including this node (bounded by the parser)
  FilterFn filter = nullptr;
  TestFn test = nullptr;
};

// An assignment target: a name, a tuple of targets, or `ns.attr`.
struct Target {
  enum class Kind { kName, kTuple, kNamespaceAttr };
  Kind kind = Kind::kName;
  std::string name;
  std::string attr;
  std::vector<Target> elements;
};

struct Stmt;
using StmtPtr = std::unique_ptr<Stmt>;
using Body = std::vector<StmtPtr>;

struct Stmt {
  enum class Kind {
    kText,      // text
    kPrint,     // {{ exprs[0] }}
    kIf,        // exprs: conditions; bodies: one per condition, plus an else body
    kFor,       // targets[0] in exprs[0] [if exprs[1]]; bodies: loop body, else body
    kSet,       // targets[0] = exprs[0]
    kSetBlock,  // targets[0] = rendered bodies[0] piped through exprs (filters)
    kMacro,     // text: name; params with exprs as defaults (null: none); bodies[0]
    kBreak,
    kContinue,
    kScope,        // bodies[0] in its own scope ({% generation %}); with targets = exprs
    kFilterBlock,  // bodies[0] piped through exprs (filters)
  };
  Kind kind;
  int line = 0;
  std::string text;
  std::vector<ExprPtr> exprs;
  std::vector<Body> bodies;
  std::vector<Target> targets;
  std::vector<std::string> params;
};

}  // namespace attnres::jinja
