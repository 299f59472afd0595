// The grammar automaton (acceptance, completeness, determinism, limits), the sorted vocabulary,
// and token masks against a brute-force reference over random grammars, random vocabularies
// and a real tokenizer.
#include "server/structured/token_constraint.h"

#include <map>
#include <random>
#include <set>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace attnres::structured {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using State = GrammarAutomaton::State;
constexpr State kDead = GrammarAutomaton::kDead;

// ---- Grammars ----

// value ::= array | number | "true"; array ::= "[" "]" | "[" value ("," value)* "]";
// number ::= [0-9]+.
std::shared_ptr<const Grammar> BracketsGrammar() {
  GrammarBuilder b;
  const int value = b.DeclareRule("value");
  const int array = b.DeclareRule("array");
  const Element number = b.Plus("number", {b.Bytes(ByteSet::Range('0', '9'))});
  const Element more = b.Star("more", {b.Byte(','), b.Ref(value)});
  b.DefineRule(value, {{b.Ref(array)}, {number}, b.Literal("true")});
  b.DefineRule(array, {{b.Byte('['), b.Byte(']')}, {b.Byte('['), b.Ref(value), more, b.Byte(']')}});
  auto g = std::move(b).Build(value);
  EXPECT_TRUE(g.ok()) << g.status();
  return *g;
}

// A JSON string's characters: any byte but '"', '\\' and controls, or an escape.
Element JsonStringElement(GrammarBuilder& b) {
  const Element hex = b.Bytes(ByteSet::Range('0', '9').AddRange('a', 'f').AddRange('A', 'F'));
  const int escape = b.AddRule(
      "escape",
      {{b.Bytes(ByteSet::Of('"').Add('\\').Add('/').Add('b').Add('f').Add('n').Add('r').Add('t'))},
       {b.Byte('u'), hex, hex, hex, hex}});
  const Element plain = b.Bytes(ByteSet::Range(0, 0x1F).Add('"').Add('\\').Complement());
  const int ch = b.AddRule("char", {{plain}, {b.Byte('\\'), b.Ref(escape)}});
  const Element chars = b.Star("chars", {b.Ref(ch)});
  return b.Ref(b.AddRule("string", {{b.Byte('"'), chars, b.Byte('"')}}));
}

std::shared_ptr<const Grammar> JsonStringGrammar() {
  GrammarBuilder b;
  const Element string = JsonStringElement(b);
  auto g = std::move(b).Build(b.AddRule("root", {{string}}));
  EXPECT_TRUE(g.ok()) << g.status();
  return *g;
}

// Any JSON value, with whitespace between tokens.
std::shared_ptr<const Grammar> JsonGrammar() {
  GrammarBuilder b;
  const Element ws = b.Star("ws", {b.Bytes(ByteSet::Of(' ').Add('\t').Add('\n').Add('\r'))});
  const Element string = JsonStringElement(b);
  const int value = b.DeclareRule("value");
  const Element digits = b.Plus("digits", {b.Bytes(ByteSet::Range('0', '9'))});
  const int integer = b.AddRule(
      "integer", {{b.Byte('0')}, {b.Bytes(ByteSet::Range('1', '9')), b.Star("tail", {digits})}});
  const Element fraction = b.Optional("fraction", {b.Byte('.'), digits});
  const Element exponent =
      b.Optional("exponent", {b.Bytes(ByteSet::Of('e').Add('E')),
                              b.Optional("sign", {b.Bytes(ByteSet::Of('+').Add('-'))}), digits});
  const int number = b.AddRule(
      "number", {{b.Optional("minus", {b.Byte('-')}), b.Ref(integer), fraction, exponent}});
  const int member = b.AddRule("member", {{string, ws, b.Byte(':'), ws, b.Ref(value)}});
  const Element more_members = b.Star("more_members", {ws, b.Byte(','), ws, b.Ref(member)});
  const int object =
      b.AddRule("object", {{b.Byte('{'), ws, b.Byte('}')},
                           {b.Byte('{'), ws, b.Ref(member), more_members, ws, b.Byte('}')}});
  const Element more_values = b.Star("more_values", {ws, b.Byte(','), ws, b.Ref(value)});
  const int array =
      b.AddRule("array", {{b.Byte('['), ws, b.Byte(']')},
                          {b.Byte('['), ws, b.Ref(value), more_values, ws, b.Byte(']')}});
  b.DefineRule(value, {{b.Ref(object)},
                       {b.Ref(array)},
                       {string},
                       {b.Ref(number)},
                       b.Literal("true"),
                       b.Literal("false"),
                       b.Literal("null")});
  auto g = std::move(b).Build(b.AddRule("root", {{ws, b.Ref(value), ws}}));
  EXPECT_TRUE(g.ok()) << g.status();
  return *g;
}

