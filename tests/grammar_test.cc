// Byte-level grammars: ByteSet, GrammarBuilder's operators (checked through the matcher on
// strings), the printout, and what Build refuses.
#include "server/structured/grammar.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/structured/token_constraint.h"

namespace attnres::structured {
namespace {

using ::testing::HasSubstr;

bool Accepts(const std::shared_ptr<const Grammar>& g, std::string_view text) {
  GrammarAutomaton automaton(g);
  absl::StatusOr<bool> ok = automaton.Accepts(text);
  EXPECT_TRUE(ok.ok()) << ok.status();
  return ok.ok() && *ok;
}

std::string Copies(std::string_view s, int n) {
  std::string out;
  for (int i = 0; i < n; ++i) out += s;
  return out;
}

int CountElements(const Grammar& g) {
  int n = 0;
  for (const Rule& r : g.rules()) {
    for (const Alternative& a : r.alternatives) n += static_cast<int>(a.size());
  }
  return n;
}

// ---- ByteSet ----

TEST(ByteSet, OfRangeAddRemove) {
  ByteSet s = ByteSet::Range('a', 'c');
  EXPECT_TRUE(s.Has('a') && s.Has('b') && s.Has('c'));
  EXPECT_FALSE(s.Has('d') || s.Has('`'));
  s.Add(0xFF).Remove('b');
  EXPECT_TRUE(s.Has(0xFF));
  EXPECT_FALSE(s.Has('b'));
  EXPECT_TRUE(ByteSet::Of(0).Has(0));
  EXPECT_FALSE(ByteSet::Of(0).Has(1));
  EXPECT_TRUE(ByteSet().empty());
  EXPECT_FALSE(ByteSet::Of(200).empty());
  EXPECT_TRUE(ByteSet::Of('x').Remove('x').empty());
  EXPECT_TRUE(ByteSet().AddRange('z', 'a').empty());  // lo > hi: nothing
}

TEST(ByteSet, AllBytesAcrossWords) {
  const ByteSet all = ByteSet::Range(0, 255);
  for (int b = 0; b < 256; ++b) EXPECT_TRUE(all.Has(static_cast<uint8_t>(b))) << b;
  // Bits 63/64 and 127/128 sit at word boundaries.
  const ByteSet edges = ByteSet::Range(63, 64).AddRange(127, 128);
  for (int b = 0; b < 256; ++b) {
    EXPECT_EQ(edges.Has(static_cast<uint8_t>(b)), b == 63 || b == 64 || b == 127 || b == 128);
  }
}

TEST(ByteSet, ComplementAndUnion) {
  const ByteSet digits = ByteSet::Range('0', '9');
  const ByteSet rest = digits.Complement();
  for (int b = 0; b < 256; ++b) {
    EXPECT_NE(digits.Has(static_cast<uint8_t>(b)), rest.Has(static_cast<uint8_t>(b))) << b;
  }
  EXPECT_EQ(rest.Complement(), digits);
  EXPECT_EQ(ByteSet(digits).AddAll(rest), ByteSet::Range(0, 255));
  EXPECT_EQ(ByteSet::Range('0', '4').AddAll(ByteSet::Range('5', '9')), digits);
  EXPECT_NE(digits, rest);
}

// ---- Builder and ToString ----

TEST(GrammarBuilder, EqualByteSetsShareAnEntry) {
  GrammarBuilder b;
  const Element x = b.Byte('x');
  const Element x2 = b.Bytes(ByteSet::Of('x'));
  const Element y = b.Byte('y');
  EXPECT_EQ(x, x2);
  EXPECT_NE(x, y);
  const int root = b.AddRule("root", {{x, y, x2}});
  auto g = std::move(b).Build(root);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ((*g)->byte_sets().size(), 2u);
}

TEST(GrammarBuilder, NamesAreMadeUnique) {
  GrammarBuilder b;
  const int a = b.AddRule("a", {{}});
  const int a2 = b.AddRule("a", {{}});
  const int a3 = b.AddRule("a", {{}});
  const int a_2 = b.AddRule("a_2", {{}});
  const int root = b.AddRule("root", {{b.Ref(a), b.Ref(a2), b.Ref(a3), b.Ref(a_2)}});
  auto g = std::move(b).Build(root);
  ASSERT_TRUE(g.ok()) << g.status();
  const auto& rules = (*g)->rules();
  EXPECT_EQ(rules[a].name, "a");
  EXPECT_EQ(rules[a2].name, "a_2");
  EXPECT_EQ(rules[a3].name, "a_3");
  EXPECT_EQ(rules[a_2].name, "a_2_2");
}

TEST(GrammarBuilder, ToStringPrintsRootFirstWithLiteralsAndClasses) {
  GrammarBuilder b;
  const int value = b.DeclareRule("value");
  Alternative word = b.Literal("say \"hi\"\n");
  word.push_back(b.Bytes(ByteSet::Range('a', 'z').AddRange('0', '9').Add('-')));
  word.push_back(b.Bytes(ByteSet::Of('"').Add('\\').Complement()));
  word.push_back(b.Byte(0xC3));
  b.DefineRule(value, {word, {}});
  const int root = b.AddRule("root", {{b.Byte('['), b.Ref(value), b.Byte(']')}});
  auto g = std::move(b).Build(root);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_EQ((*g)->ToString(),
            "root ::= \"[\" value \"]\"\n"
            "value ::= \"say \\\"hi\\\"\\n\" [\\-0-9a-z] [^\"\\\\] \"\\xC3\" | \"\"\n");
}

// ---- Operators, through the matcher ----

TEST(GrammarOperators, Optional) {
  GrammarBuilder b;
  const Element opt = b.Optional("opt", b.Literal("ab"));
  const int root = b.AddRule("root", {{b.Byte('<'), opt, b.Byte('>')}});
  auto g = std::move(b).Build(root);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_TRUE(Accepts(*g, "<>"));
  EXPECT_TRUE(Accepts(*g, "<ab>"));
  EXPECT_FALSE(Accepts(*g, "<abab>"));
  EXPECT_FALSE(Accepts(*g, "<a>"));
}

TEST(GrammarOperators, StarIsRightRecursiveAndKeepsStatesFew) {
  GrammarBuilder b;
  const Element star = b.Star("items", b.Literal("ab"));
  const int root = b.AddRule("root", {{star, b.Byte('.')}});
  auto g = std::move(b).Build(root);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_THAT((*g)->ToString(), HasSubstr("items ::= \"ab\" items | \"\""));
  for (int n : {0, 1, 2, 7}) EXPECT_TRUE(Accepts(*g, Copies("ab", n) + ".")) << n;
  EXPECT_FALSE(Accepts(*g, "aba."));
  EXPECT_FALSE(Accepts(*g, "abab"));
  // A long repetition goes round the same few states: the tail call keeps stacks flat.
  GrammarAutomaton automaton(*g);
  auto ok = automaton.Accepts(Copies("ab", 50000) + ".");
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_TRUE(*ok);
  EXPECT_LE(automaton.num_states(), 4);
}

TEST(GrammarOperators, Plus) {
  GrammarBuilder b;
  const Element plus = b.Plus("digits", {b.Bytes(ByteSet::Range('0', '9')), b.Byte(';')});
  const int root = b.AddRule("root", {{plus}});
  auto g = std::move(b).Build(root);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_FALSE(Accepts(*g, ""));
  EXPECT_TRUE(Accepts(*g, "1;"));
  EXPECT_TRUE(Accepts(*g, "1;2;3;"));
  EXPECT_FALSE(Accepts(*g, "1;2"));
  EXPECT_FALSE(Accepts(*g, "12;"));
}

TEST(GrammarOperators, RepeatBounded) {
  GrammarBuilder b;
  const Element rep = b.Repeat("rep", b.Literal("xy"), 2, 4);
  const int root = b.AddRule("root", {{rep}});
  auto g = std::move(b).Build(root);
  ASSERT_TRUE(g.ok()) << g.status();
  for (int n = 0; n <= 6; ++n) {
    EXPECT_EQ(Accepts(*g, Copies("xy", n)), n >= 2 && n <= 4) << n;
  }
  EXPECT_FALSE(Accepts(*g, "xyxyx"));
}

TEST(GrammarOperators, RepeatUnboundedAndExact) {
  struct Case {
    int min, max;
  };
  for (const Case c : {Case{0, -1}, Case{3, -1}, Case{3, 3}, Case{0, 0}, Case{0, 1}, Case{1, 5}}) {
    GrammarBuilder b;
    const Element rep = b.Repeat("rep", {b.Bytes(ByteSet::Range('a', 'b'))}, c.min, c.max);
    const int root = b.AddRule("root", {{b.Byte('('), rep, b.Byte(')')}});
    auto g = std::move(b).Build(root);
    ASSERT_TRUE(g.ok()) << g.status();
    for (int n = 0; n <= 12; ++n) {
      const bool want = n >= c.min && (c.max < 0 || n <= c.max);
      const std::string text = absl::StrCat("(", Copies("ab", n).substr(0, n), ")");
      EXPECT_EQ(Accepts(*g, text), want) << "{" << c.min << "," << c.max << "} n=" << n;
    }
  }
}

TEST(GrammarOperators, RepeatGrowsLinearlyAndSharesTheItem) {
  // A 6-element item repeated {10, 1000}: copying it per count would take ~6000 elements; the
  // shared item rule plus nested optionals take ~2 per count.
  GrammarBuilder b;
  const Element rep = b.Repeat("rep", b.Literal("abcdef"), 10, 1000);
  const int root = b.AddRule("root", {{rep}});
  auto g = std::move(b).Build(root);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_LT(CountElements(**g), 2 * 1000 + 50);
  EXPECT_FALSE(Accepts(*g, Copies("abcdef", 9)));
  EXPECT_TRUE(Accepts(*g, Copies("abcdef", 10)));
  EXPECT_TRUE(Accepts(*g, Copies("abcdef", 1000)));
  EXPECT_FALSE(Accepts(*g, Copies("abcdef", 1001)));
}

TEST(GrammarOperators, RepeatRefusesBadBounds) {
  // The last two would build millions of rules or elements before Build could refuse them.
  for (auto [min, max] :
       {std::pair{-1, 3}, std::pair{4, 3}, std::pair{0, 2000000000}, std::pair{2000000000, -1}}) {
    GrammarBuilder b;
    const Element rep = b.Repeat("count", b.Literal("a"), min, max);
    const int root = b.AddRule("root", {{rep}});
    auto g = std::move(b).Build(root);
    EXPECT_EQ(g.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(g.status().message(), HasSubstr("\"count\""));
  }
}

// ---- Build ----

TEST(GrammarBuild, AcceptsRightRecursion) {
  GrammarBuilder b;
  const int list = b.DeclareRule("list");
  const Element item = b.Bytes(ByteSet::Range('a', 'z'));
  b.DefineRule(list, {{item, b.Byte(','), b.Ref(list)}, {item}});
  auto g = std::move(b).Build(list);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_TRUE(Accepts(*g, "a,b,c"));
  EXPECT_FALSE(Accepts(*g, "a,b,"));
}

TEST(GrammarBuild, RefusesUndefinedRule) {
  GrammarBuilder b;
  const int missing = b.DeclareRule("missing");
  const int root = b.AddRule("root", {{b.Byte('a'), b.Ref(missing)}});
  auto g = std::move(b).Build(root);
  EXPECT_EQ(g.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(g.status().message(), HasSubstr("rule \"missing\" is referenced but never defined"));
}

TEST(GrammarBuild, RefusesRuleWithoutAlternatives) {
  GrammarBuilder b;
  const int root = b.AddRule("root", {});
  auto g = std::move(b).Build(root);
  EXPECT_THAT(g.status().message(), HasSubstr("rule \"root\" has no alternatives"));
}

TEST(GrammarBuild, RefusesDefiningTwiceAndUndeclared) {
  {
    GrammarBuilder b;
    const int root = b.AddRule("root", {{b.Byte('a')}});
    b.DefineRule(root, {{b.Byte('b')}});
    EXPECT_THAT(std::move(b).Build(root).status().message(), HasSubstr("defined twice"));
  }
  {
    GrammarBuilder b;
    const int root = b.AddRule("root", {{b.Byte('a')}});
    b.DefineRule(7, {{}});
    EXPECT_EQ(std::move(b).Build(root).status().code(), absl::StatusCode::kInvalidArgument);
  }
}

TEST(GrammarBuild, RefusesInvalidElementIndex) {
  for (const Element bad : {Element{Element::Kind::kRule, 5}, Element{Element::Kind::kBytes, 3},
                            Element{Element::Kind::kRule, -1}}) {
    GrammarBuilder b;
    const int root = b.AddRule("root", {{b.Byte('a'), bad}});
    auto g = std::move(b).Build(root);
    EXPECT_EQ(g.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(g.status().message(), HasSubstr("rule \"root\" refers to"));
  }
}

TEST(GrammarBuild, RefusesBadRoot) {
  for (int root : {-1, 1, 100}) {
    GrammarBuilder b;
    b.AddRule("only", {{b.Byte('a')}});
    auto g = std::move(b).Build(root);
    EXPECT_EQ(g.status().code(), absl::StatusCode::kInvalidArgument) << root;
    EXPECT_THAT(g.status().message(), HasSubstr("root")) << root;
  }
}

TEST(GrammarBuild, RefusesDirectLeftRecursion) {
  GrammarBuilder b;
  const int expr = b.DeclareRule("expr");
  b.DefineRule(expr, {{b.Ref(expr), b.Byte('+'), b.Byte('1')}, {b.Byte('1')}});
  auto g = std::move(b).Build(expr);
  EXPECT_EQ(g.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(g.status().message(), "grammar: rule \"expr\" is left-recursive (expr -> expr)");
}

TEST(GrammarBuild, RefusesIndirectLeftRecursion) {
  GrammarBuilder b;
  const int value = b.DeclareRule("value");
  const int array = b.DeclareRule("array");
  b.DefineRule(value, {{b.Ref(array)}, {b.Byte('1')}});
  b.DefineRule(array, {{b.Ref(value), b.Byte(',')}, {b.Byte('[')}});
  auto g = std::move(b).Build(value);
  EXPECT_EQ(g.status().message(),
            "grammar: rule \"value\" is left-recursive (value -> array -> value)");
}

TEST(GrammarBuild, RefusesLeftRecursionThroughNullablePrefix) {
  // list ::= ws ws2 list "x" | "y", where ws and ws2 can be empty: list reaches itself
  // without consuming a byte.
  GrammarBuilder b;
  const Element ws = b.Star("ws", {b.Byte(' ')});
  const int ws2 = b.AddRule("ws2", {{ws}, {b.Byte('\t')}});
  const int list = b.DeclareRule("list");
  b.DefineRule(list, {{ws, b.Ref(ws2), b.Ref(list), b.Byte('x')}, {b.Byte('y')}});
  auto g = std::move(b).Build(list);
  EXPECT_THAT(g.status().message(), HasSubstr("rule \"list\" is left-recursive (list -> list)"));
}

TEST(GrammarBuild, AcceptsRecursionAfterNonNullablePrefix) {
  // Same shape, but ws2 must consume a byte: no left recursion.
  GrammarBuilder b;
  const Element ws = b.Star("ws", {b.Byte(' ')});
  const int ws2 = b.AddRule("ws2", {{b.Byte('\t')}});
  const int list = b.DeclareRule("list");
  b.DefineRule(list, {{ws, b.Ref(ws2), b.Ref(list), b.Byte('x')}, {b.Byte('y')}});
  auto g = std::move(b).Build(list);
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_TRUE(Accepts(*g,
                      "  \t\ty"
                      "xx"));
  EXPECT_FALSE(Accepts(*g, "  \t\tyx"));
}

TEST(GrammarBuild, RefusesStarOfNullableItem) {
  GrammarBuilder b;
  const Element maybe = b.Optional("maybe", {b.Byte('a')});
  const Element star = b.Star("many", {maybe});
  const int root = b.AddRule("root", {{star}});
  auto g = std::move(b).Build(root);
  EXPECT_THAT(g.status().message(), HasSubstr("left-recursive (many -> many)"));
}

TEST(GrammarBuild, EnforcesLimits) {
  auto build = [](const GrammarLimits& limits) {
    GrammarBuilder b;
    const int leaf = b.AddRule("leaf", {b.Literal("abcd")});
    const int root = b.AddRule("root", {{b.Ref(leaf), b.Ref(leaf)}, {b.Byte('z')}});
    return std::move(b).Build(root, limits);
  };
  EXPECT_TRUE(build({.max_rules = 2, .max_elements = 7}).ok());
  auto few_rules = build({.max_rules = 1, .max_elements = 100});
  EXPECT_EQ(few_rules.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(few_rules.status().message(), HasSubstr("2 rules, more than the limit of 1"));
  auto few_elements = build({.max_rules = 10, .max_elements = 6});
  EXPECT_EQ(few_elements.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(few_elements.status().message(),
              HasSubstr("rule \"root\" takes the grammar past the limit of 6 elements"));
}

}  // namespace
}  // namespace attnres::structured
