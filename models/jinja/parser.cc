// The Jinja parser (see parser.h); each Parse* method mirrors its namesake in jinja2/parser.py.
#include "models/jinja/parser.h"

#include <algorithm>
#include <initializer_list>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "models/jinja/lexer.h"

namespace attnres::jinja {
namespace {

// Nesting limits keep the recursive descent (and the interpreter's walk) off the stack's edge.
constexpr int kMaxExprDepth = 100;
constexpr int kMaxStmtDepth = 100;

using T = Token::Type;

class Parser {
 public:
  explicit Parser(std::vector<Token> tokens) : toks_(std::move(tokens)) {}

  std::shared_ptr<const Template> Run() {
    auto t = std::make_shared<Template>();
    t->body = Subparse({});
    if (Cur().type != T::kEof) Fail(Cur(), "unexpected tag");
    return t;
  }

 private:
  const Token& Cur() const { return toks_[pos_]; }
  const Token& Look() const { return toks_[std::min(pos_ + 1, toks_.size() - 1)]; }
  const Token& Next() {
    const Token& t = toks_[pos_];
    if (pos_ + 1 < toks_.size()) ++pos_;
    return t;
  }
  [[noreturn]] void Fail(const Token& at, std::string message) const {
    throw CompileError{at.line, at.column, std::move(message)};
  }
  bool IsOp(absl::string_view op) const { return Cur().type == T::kOp && Cur().text == op; }
  bool IsName(absl::string_view name) const { return Cur().type == T::kName && Cur().text == name; }
  bool SkipOp(absl::string_view op) {
    if (!IsOp(op)) return false;
    Next();
    return true;
  }
  bool SkipName(absl::string_view name) {
    if (!IsName(name)) return false;
    Next();
    return true;
  }
  const Token& ExpectOp(absl::string_view op) {
    if (!IsOp(op)) {
      Fail(Cur(), absl::StrCat("expected token '", op, "', got '", DescribeToken(Cur()), "'"));
    }
    return Next();
  }
  const Token& ExpectName() {
    if (Cur().type != T::kName) {
      Fail(Cur(), absl::StrCat("expected token 'name', got '", DescribeToken(Cur()), "'"));
    }
    return Next();
  }
  void ExpectName(absl::string_view name) {
    if (!IsName(name)) {
      Fail(Cur(), absl::StrCat("expected token '", name, "', got '", DescribeToken(Cur()), "'"));
    }
    Next();
  }
  void Expect(T type, absl::string_view what) {
    if (Cur().type != type) {
      Fail(Cur(), absl::StrCat("expected token '", what, "', got '", DescribeToken(Cur()), "'"));
    }
    Next();
  }
  void ExpectBlockEnd() { Expect(T::kBlockEnd, "end of statement block"); }

  ExprPtr Make(Expr::Kind kind, int line) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->line = line;
    return e;
  }

  // ---- statements ----

  // Parses template data and tags until `{% <one of end_names>`, leaving the name current.
  Body Subparse(std::initializer_list<absl::string_view> end_names) {
    if (++stmt_depth_ > kMaxStmtDepth) Fail(Cur(), "statements nested too deeply");
    Body body;
    while (Cur().type != T::kEof) {
      const Token& t = Cur();
      if (t.type == T::kData) {
        auto s = std::make_unique<Stmt>();
        s->kind = Stmt::Kind::kText;
        s->line = t.line;
        s->text = t.text;
        body.push_back(std::move(s));
        Next();
      } else if (t.type == T::kVarBegin) {
        Next();
        auto s = std::make_unique<Stmt>();
        s->kind = Stmt::Kind::kPrint;
        s->line = t.line;
        s->exprs.push_back(ParseTuple(false, true, {}, false));
        Expect(T::kVarEnd, "end of print statement");
        body.push_back(std::move(s));
      } else if (t.type == T::kBlockBegin) {
        Next();
        for (absl::string_view end : end_names) {
          if (IsName(end)) {
            --stmt_depth_;
            return body;
          }
        }
        body.push_back(ParseStatement());
        ExpectBlockEnd();
      } else {
        Fail(t, absl::StrCat("unexpected '", DescribeToken(t), "'"));
      }
    }
    if (end_names.size() > 0) {
      std::vector<std::string> names;
      for (absl::string_view n : end_names) names.push_back(absl::StrCat("'", n, "'"));
      Fail(Cur(), absl::StrCat("Unexpected end of template. Jinja was looking for the following "
                               "tags: ",
                               absl::StrJoin(names, " or "), "."));
    }
    --stmt_depth_;
    return body;
  }