// ---- Reference recognizer: top-down, memoized end positions (terminates without left
// recursion), independent of the automaton ----

class Reference {
 public:
  Reference(const Grammar& g, std::string_view text) : g_(g), text_(text) {}
  bool Accepts() { return Ends(g_.root(), 0).contains(static_cast<int>(text_.size())); }

 private:
  const std::set<int>& Ends(int rule, int start) {
    const auto key = std::pair(rule, start);
    if (auto it = memo_.find(key); it != memo_.end()) return it->second;
    std::set<int> ends;
    for (const Alternative& alt : g_.rules()[rule].alternatives) {
      std::set<int> at = {start};
      for (const Element& e : alt) {
        std::set<int> next;
        for (int p : at) {
          if (e.kind == Element::Kind::kRule) {
            const std::set<int>& sub = Ends(e.index, p);
            next.insert(sub.begin(), sub.end());
          } else if (p < static_cast<int>(text_.size()) &&
                     g_.byte_sets()[e.index].Has(static_cast<uint8_t>(text_[p]))) {
            next.insert(p + 1);
          }
        }
        at = std::move(next);
      }
      ends.insert(at.begin(), at.end());
    }
    return memo_[key] = std::move(ends);
  }

  const Grammar& g_;
  std::string_view text_;
  std::map<std::pair<int, int>, std::set<int>> memo_;
};

// ---- Random grammars and vocabularies ----

// Bytes the random grammars and vocabularies draw from: ASCII and the UTF-8 bytes of "é"
// (C3 A9) and "日" (E6 97 A5).
const std::string kAlphabet = "abc,\xC3\xA9\xE6\x97\xA5";

ByteSet RandomByteSet(std::mt19937& rng) {
  ByteSet set;
  while (set.empty()) {
    for (char c : kAlphabet) {
      if (rng() % 3 == 0) set.Add(static_cast<uint8_t>(c));
    }
  }
  if (rng() % 8 == 0) set.AddRange(0x80, 0xBF);  // any continuation byte
  return set;
}

// A few rules with random alternatives, some through the builder's operators; retried until
// Build accepts it (random references may be left-recursive) and it matches something.
std::shared_ptr<const Grammar> RandomGrammar(std::mt19937& rng) {
  for (;;) {
    GrammarBuilder b;
    const int num_rules = 2 + static_cast<int>(rng() % 5);
    for (int r = 0; r < num_rules; ++r) b.DeclareRule("r");
    auto random_alt = [&] {
      Alternative alt;
      const int len = static_cast<int>(rng() % 5);
      for (int i = 0; i < len; ++i) {
        if (rng() % 5 < 3) {
          alt.push_back(b.Bytes(RandomByteSet(rng)));
        } else {
          alt.push_back(b.Ref(static_cast<int>(rng() % num_rules)));
        }
      }
      return alt;
    };
    for (int r = 0; r < num_rules; ++r) {
      std::vector<Alternative> alts;
      const int num_alts = 1 + static_cast<int>(rng() % 3);
      for (int a = 0; a < num_alts; ++a) alts.push_back(random_alt());
      Alternative item = {b.Bytes(RandomByteSet(rng))};
      switch (rng() % 6) {
        case 0:
          alts.push_back({b.Star("star", item)});
          break;
        case 1:
          alts.push_back({b.Plus("plus", item), b.Ref(r)});
          break;
        case 2:
          alts.push_back({b.Repeat("rep", item, 1, 3)});
          break;
        case 3:
          alts.push_back({b.Optional("opt", item), b.Bytes(RandomByteSet(rng))});
          break;
        default:
          break;
      }
      b.DefineRule(r, std::move(alts));
    }
    auto g = std::move(b).Build(0);
    if (g.ok() && GrammarAutomaton(*g).initial() != kDead) return *g;
  }
}

std::string RandomPiece(std::mt19937& rng) {
  static const std::vector<std::string> kPieces = {
      "a",  "b", "c", ",", "\xC3", "\xA9", "\xC3\xA9", "\xE6", "\x97\xA5", "\xE6\x97\xA5",
      "ab", "x"};
  return kPieces[rng() % kPieces.size()];
}

