// Byte-level grammars: ByteSet, the GBNF-like printout, GrammarBuilder's operators, and the
// checks Build runs so that the pushdown matcher (token_constraint.cc) always terminates.
#include "server/structured/grammar.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"

namespace attnres::structured {
namespace {

// This Abseil's string_view is its own type, which StrCat needs.
absl::string_view AsAbsl(std::string_view s) { return {s.data(), s.size()}; }

}  // namespace

// ---- ByteSet ----

ByteSet ByteSet::Of(uint8_t byte) { return ByteSet().Add(byte); }

ByteSet ByteSet::Range(uint8_t lo, uint8_t hi) { return ByteSet().AddRange(lo, hi); }

ByteSet& ByteSet::Add(uint8_t byte) {
  bits_[byte >> 6] |= uint64_t{1} << (byte & 63);
  return *this;
}

ByteSet& ByteSet::AddRange(uint8_t lo, uint8_t hi) {
  for (int b = lo; b <= hi; ++b) Add(static_cast<uint8_t>(b));
  return *this;
}

ByteSet& ByteSet::AddAll(const ByteSet& other) {
  for (size_t i = 0; i < bits_.size(); ++i) bits_[i] |= other.bits_[i];
  return *this;
}

ByteSet& ByteSet::Remove(uint8_t byte) {
  bits_[byte >> 6] &= ~(uint64_t{1} << (byte & 63));
  return *this;
}

ByteSet ByteSet::Complement() const {
  ByteSet out;
  for (size_t i = 0; i < bits_.size(); ++i) out.bits_[i] = ~bits_[i];
  return out;
}

bool ByteSet::empty() const {
  return std::all_of(bits_.begin(), bits_.end(), [](uint64_t w) { return w == 0; });
}

// ---- Grammar::ToString ----

namespace {

int CountBytes(const ByteSet& set) {
  int n = 0;
  for (int b = 0; b < 256; ++b) n += set.Has(static_cast<uint8_t>(b));
  return n;
}

// A byte inside "..." or [...]: printable ASCII as itself unless it is one of `specials`
// (escaped with a backslash), the rest as \n, \r, \t or \xHH.
void AppendEscaped(uint8_t b, std::string_view specials, std::string* out) {
  switch (b) {
    case '\n':
      *out += "\\n";
      return;
    case '\r':
      *out += "\\r";
      return;
    case '\t':
      *out += "\\t";
      return;
    default:
      break;
  }
  if (b < 0x20 || b >= 0x7f) {
    absl::StrAppendFormat(out, "\\x%02X", b);
  } else {
    if (specials.find(static_cast<char>(b)) != std::string_view::npos) *out += '\\';
    *out += static_cast<char>(b);
  }
}

// [a-z0-9_], or [^"\\] where more than half of the bytes are in the set.
std::string ClassToString(const ByteSet& set) {
  const bool negate = CountBytes(set) > 128;
  const ByteSet shown = negate ? set.Complement() : set;
  std::string out = negate ? "[^" : "[";
  for (int b = 0; b < 256;) {
    if (!shown.Has(static_cast<uint8_t>(b))) {
      ++b;
      continue;
    }
    int hi = b;
    while (hi + 1 < 256 && shown.Has(static_cast<uint8_t>(hi + 1))) ++hi;
    AppendEscaped(static_cast<uint8_t>(b), "]\\^-", &out);
    if (hi > b) {
      out += '-';
      AppendEscaped(static_cast<uint8_t>(hi), "]\\^-", &out);
    }
    b = hi + 1;
  }
  return out + "]";
}

// The one byte of a single-byte set, or -1.
int SingleByte(const ByteSet& set) {
  int found = -1;
  for (int b = 0; b < 256; ++b) {
    if (!set.Has(static_cast<uint8_t>(b))) continue;
    if (found >= 0) return -1;
    found = b;
  }
  return found;
}

// Runs of single-byte elements print as one "literal"; other sets as classes; rules by name.
std::string AlternativeToString(const Grammar& g, const Alternative& alt) {
  if (alt.empty()) return "\"\"";
  std::vector<std::string> parts;
  std::string literal;
  auto flush = [&] {
    if (!literal.empty()) parts.push_back(absl::StrCat("\"", literal, "\""));
    literal.clear();
  };
  for (const Element& e : alt) {
    if (e.kind == Element::Kind::kRule) {
      flush();
      parts.push_back(g.rules()[e.index].name);
      continue;
    }
    const ByteSet& set = g.byte_sets()[e.index];
    if (const int b = SingleByte(set); b >= 0) {
      AppendEscaped(static_cast<uint8_t>(b), "\"\\", &literal);
    } else {
      flush();
      parts.push_back(ClassToString(set));
    }
  }
  flush();
  return absl::StrJoin(parts, " ");
}

std::string RuleToString(const Grammar& g, const Rule& rule) {
  std::vector<std::string> alts;
  for (const Alternative& alt : rule.alternatives) alts.push_back(AlternativeToString(g, alt));
  return absl::StrCat(rule.name, " ::= ", absl::StrJoin(alts, " | "), "\n");
}

}  // namespace

std::string Grammar::ToString() const {
  // The root first, as GBNF writes it; the others in definition order.
  std::string out = RuleToString(*this, rules_[root_]);
  for (size_t r = 0; r < rules_.size(); ++r) {
    if (static_cast<int>(r) != root_) out += RuleToString(*this, rules_[r]);
  }
  return out;
}

// ---- GrammarBuilder: rules and elements ----

int GrammarBuilder::DeclareRule(std::string_view name) {
  std::string unique(name);
  if (next_suffix_.contains(unique)) {
    // name_2, name_3, ...: the counter is kept per name so many rules of one name stay linear.
    int& next = next_suffix_[unique];
    do {
      unique = absl::StrCat(AsAbsl(name), "_", next++);
    } while (next_suffix_.contains(unique));
  }
  next_suffix_.emplace(unique, 2);
  g_.rules_.push_back(Rule{std::move(unique), {}});
  defined_.push_back(false);
  return static_cast<int>(g_.rules_.size()) - 1;
}

void GrammarBuilder::DefineRule(int rule, std::vector<Alternative> alternatives) {
  if (rule < 0 || rule >= static_cast<int>(g_.rules_.size())) {
    Fail(absl::InvalidArgumentError(
        absl::StrCat("grammar: DefineRule of rule ", rule, ", which was never declared")));
    return;
  }
  if (defined_[rule]) {
    Fail(absl::InvalidArgumentError(
        absl::StrCat("grammar: rule \"", g_.rules_[rule].name, "\" is defined twice")));
    return;
  }
  defined_[rule] = true;
  g_.rules_[rule].alternatives = std::move(alternatives);
}

int GrammarBuilder::AddRule(std::string_view name, std::vector<Alternative> alternatives) {
  const int rule = DeclareRule(name);
  DefineRule(rule, std::move(alternatives));
  return rule;
}

Element GrammarBuilder::Bytes(const ByteSet& set) {
  auto [it, inserted] = byte_set_ids_.try_emplace(set, static_cast<int32_t>(g_.byte_sets_.size()));
  if (inserted) g_.byte_sets_.push_back(set);
  return Element{Element::Kind::kBytes, it->second};
}

Alternative GrammarBuilder::Literal(std::string_view bytes) {
  Alternative alt;
  alt.reserve(bytes.size());
  for (char c : bytes) alt.push_back(Byte(static_cast<uint8_t>(c)));
  return alt;
}

void GrammarBuilder::Fail(absl::Status status) {
  if (error_.ok()) error_ = std::move(status);
}

// ---- GrammarBuilder: operators ----

Alternative GrammarBuilder::Shared(std::string_view name, Alternative item) {
  if (item.size() <= 1) return item;
  return {Ref(AddRule(name, {std::move(item)}))};
}

Element GrammarBuilder::Optional(std::string_view name, Alternative item) {
  return Ref(AddRule(name, {std::move(item), {}}));
}

Element GrammarBuilder::Star(std::string_view name, Alternative item) {
  // s ::= item s | "": the self-reference is last, so the matcher replaces the frame instead
  // of pushing one (tail call) and a long repetition keeps its stack flat.
  const int rule = DeclareRule(name);
  item.push_back(Ref(rule));
  DefineRule(rule, {std::move(item), {}});
  return Ref(rule);
}

Element GrammarBuilder::Plus(std::string_view name, Alternative item) {
  Alternative x = Shared(absl::StrCat(AsAbsl(name), "_item"), std::move(item));
  Alternative body = x;
  body.push_back(Star(absl::StrCat(AsAbsl(name), "_star"), x));
  return Ref(AddRule(name, {std::move(body)}));
}

Element GrammarBuilder::NestedOptionals(std::string_view name, const Alternative& x, int count) {
  // Built innermost first; each level refers to the one below as its last element (a tail
  // call), and the levels are deterministic: one more x, or stop.
  Element inner = Optional(absl::StrCat(AsAbsl(name), "_1"), x);
  for (int k = 2; k <= count; ++k) {
    Alternative more = x;
    more.push_back(inner);
    inner = Ref(AddRule(absl::StrCat(AsAbsl(name), "_", k), {std::move(more), {}}));
  }
  return inner;
}

Element GrammarBuilder::Repeat(std::string_view name, Alternative item, int min, int max) {
  if (min < 0 || (max >= 0 && max < min)) {
    Fail(absl::InvalidArgumentError(absl::StrCat("grammar: rule \"", AsAbsl(name), "\": repeat {",
                                                 min, ",", max, "} needs 0 <= min <= max")));
    return Ref(AddRule(name, {{}}));
  }
  // Counts come from requests (a schema's maxLength): refuse before building what Build's
  // default limits would refuse anyway.
  const GrammarLimits defaults;
  if (min > defaults.max_elements || (max >= 0 && max - min > defaults.max_rules)) {
    Fail(absl::InvalidArgumentError(absl::StrCat(
        "grammar: rule \"", AsAbsl(name), "\": repeat {", min, ",", max, "} is too large (at most ",
        defaults.max_elements, " required and ", defaults.max_rules, " optional repetitions)")));
    return Ref(AddRule(name, {{}}));
  }
  if (min == 0 && max < 0) return Star(name, std::move(item));
  const int64_t uses = int64_t{min} + (max < 0 ? 1 : max - min);
  const Alternative x =
      uses > 1 ? Shared(absl::StrCat(AsAbsl(name), "_item"), std::move(item)) : std::move(item);
  Alternative body;
  body.reserve(x.size() * min + 1);
  for (int i = 0; i < min; ++i) body.insert(body.end(), x.begin(), x.end());
  if (max < 0) {
    body.push_back(Star(absl::StrCat(AsAbsl(name), "_star"), x));
  } else if (max > min) {
    body.push_back(NestedOptionals(absl::StrCat(AsAbsl(name), "_upto"), x, max - min));
  }
  return Ref(AddRule(name, {std::move(body)}));
}

// ---- GrammarBuilder::Build ----

namespace {

absl::Status RuleError(const Rule& rule, std::string_view what) {
  return absl::InvalidArgumentError(
      absl::StrCat("grammar: rule \"", rule.name, "\" ", AsAbsl(what)));
}

// Every rule defined with an alternative, every element pointing at something, and the size
// within the limits.
absl::Status CheckShape(const Grammar& g, const std::vector<bool>& defined,
                        const GrammarLimits& limits) {
  const int num_rules = static_cast<int>(g.rules().size());
  const int num_sets = static_cast<int>(g.byte_sets().size());
  if (num_rules > limits.max_rules) {
    return absl::InvalidArgumentError(
        absl::StrCat("grammar: ", num_rules, " rules, more than the limit of ", limits.max_rules));
  }
  int64_t elements = 0;
  for (int r = 0; r < num_rules; ++r) {
    const Rule& rule = g.rules()[r];
    if (!defined[r]) return RuleError(rule, "is referenced but never defined");
    if (rule.alternatives.empty()) return RuleError(rule, "has no alternatives");
    for (const Alternative& alt : rule.alternatives) {
      for (const Element& e : alt) {
        const int limit = e.kind == Element::Kind::kRule ? num_rules : num_sets;
        if (e.index < 0 || e.index >= limit) {
          return RuleError(
              rule, absl::StrCat("refers to ", e.kind == Element::Kind::kRule ? "rule" : "byte set",
                                 " ", e.index, ", which does not exist"));
        }
      }
      elements += static_cast<int64_t>(alt.size());
    }
    if (elements > limits.max_elements) {
      return RuleError(rule, absl::StrCat("takes the grammar past the limit of ",
                                          limits.max_elements, " elements"));
    }
  }
  return absl::OkStatus();
}

// nullable[r]: rule r can match the empty string. Fixpoint: a rule is nullable once one of its
// alternatives consists of nullable rules only (a byte set always consumes a byte).
std::vector<bool> NullableRules(const Grammar& g) {
  std::vector<bool> nullable(g.rules().size(), false);
  auto all_nullable = [&](const Alternative& alt) {
    return std::all_of(alt.begin(), alt.end(), [&](const Element& e) {
      return e.kind == Element::Kind::kRule && nullable[e.index];
    });
  };
  for (bool changed = true; changed;) {
    changed = false;
    for (size_t r = 0; r < g.rules().size(); ++r) {
      if (nullable[r]) continue;
      const auto& alts = g.rules()[r].alternatives;
      if (std::any_of(alts.begin(), alts.end(), all_nullable)) nullable[r] = changed = true;
    }
  }
  return nullable;
}

// left[r]: the rules r can start with before consuming a byte: those at a position of one of
// its alternatives that only nullable rules precede.
std::vector<std::vector<int>> LeftmostRules(const Grammar& g, const std::vector<bool>& nullable) {
  std::vector<std::vector<int>> left(g.rules().size());
  for (size_t r = 0; r < g.rules().size(); ++r) {
    for (const Alternative& alt : g.rules()[r].alternatives) {
      for (const Element& e : alt) {
        if (e.kind != Element::Kind::kRule) break;
        left[r].push_back(e.index);
        if (!nullable[e.index]) break;
      }
    }
    std::sort(left[r].begin(), left[r].end());
    left[r].erase(std::unique(left[r].begin(), left[r].end()), left[r].end());
  }
  return left;
}

// A cycle in the leftmost-rule graph is left recursion: the matcher would expand it forever.
// Iterative depth-first search (a grammar may chain thousands of rules); the error spells the
// cycle out.
absl::Status CheckNoLeftRecursion(const Grammar& g) {
  const std::vector<std::vector<int>> left = LeftmostRules(g, NullableRules(g));
  enum Color : uint8_t { kNew, kOnPath, kDone };
  std::vector<Color> color(left.size(), kNew);
  struct Frame {
    int rule;
    size_t next_edge;
  };
  std::vector<Frame> path;
  for (size_t start = 0; start < left.size(); ++start) {
    if (color[start] != kNew) continue;
    path.push_back({static_cast<int>(start), 0});
    color[start] = kOnPath;
    while (!path.empty()) {
      Frame& top = path.back();
      if (top.next_edge == left[top.rule].size()) {
        color[top.rule] = kDone;
        path.pop_back();
        continue;
      }
      const int next = left[top.rule][top.next_edge++];
      if (color[next] == kOnPath) {
        std::vector<std::string> cycle;
        auto it =
            std::find_if(path.begin(), path.end(), [&](const Frame& f) { return f.rule == next; });
        for (; it != path.end(); ++it) cycle.push_back(g.rules()[it->rule].name);
        cycle.push_back(g.rules()[next].name);
        return RuleError(g.rules()[next],
                         absl::StrCat("is left-recursive (", absl::StrJoin(cycle, " -> "), ")"));
      }
      if (color[next] == kNew) {
        color[next] = kOnPath;
        path.push_back({next, 0});
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::shared_ptr<const Grammar>> GrammarBuilder::Build(
    int root, const GrammarLimits& limits) && {
  if (!error_.ok()) return error_;
  if (root < 0 || root >= static_cast<int>(g_.rules_.size())) {
    return absl::InvalidArgumentError(absl::StrCat("grammar: root rule ", root, " does not exist (",
                                                   g_.rules_.size(), " rules)"));
  }
  if (absl::Status s = CheckShape(g_, defined_, limits); !s.ok()) return s;
  if (absl::Status s = CheckNoLeftRecursion(g_); !s.ok()) return s;
  g_.root_ = root;
  return std::make_shared<const Grammar>(std::move(g_));
}

}  // namespace attnres::structured