  // parse_statements: `%}` body up to one of end_names (consumed when drop_needle).
  Body ParseStatements(std::initializer_list<absl::string_view> end_names, bool drop_needle) {
    SkipOp(":");
    ExpectBlockEnd();
    Body body = Subparse(end_names);
    if (drop_needle) Next();
    return body;
  }

  StmtPtr NewStmt(Stmt::Kind kind, int line) {
    auto s = std::make_unique<Stmt>();
    s->kind = kind;
    s->line = line;
    return s;
  }

  StmtPtr ParseStatement() {
    const Token& t = Cur();
    if (t.type != T::kName) Fail(t, "tag name expected");
    const std::string name = t.text;
    if (name == "for") return ParseFor();
    if (name == "if") return ParseIf();
    if (name == "set") return ParseSet();
    if (name == "macro") return ParseMacro();
    if (name == "filter") return ParseFilterBlock();
    if (name == "with") return ParseWith();
    if (name == "print") {
      Next();
      auto s = NewStmt(Stmt::Kind::kPrint, t.line);
      std::vector<ExprPtr> items;
      while (Cur().type != T::kBlockEnd) {
        if (!items.empty()) ExpectOp(",");
        items.push_back(ParseExpression(true));
      }
      // Each expression prints on its own (jinja2's Output node), so this is one kPrint per item.
      if (items.empty()) Fail(Cur(), "Expected an expression, got 'end of statement block'");
      auto tuple = Make(Expr::Kind::kList, t.line);
      tuple->args = std::move(items);
      s->exprs.push_back(Seal(std::move(tuple)));
      s->text = "print";
      return s;
    }
    if (name == "generation") {
      Next();
      auto s = NewStmt(Stmt::Kind::kScope, t.line);
      s->bodies.push_back(ParseStatements({"endgeneration"}, true));
      return s;
    }
    if (name == "break" || name == "continue") {
      if (loop_depth_ == 0) Fail(t, absl::StrCat("'", name, "' outside loop"));
      Next();
      return NewStmt(name == "break" ? Stmt::Kind::kBreak : Stmt::Kind::kContinue, t.line);
    }
    for (absl::string_view known :
         {"block", "extends", "include", "import", "from", "call", "autoescape", "do"}) {
      if (name == known) Fail(t, absl::StrCat("unsupported tag '", name, "'"));
    }
    Fail(t, absl::StrCat("Encountered unknown tag '", name, "'."));
  }

  StmtPtr ParseFor() {
    const int line = Next().line;
    auto s = NewStmt(Stmt::Kind::kFor, line);
    s->targets.push_back(ParseAssignTarget(true, false, {"in"}, false));
    ExpectName("in");
    s->exprs.push_back(ParseTuple(false, false, {"recursive"}, false));
    if (SkipName("if")) {
      s->exprs.push_back(ParseExpression(true));
    } else {
      s->exprs.push_back(nullptr);
    }
    if (IsName("recursive")) Fail(Cur(), "unsupported: recursive loops");
    ++loop_depth_;
    s->bodies.push_back(ParseStatements({"endfor", "else"}, false));
    --loop_depth_;
    if (Next().text == "endfor") {
      s->bodies.emplace_back();
    } else {
      s->bodies.push_back(ParseStatements({"endfor"}, true));
    }
    return s;
  }