// Ids 0..n-1: random concatenations of pieces (so many tokens share prefixes, some are
// duplicates), a few empty ones, and the last id a special token (excluded).
std::shared_ptr<const GrammarVocabulary> RandomVocabulary(std::mt19937& rng, int n) {
  std::vector<std::string> bytes(n);
  for (int id = 0; id < n - 1; ++id) {
    if (rng() % 50 == 0) continue;  // empty
    const int pieces = 1 + static_cast<int>(rng() % 4);
    for (int p = 0; p < pieces; ++p) bytes[id] += RandomPiece(rng);
  }
  bytes[n - 1] = "<|end|>";
  const std::vector<int32_t> excluded = {n - 1};
  return std::make_shared<const GrammarVocabulary>(std::move(bytes), excluded);
}

// What the mask must be: every token whose bytes `reference` (another automaton of the same
// grammar, in the state reached by the same text) accepts, and the terminators when complete.
TokenBitmask BruteForceMask(const GrammarVocabulary& vocab, GrammarAutomaton& reference,
                            State state, const TokenConstraint& constraint) {
  TokenBitmask mask(vocab.vocab_size());
  for (int32_t id = 0; id < vocab.vocab_size(); ++id) {
    if (constraint.IsTerminator(id)) {
      if (reference.IsComplete(state)) mask.Set(id);
      continue;
    }
    if (vocab.bytes(id).empty()) continue;
    auto next = reference.AdvanceBytes(state, vocab.bytes(id));
    EXPECT_TRUE(next.ok()) << next.status();
    if (next.ok() && *next != kDead) mask.Set(id);
  }
  return mask;
}

std::vector<int32_t> AllowedIds(const TokenBitmask& mask, int32_t vocab_size) {
  std::vector<int32_t> ids;
  for (int32_t id = 0; id < vocab_size; ++id) {
    if (mask.Has(id)) ids.push_back(id);
  }
  return ids;
}

// ---- Automaton ----

TEST(GrammarAutomaton, AcceptsNestedBrackets) {
  GrammarAutomaton a(BracketsGrammar());
  for (const char* ok : {"1", "true", "[]", "[1]", "[1,22,true]", "[[],[[]],[1,[2,[3]]]]",
                         "[[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]"}) {
    auto r = a.Accepts(ok);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_TRUE(*r) << ok;
  }
  for (const char* bad : {"", "[", "]", "[1,]", "[,1]", "[[1]", "[1]]", "tru", "truex", "[true1]",
                          "1 ", "[[],[[]],[1,[2,[3]]]"}) {
    auto r = a.Accepts(bad);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_FALSE(*r) << bad;
  }
}

TEST(GrammarAutomaton, AgreesWithReferenceOnJson) {
  const auto g = JsonGrammar();
  GrammarAutomaton a(g);
  for (const char* text :
       {"{\"a\": [1, 2.5e-3, \"x\\n\", true, null, {}]}", " [ ] ", "-0.5E+10", "\"\\u12aF\"",
        "{\"k\":{\"k\":[[],{}]}}", "{\"a\" 1}", "[01]", "\"\\u12G4\"", "[1,]", "{,}",
        "\"tab\tinside\"", "\"caf\xC3\xA9\"", "{\"a\":1,}", "nul", "[true false]"}) {
    auto r = a.Accepts(text);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(*r, Reference(*g, text).Accepts()) << text;
  }
  EXPECT_TRUE(*a.Accepts("{\"a\": [1, 2.5e-3, \"x\\n\", true, null, {}]}"));
  EXPECT_FALSE(*a.Accepts("\"tab\tinside\""));
}

TEST(GrammarAutomaton, CompleteAndContinue) {
  GrammarAutomaton a(BracketsGrammar());
  auto at = [&](std::string_view text) {
    auto s = a.AdvanceBytes(a.initial(), text);
    EXPECT_TRUE(s.ok()) << s.status();
    return *s;
  };
  EXPECT_FALSE(a.IsComplete(a.initial()));
  EXPECT_TRUE(a.CanContinue(a.initial()));
  EXPECT_TRUE(a.IsComplete(at("12")));  // complete, and more digits may follow
  EXPECT_TRUE(a.CanContinue(at("12")));
  EXPECT_TRUE(a.IsComplete(at("true")));  // complete, nothing may follow
  EXPECT_FALSE(a.CanContinue(at("true")));
  EXPECT_FALSE(a.IsComplete(at("[1")));
  EXPECT_TRUE(a.CanContinue(at("[1")));
  EXPECT_TRUE(a.IsComplete(at("[1]")));
  EXPECT_FALSE(a.CanContinue(at("[1]")));
}