  StmtPtr ParseIf() {
    const int line = Next().line;
    auto s = NewStmt(Stmt::Kind::kIf, line);
    while (true) {
      s->exprs.push_back(ParseTuple(false, false, {}, false));
      s->bodies.push_back(ParseStatements({"elif", "else", "endif"}, false));
      const std::string tag = Next().text;
      if (tag == "elif") continue;
      if (tag == "else") {
        s->bodies.push_back(ParseStatements({"endif"}, true));
      } else {
        s->bodies.emplace_back();
      }
      break;
    }
    return s;
  }

  StmtPtr ParseSet() {
    const int line = Next().line;
    Target target = ParseAssignTarget(true, false, {}, true);
    if (SkipOp("=")) {
      auto s = NewStmt(Stmt::Kind::kSet, line);
      s->targets.push_back(std::move(target));
      s->exprs.push_back(ParseTuple(false, true, {}, false));
      return s;
    }
    auto s = NewStmt(Stmt::Kind::kSetBlock, line);
    s->targets.push_back(std::move(target));
    s->exprs.push_back(ParseFilter(nullptr, false));
    s->bodies.push_back(ParseStatements({"endset"}, true));
    return s;
  }

  StmtPtr ParseMacro() {
    const int line = Next().line;
    auto s = NewStmt(Stmt::Kind::kMacro, line);
    s->text = ExpectName().text;
    ExpectOp("(");
    bool any_default = false;
    while (!IsOp(")")) {
      if (!s->params.empty()) ExpectOp(",");
      if (IsOp("*") || IsOp("**")) Fail(Cur(), "unsupported: *args in macro signatures");
      s->params.push_back(ExpectName().text);
      if (SkipOp("=")) {
        s->exprs.push_back(ParseExpression(true));
        any_default = true;
      } else {
        if (any_default) Fail(Cur(), "non-default argument follows default argument");
        s->exprs.push_back(nullptr);
      }
    }
    ExpectOp(")");
    const int saved_loops = loop_depth_;
    loop_depth_ = 0;
    s->bodies.push_back(ParseStatements({"endmacro"}, true));
    loop_depth_ = saved_loops;
    return s;
  }

  StmtPtr ParseFilterBlock() {
    const int line = Next().line;
    auto s = NewStmt(Stmt::Kind::kFilterBlock, line);
    s->exprs.push_back(ParseFilter(nullptr, true));
    s->bodies.push_back(ParseStatements({"endfilter"}, true));
    return s;
  }

  StmtPtr ParseWith() {
    const int line = Next().line;
    auto s = NewStmt(Stmt::Kind::kScope, line);
    while (Cur().type != T::kBlockEnd) {
      if (!s->targets.empty()) ExpectOp(",");
      s->targets.push_back(ParseAssignTarget(true, false, {}, false));
      ExpectOp("=");
      s->exprs.push_back(ParseExpression(true));
    }
    s->bodies.push_back(ParseStatements({"endwith"}, true));
    return s;
  }

  Target ToTarget(const Expr& e, const Token& at) {
    Target t;
    if (e.kind == Expr::Kind::kName) {
      t.kind = Target::Kind::kName;
      t.name = e.name;
      return t;
    }
    if (e.kind == Expr::Kind::kTuple) {
      t.kind = Target::Kind::kTuple;
      for (const ExprPtr& x : e.args) t.elements.push_back(ToTarget(*x, at));
      return t;
    }
    Fail(at, "can't assign to this expression");
  }

  Target ParseAssignTarget(bool with_tuple, bool name_only,
                           std::initializer_list<absl::string_view> extra_end,
                           bool with_namespace) {
    const Token& at = Cur();
    if (with_namespace && Look().type == T::kOp && Look().text == ".") {
      Target t;
      t.kind = Target::Kind::kNamespaceAttr;
      t.name = ExpectName().text;
      Next();
      t.attr = ExpectName().text;
      return t;
    }
    if (name_only) {
      Target t;
      t.name = ExpectName().text;
      return t;
    }
    ExprPtr e = with_tuple ? ParseTuple(true, true, extra_end, false) : ParsePrimary();
    if (e->kind == Expr::Kind::kName &&
        (e->name == "true" || e->name == "false" || e->name == "none")) {
      Fail(at, "can't assign to a constant");
    }
    return ToTarget(*e, at);
  }

  // ---- expressions ----

  struct DepthGuard {
    explicit DepthGuard(Parser* p) : p(p) {
      if (++p->expr_depth_ > kMaxExprDepth) p->Fail(p->Cur(), "expression nested too deeply");
    }
    ~DepthGuard() { --p->expr_depth_; }
    Parser* p;
  };

  bool IsTupleEnd(std::initializer_list<absl::string_view> extra_end) const {
    const Token& t = Cur();
    if (t.type == T::kVarEnd || t.type == T::kBlockEnd || (t.type == T::kOp && t.text == ")"))
      return true;
    for (absl::string_view n : extra_end) {
      if (t.type == T::kName && t.text == n) return true;
    }
    return false;
  }

  ExprPtr ParseTuple(bool simplified, bool with_condexpr,
                     std::initializer_list<absl::string_view> extra_end,
                     bool explicit_parentheses) {
    DepthGuard guard(this);
    const int line = Cur().line;
    std::vector<ExprPtr> args;
    bool is_tuple = false;
    while (true) {
      if (!args.empty()) ExpectOp(",");
      if (IsTupleEnd(extra_end)) break;
      args.push_back(simplified ? ParsePrimary() : ParseExpression(with_condexpr));
      if (IsOp(",")) {
        is_tuple = true;
      } else {
        break;
      }
    }
    if (!is_tuple) {
      if (!args.empty()) return std::move(args[0]);
      if (!explicit_parentheses) {
        Fail(Cur(), absl::StrCat("Expected an expression, got '", DescribeToken(Cur()), "'"));
      }
    }
    auto e = Make(Expr::Kind::kTuple, line);
    e->args = std::move(args);
    return Seal(std::move(e));
  }

  ExprPtr ParseExpression(bool with_condexpr) {
    DepthGuard guard(this);
    if (!with_condexpr) return ParseOr();
    ExprPtr e = ParseOr();
    while (IsName("if")) {
      const int line = Next().line;
      ExprPtr cond = ParseOr();
      ExprPtr other;
      if (SkipName("else")) other = ParseExpression(true);
      auto c = Make(Expr::Kind::kCondExpr, line);
      c->args.push_back(std::move(cond));
      c->args.push_back(std::move(e));
      c->args.push_back(std::move(other));
      e = Seal(std::move(c));
    }
    return e;
  }

  ExprPtr Binary(Expr::Kind kind, std::string op, ExprPtr a, ExprPtr b, int line) {
    auto e = Make(kind, line);
    e->name = std::move(op);
    e->args.push_back(std::move(a));
    e->args.push_back(std::move(b));
    return Seal(std::move(e));
  }

  // Records a finished node's depth; trees deeper than the limit (long chains of operators or
  // attributes included) are refused so that walking and freeing them stays off the stack's edge.
  ExprPtr Seal(ExprPtr e) {
    int d = 0;
    for (const ExprPtr& a : e->args) {
      if (a) d = std::max(d, a->depth);
    }
    for (const auto& [k, a] : e->kwargs) d = std::max(d, a->depth);
    e->depth = d + 1;
    if (e->depth > 2 * kMaxExprDepth) Fail(Cur(), "expression nested too deeply");
    return e;
  }

  ExprPtr ParseOr() {
    ExprPtr e = ParseAnd();
    while (IsName("or")) {
      const int line = Next().line;
      e = Binary(Expr::Kind::kOr, "or", std::move(e), ParseAnd(), line);
    }
    return e;
  }

  ExprPtr ParseAnd() {
    ExprPtr e = ParseNot();
    while (IsName("and")) {
      const int line = Next().line;
      e = Binary(Expr::Kind::kAnd, "and", std::move(e), ParseNot(), line);
    }
    return e;
  }