TEST(GrammarAutomaton, DeadStaysDead) {
  GrammarAutomaton a(BracketsGrammar());
  auto s = a.AdvanceBytes(a.initial(), "[1x");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(*s, kDead);
  auto next = a.Advance(kDead, '1');
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(*next, kDead);
  EXPECT_FALSE(a.IsComplete(kDead));
  EXPECT_FALSE(a.CanContinue(kDead));
  EXPECT_EQ(a.Advance(12345, '1').status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(GrammarAutomaton, TransitionsAreDeterministic) {
  GrammarAutomaton a(BracketsGrammar());
  const std::string text = "[[1,2],[3,[4,5]],true,[],[[6]]]";
  auto walk = [&] {
    std::vector<State> states = {a.initial()};
    for (char c : text) {
      auto s = a.Advance(states.back(), static_cast<uint8_t>(c));
      EXPECT_TRUE(s.ok()) << s.status();
      states.push_back(*s);
    }
    return states;
  };
  const std::vector<State> first = walk();
  const int built = a.num_states();
  EXPECT_EQ(walk(), first);
  EXPECT_EQ(a.num_states(), built);  // the second walk only looked transitions up
  EXPECT_TRUE(a.IsComplete(first.back()));
  // Equal sets of stacks are one state: after "[1," and "[2," the matcher is in the same place.
  auto after = [&](std::string_view t) { return *a.AdvanceBytes(a.initial(), t); };
  EXPECT_EQ(after("[1,"), after("[2,"));
  EXPECT_NE(after("[1,"), after("[[1,"));
}

TEST(GrammarAutomaton, StateLimit) {
  GrammarAutomaton a(BracketsGrammar(), {.max_states = 6, .max_stacks = 1 << 18});
  auto r = a.Accepts("[[[[[[[[[[1]]]]]]]]]]");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(r.status().message(),
              HasSubstr("structured output: the grammar's automaton passed 6 states"));
  EXPECT_LE(a.num_states(), 6);
  // The limit is sticky: later new transitions fail too.
  EXPECT_EQ(a.Accepts("[[[[[[[[[[[[1").status().code(), absl::StatusCode::kResourceExhausted);
}

TEST(GrammarAutomaton, StackLimit) {
  GrammarAutomaton a(BracketsGrammar(), {.max_states = 1 << 16, .max_stacks = 40});
  ASSERT_NE(a.initial(), kDead);
  auto shallow = a.Accepts("[1]");
  ASSERT_TRUE(shallow.ok()) << shallow.status();
  auto deep = a.Accepts(std::string(100, '['));
  EXPECT_EQ(deep.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(deep.status().message(), HasSubstr("passed 40 stacks"));
  // Too small even for the initial state: every use reports the limit.
  GrammarAutomaton tiny(BracketsGrammar(), {.max_states = 1 << 16, .max_stacks = 1});
  EXPECT_EQ(tiny.Accepts("1").status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(tiny.Accepts("").status().code(), absl::StatusCode::kResourceExhausted);
}

TEST(GrammarAutomaton, RandomGrammarsAgreeWithReference) {
  // Every string of up to 4 bytes over the grammars' alphabet.
  std::mt19937 rng(7);
  std::vector<std::string> texts = {""};
  for (size_t i = 0; i < texts.size() && texts[i].size() < 4; ++i) {
    for (char c : std::string("abc,\xC3\xA9")) texts.push_back(texts[i] + c);
  }
  int accepted = 0;
  for (int trial = 0; trial < 40; ++trial) {
    const auto g = RandomGrammar(rng);
    GrammarAutomaton a(g);
    for (const std::string& text : texts) {
      auto r = a.Accepts(text);
      ASSERT_TRUE(r.ok()) << r.status();
      ASSERT_EQ(*r, Reference(*g, text).Accepts()) << "trial " << trial << " text " << text << "\n"
                                                   << g->ToString();
      accepted += *r;
    }
  }
  EXPECT_GT(accepted, 100);  // the grammars are not all trivial
}

// ---- Vocabulary ----

TEST(GrammarVocabulary, SortsByUnsignedBytesAndSharesPrefixes) {
  std::vector<std::string> bytes = {"ab", "a", "", "abc", "b", "ab", "\xFF", "x", "\x80", "b\xC3"};
  const std::vector<int32_t> excluded = {7, 99, -1};  // out-of-range ids are ignored
  GrammarVocabulary v(bytes, excluded);
  EXPECT_EQ(v.vocab_size(), 10);
  EXPECT_EQ(v.bytes(3), "abc");
  EXPECT_EQ(v.bytes(7), "");  // excluded
  EXPECT_EQ(v.bytes(2), "");
  // 0x80 and 0xFF sort after ASCII: unsigned byte order.
  EXPECT_THAT(v.sorted_ids(), ElementsAre(1, 0, 5, 3, 4, 9, 8, 6));
  EXPECT_THAT(v.shared_prefix(), ElementsAre(0, 1, 2, 2, 0, 1, 0, 0));
}

TEST(GrammarVocabulary, FromTokenizerExcludesSpecialAndPaddedIds) {
  auto tok = Tokenizer::FromFile("tests/data/tokenizer/llama3/tokenizer.json");
  ASSERT_TRUE(tok.ok()) << tok.status();
  const int32_t tokenizer_size = (*tok)->vocab_size();
  const int32_t model_size = tokenizer_size + 64;  // models pad their embedding
  auto v = GrammarVocabulary::FromTokenizer(**tok, model_size);
  EXPECT_EQ(v->vocab_size(), model_size);
  const std::optional<int32_t> bos = (*tok)->TokenToId("<|begin_of_text|>");
  ASSERT_TRUE(bos.has_value());
  ASSERT_TRUE((*tok)->IsSpecial(*bos));
  EXPECT_EQ(v->bytes(*bos), "");
  int specials = 0;
  for (int32_t id = 0; id < tokenizer_size; ++id) specials += (*tok)->IsSpecial(id);
  EXPECT_GT(specials, 0);
  EXPECT_EQ(static_cast<int>(v->sorted_ids().size()), tokenizer_size - specials);
  std::set<int32_t> sorted(v->sorted_ids().begin(), v->sorted_ids().end());
  EXPECT_FALSE(sorted.contains(*bos));
  EXPECT_FALSE(sorted.contains(tokenizer_size));
  EXPECT_EQ(v->bytes(model_size - 1), "");
  const std::optional<int32_t> brace = (*tok)->TokenToId("{");
  ASSERT_TRUE(brace.has_value());
  EXPECT_EQ(v->bytes(*brace), "{");
}

// ---- Masks ----

TEST(TokenConstraint, MasksMatchBruteForceOnRandomWalks) {
  std::mt19937 rng(1234);
  int masks_checked = 0;
  for (int trial = 0; trial < 30; ++trial) {
    const auto g = RandomGrammar(rng);
    const auto vocab = RandomVocabulary(rng, 300 + static_cast<int>(rng() % 200));
    const int32_t end = vocab->vocab_size() - 1;
    TokenConstraint c(g, vocab, {end}, {}, /*mask_cache_entries=*/4);
    GrammarAutomaton reference(g);
    for (int walk = 0; walk < 4; ++walk) {
      State state = c.initial();
      State ref_state = reference.initial();
      std::string text;
      for (int step = 0; step < 10; ++step) {
        auto mask = c.AllowedTokens(state);
        ASSERT_TRUE(mask.ok()) << mask.status();
        const TokenBitmask want = BruteForceMask(*vocab, reference, ref_state, c);
        ASSERT_EQ((*mask)->words, want.words) << "trial " << trial << " after \"" << text << "\"\n"
                                              << g->ToString();
        ++masks_checked;
        // Completeness, checked independently of the automaton.
        ASSERT_EQ(c.IsComplete(state), Reference(*g, text).Accepts()) << text;
        EXPECT_EQ((*mask)->Has(end), c.IsComplete(state));
        std::vector<int32_t> next = AllowedIds(**mask, vocab->vocab_size());
        std::erase(next, end);
        // A finished state allows only terminators (the converse need not hold: the grammar
        // may go on with bytes no token spells).
        if (c.IsFinished(state)) {
          EXPECT_THAT(next, ElementsAre());
        }
        if (next.empty()) break;
        const int32_t token = next[rng() % next.size()];
        auto s = c.Accept(state, token);
        ASSERT_TRUE(s.ok()) << s.status();
        ASSERT_NE(*s, kDead);
        state = *s;
        ref_state = *reference.AdvanceBytes(ref_state, vocab->bytes(token));
        text += vocab->bytes(token);
      }
    }
  }
  EXPECT_GT(masks_checked, 300);
}

// "abc" then end; single-byte tokens a, b, c, x and "ab", "bc", "abc", "abcx".
struct AbcFixture {
  AbcFixture(int cache_entries = 32) {
    GrammarBuilder b;
    grammar = *std::move(b).Build(b.AddRule("root", {b.Literal("abc")}));
    vocab = std::make_shared<const GrammarVocabulary>(
        std::vector<std::string>{"a", "b", "c", "x", "ab", "bc", "abc", "abcx", "<eos>"},
        std::vector<int32_t>{kEos});
    constraint = std::make_unique<TokenConstraint>(grammar, vocab, std::vector<int32_t>{kEos},
                                                   AutomatonLimits{}, cache_entries);
  }
  State After(std::string_view text) {
    State s = constraint->initial();
    for (char ch : text) s = *constraint->Accept(s, ch - 'a');
    return s;
  }
  std::vector<int32_t> Allowed(State s) {
    auto mask = constraint->AllowedTokens(s);
    EXPECT_TRUE(mask.ok()) << mask.status();
    return AllowedIds(**mask, vocab->vocab_size());
  }
  static constexpr int32_t kEos = 8;
  std::shared_ptr<const Grammar> grammar;
  std::shared_ptr<const GrammarVocabulary> vocab;
  std::unique_ptr<TokenConstraint> constraint;
};

TEST(TokenConstraint, TerminatorsOnlyWhenComplete) {
  AbcFixture f;
  EXPECT_THAT(f.Allowed(f.After("")), ElementsAre(0, 4, 6));  // a, ab, abc
  EXPECT_THAT(f.Allowed(f.After("a")), ElementsAre(1, 5));    // b, bc
  EXPECT_THAT(f.Allowed(f.After("ab")), ElementsAre(2));
  EXPECT_THAT(f.Allowed(f.After("abc")), ElementsAre(AbcFixture::kEos));
  EXPECT_TRUE(f.constraint->IsFinished(f.After("abc")));
  EXPECT_FALSE(f.constraint->IsFinished(f.After("ab")));
}

// A terminator whose bytes the grammar would take is still only allowed where it is complete: the
// engine ends the output at it, so it can never stand for its text.
TEST(TokenConstraint, TerminatorIsNeverItsBytes) {
  GrammarBuilder b;
  auto g = *std::move(b).Build(b.AddRule("root", {b.Literal("ab")}));
  auto vocab = std::make_shared<const GrammarVocabulary>(std::vector<std::string>{"a", "b", "ab"},
                                                         std::vector<int32_t>{});
  TokenConstraint c(g, vocab, {0});
  EXPECT_THAT(AllowedIds(**c.AllowedTokens(c.initial()), 3), ElementsAre(2));
  const State done = *c.Accept(c.initial(), 2);
  EXPECT_THAT(AllowedIds(**c.AllowedTokens(done), 3), ElementsAre(0));
}

// Requests with one grammar share its masks; each applies its own terminators on top, and a
// mask they do not change is the shared one itself.
TEST(TokenConstraint, SharedMasksKeepEachRequestsTerminators) {
  GrammarBuilder b;
  auto g = *std::move(b).Build(b.AddRule("root", {b.Literal("ab")}));
  auto vocab = std::make_shared<const GrammarVocabulary>(
      std::vector<std::string>{"a", "b", "ab", "<end>"}, std::vector<int32_t>{3});
  auto masks = std::make_shared<GrammarMasks>(g, vocab);
  TokenConstraint plain(masks, {}), ended(masks, {3}), by_a(masks, {0});
  const State start = plain.initial(), done = *plain.Accept(start, 2);
  EXPECT_EQ(ended.initial(), start);
  EXPECT_EQ(*ended.Accept(start, 2), done);
  EXPECT_EQ(*plain.AllowedTokens(start), *masks->Mask(start));
  EXPECT_EQ(*ended.AllowedTokens(start), *masks->Mask(start));  // <end> is no content anyway
  EXPECT_THAT(AllowedIds(**plain.AllowedTokens(done), 4), ElementsAre());
  EXPECT_THAT(AllowedIds(**ended.AllowedTokens(done), 4), ElementsAre(3));
  // "a" as a terminator is no longer the first letter, and ends the output once it is complete.
  EXPECT_THAT(AllowedIds(**by_a.AllowedTokens(start), 4), ElementsAre(2));
  EXPECT_THAT(AllowedIds(**by_a.AllowedTokens(done), 4), ElementsAre(0));
  EXPECT_THAT(AllowedIds(**masks->Mask(start), 4), ElementsAre(0, 2));
}

TEST(TokenConstraint, AcceptTerminatorRefusedAndInvalid) {
  AbcFixture f;
  TokenConstraint& c = *f.constraint;
  const State done = f.After("abc");
  EXPECT_EQ(*c.Accept(done, AbcFixture::kEos), done);
  EXPECT_TRUE(c.IsTerminator(AbcFixture::kEos));
  EXPECT_FALSE(c.IsTerminator(0));
  EXPECT_EQ(*c.Accept(c.initial(), 1), kDead);  // "b" first
  EXPECT_EQ(*c.Accept(c.initial(), 7), kDead);  // "abcx": dies on its last byte
  EXPECT_EQ(*c.Accept(c.initial(), 6), done);   // "abc" in one token
  EXPECT_EQ(c.Accept(c.initial(), 9).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(c.Accept(c.initial(), -1).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(c.AllowedTokens(kDead).status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(c.AllowedTokens(1000).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(TokenConstraint, ExcludedTokenNeverMatches) {
  // "<eos>" is excluded, so a grammar that spells it out still refuses the token.
  GrammarBuilder b;
  auto g = *std::move(b).Build(b.AddRule("root", {b.Literal("<eos>")}));
  auto vocab = std::make_shared<const GrammarVocabulary>(std::vector<std::string>{"<", "<eos>"},
                                                         std::vector<int32_t>{1});
  TokenConstraint c(g, vocab, {});
  EXPECT_EQ(*c.Accept(c.initial(), 1), kDead);
  EXPECT_THAT(AllowedIds(**c.AllowedTokens(c.initial()), 2), ElementsAre(0));
}

TEST(TokenConstraint, CacheReturnsSameMaskAndEvictsLeastRecentlyUsed) {
  AbcFixture f(/*cache_entries=*/2);
  TokenConstraint& c = *f.constraint;
  const State s0 = f.After(""), s1 = f.After("a"), s2 = f.After("ab");
  auto m0 = *c.AllowedTokens(s0);
  EXPECT_EQ(*c.AllowedTokens(s0), m0);
  auto m1 = *c.AllowedTokens(s1);
  EXPECT_EQ(*c.AllowedTokens(s0), m0);  // touches s0: s1 is now the least recent
  auto m2 = *c.AllowedTokens(s2);       // evicts s1
  EXPECT_EQ(*c.AllowedTokens(s0), m0);
  EXPECT_EQ(*c.AllowedTokens(s2), m2);
  auto m1_again = *c.AllowedTokens(s1);  // recomputed (and evicts s0)
  EXPECT_NE(m1_again, m1);
  EXPECT_EQ(m1_again->words, m1->words);
  EXPECT_NE(*c.AllowedTokens(s0), m0);
}

TEST(TokenConstraint, StackLimitFailsTheMask) {
  auto vocab = std::make_shared<const GrammarVocabulary>(
      std::vector<std::string>{"[", "[[[[[[[[", "1", "]"}, std::span<const int32_t>());
  TokenConstraint c(BracketsGrammar(), vocab, {}, {.max_states = 1 << 16, .max_stacks = 20});
  auto mask = c.AllowedTokens(c.initial());
  EXPECT_EQ(mask.status().code(), absl::StatusCode::kResourceExhausted);
}

// ---- Real and large vocabularies (their cost: bench/structured_bench.cc) ----

TEST(TokenConstraint, RealTokenizerJsonString) {
  auto tok = Tokenizer::FromFile("tests/data/tokenizer/llama3/tokenizer.json");
  ASSERT_TRUE(tok.ok()) << tok.status();
  auto vocab = GrammarVocabulary::FromTokenizer(**tok, (*tok)->vocab_size());
  const int32_t eos = *(*tok)->TokenToId("<|end_of_text|>");
  const auto g = JsonStringGrammar();
  TokenConstraint c(g, vocab, {eos});
  GrammarAutomaton reference(g);

  const int32_t quote = *(*tok)->TokenToId("\"");
  const State in_string = *c.Accept(c.initial(), quote);
  ASSERT_NE(in_string, kDead);
  auto mask = c.AllowedTokens(in_string);
  ASSERT_TRUE(mask.ok()) << mask.status();
  EXPECT_EQ(*c.AllowedTokens(in_string), *mask);  // cached

  const State ref_in_string = *reference.AdvanceBytes(reference.initial(), "\"");
  EXPECT_EQ((*mask)->words, BruteForceMask(*vocab, reference, ref_in_string, c).words);
  const int allowed = static_cast<int>(AllowedIds(**mask, vocab->vocab_size()).size());
  EXPECT_GT(allowed, 0.9 * static_cast<double>(vocab->sorted_ids().size()));
  EXPECT_FALSE((*mask)->Has(eos));
  for (int32_t id = 0; id < vocab->vocab_size(); ++id) {
    if ((*tok)->IsSpecial(id)) {
      EXPECT_FALSE((*mask)->Has(id)) << id;
    }
  }
  // Closing the string finishes the output: only the terminator remains.
  const State closed = *c.Accept(in_string, quote);
  EXPECT_TRUE(c.IsFinished(closed));
  EXPECT_THAT(AllowedIds(**c.AllowedTokens(closed), vocab->vocab_size()), ElementsAre(eos));
}

TEST(TokenConstraint, RealTokenizerJsonValue) {
  // Walks the tokens of a JSON text: each one is in the mask, and each mask is the reference.
  auto tok = Tokenizer::FromFile("tests/data/tokenizer/llama3/tokenizer.json");
  ASSERT_TRUE(tok.ok()) << tok.status();
  auto vocab = GrammarVocabulary::FromTokenizer(**tok, (*tok)->vocab_size());
  const auto g = JsonGrammar();
  TokenConstraint c(g, vocab, {});
  GrammarAutomaton reference(g);
  const std::string text =
      "{\"name\": \"Zo\\u00eb \\\"Z\\\" caf\xC3\xA9\", \"age\": [3, -4.5e+2, null]}";
  State state = c.initial();
  State ref_state = reference.initial();
  for (const int32_t token : (*tok)->Encode(text, /*add_special_tokens=*/false)) {
    auto mask = c.AllowedTokens(state);
    ASSERT_TRUE(mask.ok()) << mask.status();
    ASSERT_TRUE((*mask)->Has(token)) << vocab->bytes(token);
    ASSERT_EQ((*mask)->words, BruteForceMask(*vocab, reference, ref_state, c).words);
    state = *c.Accept(state, token);
    ref_state = *reference.AdvanceBytes(ref_state, vocab->bytes(token));
  }
  EXPECT_TRUE(c.IsComplete(state));  // trailing whitespace may still follow
  EXPECT_FALSE(c.IsFinished(state));
}

TEST(TokenConstraint, SyntheticHundredThousandTokenVocabulary) {
  // Ids 0..255 are the single bytes (as in byte-level BPE); the rest are byte-level-BPE-like
  // pieces of words with and without a leading space, punctuation, digits and multi-byte
  // UTF-8, so that many share prefixes.
  std::mt19937 rng(99);
  const std::vector<std::string> kUnits = {" ",  "e", "t", "a",  "o",        "n",
                                           "\"", ":", ",", "{",  "}",        "[",
                                           "]",  "1", "0", "\\", "\xC3\xA9", "\xE6\x97\xA5",
                                           "\n", "s", "r", "-",  ".",        "_"};
  constexpr int kVocab = 100000;
  std::vector<std::string> bytes(kVocab);
  for (int id = 0; id < 256; ++id) bytes[id] = std::string(1, static_cast<char>(id));
  for (int id = 256; id < kVocab - 1; ++id) {
    const int len = 1 + static_cast<int>(rng() % 8);
    for (int i = 0; i < len; ++i) bytes[id] += kUnits[rng() % kUnits.size()];
  }
  const int32_t eos = kVocab - 1;
  auto vocab =
      std::make_shared<const GrammarVocabulary>(std::move(bytes), std::vector<int32_t>{eos});
  const auto g = JsonGrammar();
  TokenConstraint c(g, vocab, {eos});
  GrammarAutomaton reference(g);
  for (std::string_view prefix : {"", "{\"", "{\"key\": [1, ", "[\"caf\xC3"}) {
    State state = c.initial();
    for (char ch : prefix) state = *c.Accept(state, static_cast<uint8_t>(ch));
    ASSERT_NE(state, kDead) << prefix;
    auto mask = c.AllowedTokens(state);
    ASSERT_TRUE(mask.ok()) << mask.status();
    EXPECT_EQ(*c.AllowedTokens(state), *mask);  // cached
    const State ref_state = *reference.AdvanceBytes(reference.initial(), prefix);
    EXPECT_EQ((*mask)->words, BruteForceMask(*vocab, reference, ref_state, c).words) << prefix;
  }
}

}  // namespace
}  // namespace attnres::structured