  ExprPtr ParseNot() {
    DepthGuard guard(this);
    if (IsName("not")) {
      const int line = Next().line;
      auto e = Make(Expr::Kind::kNot, line);
      e->args.push_back(ParseNot());
      return Seal(std::move(e));
    }
    return ParseCompare();
  }

  ExprPtr ParseCompare() {
    const int line = Cur().line;
    ExprPtr first = ParseMath1();
    std::vector<std::string> ops;
    std::vector<ExprPtr> operands;
    while (true) {
      if (Cur().type == T::kOp && (Cur().text == "==" || Cur().text == "!=" || Cur().text == "<" ||
                                   Cur().text == "<=" || Cur().text == ">" || Cur().text == ">=")) {
        ops.push_back(Next().text);
      } else if (SkipName("in")) {
        ops.push_back("in");
      } else if (IsName("not") && Look().type == T::kName && Look().text == "in") {
        Next();
        Next();
        ops.push_back("notin");
      } else {
        break;
      }
      operands.push_back(ParseMath1());
    }
    if (ops.empty()) return first;
    auto e = Make(Expr::Kind::kCompare, line);
    e->args.push_back(std::move(first));
    for (auto& o : operands) e->args.push_back(std::move(o));
    e->ops = std::move(ops);
    return Seal(std::move(e));
  }

  ExprPtr ParseMath1() {
    ExprPtr e = ParseConcat();
    while (IsOp("+") || IsOp("-")) {
      const Token& t = Next();
      e = Binary(Expr::Kind::kBinary, t.text, std::move(e), ParseConcat(), t.line);
    }
    return e;
  }

  ExprPtr ParseConcat() {
    ExprPtr e = ParseMath2();
    while (IsOp("~")) {
      const Token& t = Next();
      e = Binary(Expr::Kind::kBinary, "~", std::move(e), ParseMath2(), t.line);
    }
    return e;
  }

  ExprPtr ParseMath2() {
    ExprPtr e = ParsePow();
    while (IsOp("*") || IsOp("/") || IsOp("//") || IsOp("%")) {
      const Token& t = Next();
      e = Binary(Expr::Kind::kBinary, t.text, std::move(e), ParsePow(), t.line);
    }
    return e;
  }

  ExprPtr ParsePow() {
    ExprPtr e = ParseUnary(true);
    while (IsOp("**")) {
      const Token& t = Next();
      e = Binary(Expr::Kind::kBinary, "**", std::move(e), ParseUnary(true), t.line);
    }
    return e;
  }

  ExprPtr ParseUnary(bool with_filter) {
    DepthGuard guard(this);
    ExprPtr e;
    if (IsOp("-") || IsOp("+")) {
      const Token& t = Next();
      e = Make(t.text == "-" ? Expr::Kind::kNeg : Expr::Kind::kPos, t.line);
      e->args.push_back(ParseUnary(false));
      e = Seal(std::move(e));
    } else {
      e = ParsePrimary();
    }
    e = ParsePostfix(std::move(e));
    if (with_filter) e = ParseFilterExpr(std::move(e));
    return e;
  }

  ExprPtr ParsePrimary() {
    DepthGuard guard(this);
    const Token& t = Cur();
    switch (t.type) {
      case T::kName: {
        Next();
        auto e = Make(Expr::Kind::kConst, t.line);
        if (t.text == "true" || t.text == "True") {
          e->value = Value::Bool(true);
        } else if (t.text == "false" || t.text == "False") {
          e->value = Value::Bool(false);
        } else if (t.text == "none" || t.text == "None") {
          e->value = Value::None();
        } else {
          e->kind = Expr::Kind::kName;
          e->name = t.text;
        }
        return e;
      }
      case T::kString: {
        std::string s;
        const int line = t.line;
        while (Cur().type == T::kString) s += Next().text;
        auto e = Make(Expr::Kind::kConst, line);
        e->value = Value::String(std::move(s));
        return e;
      }
      case T::kInt:
      case T::kFloat: {
        Next();
        auto e = Make(Expr::Kind::kConst, t.line);
        e->value = t.type == T::kInt ? Value::Int(t.int_value) : Value::Float(t.float_value);
        return e;
      }
      case T::kOp:
        if (t.text == "(") {
          Next();
          ExprPtr e = ParseTuple(false, true, {}, true);
          ExpectOp(")");
          return e;
        }
        if (t.text == "[") {
          Next();
          auto e = Make(Expr::Kind::kList, t.line);
          while (!IsOp("]")) {
            if (!e->args.empty()) ExpectOp(",");
            if (IsOp("]")) break;
            e->args.push_back(ParseExpression(true));
          }
          ExpectOp("]");
          return Seal(std::move(e));
        }
        if (t.text == "{") {
          Next();
          auto e = Make(Expr::Kind::kDict, t.line);
          while (!IsOp("}")) {
            if (!e->args.empty()) ExpectOp(",");
            if (IsOp("}")) break;
            e->args.push_back(ParseExpression(true));
            ExpectOp(":");
            e->args.push_back(ParseExpression(true));
          }
          ExpectOp("}");
          return Seal(std::move(e));
        }
        break;
      default:
        break;
    }
    Fail(t, absl::StrCat("unexpected '", DescribeToken(t), "'"));
  }

  ExprPtr ParsePostfix(ExprPtr e) {
    while (true) {
      if (IsOp(".") || IsOp("[")) {
        e = Seal(ParseSubscript(std::move(e)));
      } else if (IsOp("(")) {
        e = Seal(ParseCall(std::move(e)));
      } else {
        return e;
      }
    }
  }

  ExprPtr ParseFilterExpr(ExprPtr e) {
    while (true) {
      if (IsOp("|")) {
        e = ParseFilter(std::move(e), false);
      } else if (IsName("is")) {
        e = Seal(ParseTest(std::move(e)));
      } else if (IsOp("(")) {
        e = Seal(ParseCall(std::move(e)));
      } else {
        return e;
      }
    }
  }

  ExprPtr ParseSubscript(ExprPtr obj) {
    DepthGuard guard(this);
    const Token& t = Next();
    if (t.text == ".") {
      const Token& attr = Next();
      if (attr.type == T::kName) {
        auto e = Make(Expr::Kind::kGetAttr, t.line);
        e->name = attr.text;
        e->args.push_back(std::move(obj));
        return e;
      }
      if (attr.type != T::kInt) Fail(attr, "expected name or number");
      auto e = Make(Expr::Kind::kGetItem, t.line);
      auto key = Make(Expr::Kind::kConst, t.line);
      key->value = Value::Int(attr.int_value);
      e->args.push_back(std::move(obj));
      e->args.push_back(std::move(key));
      return e;
    }
    // '['
    std::vector<ExprPtr> subs;
    ExprPtr slice;
    while (!IsOp("]")) {
      if (!subs.empty() || slice) ExpectOp(",");
      ExprPtr start;
      if (!IsOp(":")) {
        start = ParseExpression(true);
        if (!IsOp(":")) {
          subs.push_back(std::move(start));
          continue;
        }
      }
      // a slice
      Next();
      auto s = Make(Expr::Kind::kSlice, t.line);
      s->args.push_back(nullptr);
      s->args.push_back(std::move(start));
      ExprPtr stop, step;
      if (!IsOp("]") && !IsOp(",") && !IsOp(":")) stop = ParseExpression(true);
      if (SkipOp(":")) {
        if (!IsOp("]") && !IsOp(",")) step = ParseExpression(true);
      }
      s->args.push_back(std::move(stop));
      s->args.push_back(std::move(step));
      if (slice || !subs.empty()) Fail(t, "unsupported: multi-dimensional subscripts");
      slice = std::move(s);
    }
    ExpectOp("]");
    if (slice) {
      if (!subs.empty()) Fail(t, "unsupported: multi-dimensional subscripts");
      slice->args[0] = std::move(obj);
      return Seal(std::move(slice));
    }
    if (subs.empty()) Fail(t, "expected a subscript");
    auto e = Make(Expr::Kind::kGetItem, t.line);
    e->args.push_back(std::move(obj));
    if (subs.size() == 1) {
      e->args.push_back(std::move(subs[0]));
    } else {
      auto tuple = Make(Expr::Kind::kTuple, t.line);
      tuple->args = std::move(subs);
      e->args.push_back(Seal(std::move(tuple)));
    }
    return e;
  }

  void ParseCallArgs(Expr* e) {
    ExpectOp("(");
    bool require_comma = false;
    while (!IsOp(")")) {
      if (require_comma) {
        ExpectOp(",");
        if (IsOp(")")) break;
      }
      if (IsOp("*") || IsOp("**")) Fail(Cur(), "unsupported: *args and **kwargs in calls");
      if (Cur().type == T::kName && Look().type == T::kOp && Look().text == "=") {
        std::string key = Next().text;
        Next();
        e->kwargs.emplace_back(std::move(key), ParseExpression(true));
      } else {
        if (!e->kwargs.empty()) Fail(Cur(), "Invalid argument syntax");
        e->args.push_back(ParseExpression(true));
      }
      require_comma = true;
    }
    ExpectOp(")");
  }

  ExprPtr ParseCall(ExprPtr callee) {
    DepthGuard guard(this);
    auto e = Make(Expr::Kind::kCall, Cur().line);
    e->args.push_back(std::move(callee));
    ParseCallArgs(e.get());
    return e;
  }

  ExprPtr ParseFilter(ExprPtr e, bool start_inline) {
    DepthGuard guard(this);
    while (IsOp("|") || start_inline) {
      if (!start_inline) Next();
      start_inline = false;
      const Token& name_tok = ExpectName();
      std::string name = name_tok.text;
      while (IsOp(".")) {
        Next();
        name += "." + ExpectName().text;
      }
      auto f = Make(Expr::Kind::kFilter, name_tok.line);
      f->name = name;
      f->filter = FindFilter(name);
      if (f->filter == nullptr) Fail(name_tok, absl::StrCat("No filter named '", name, "'."));
      f->args.push_back(std::move(e));
      if (IsOp("(")) ParseCallArgs(f.get());
      e = Seal(std::move(f));
    }
    return e;
  }

  ExprPtr ParseTest(ExprPtr e) {
    DepthGuard guard(this);
    const Token& is = Next();
    const bool negated = SkipName("not");
    const Token& name_tok = ExpectName();
    std::string name = name_tok.text;
    while (IsOp(".")) {
      Next();
      name += "." + ExpectName().text;
    }
    auto t = Make(Expr::Kind::kTest, is.line);
    t->name = name;
    t->negated = negated;
    t->test = FindTest(name);
    if (t->test == nullptr) Fail(name_tok, absl::StrCat("No test named '", name, "'."));
    t->args.push_back(std::move(e));
    if (IsOp("(")) {
      ParseCallArgs(t.get());
    } else if ((Cur().type == T::kName || Cur().type == T::kString || Cur().type == T::kInt ||
                Cur().type == T::kFloat || IsOp("(") || IsOp("[") || IsOp("{")) &&
               !IsName("else") && !IsName("or") && !IsName("and")) {
      if (IsName("is")) Fail(Cur(), "You cannot chain multiple tests with is");
      t->args.push_back(ParsePostfix(ParsePrimary()));
    }
    return t;
  }

  std::vector<Token> toks_;
  size_t pos_ = 0;
  int expr_depth_ = 0;
  int stmt_depth_ = 0;
  int loop_depth_ = 0;
};

}  // namespace

std::shared_ptr<const Template> Parse(std::string_view source) { return Parser(Lex(source)).Run(); }

}  // namespace attnres::jinja
