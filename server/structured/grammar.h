// A byte-level context-free grammar for constrained decoding (structured outputs): rules, each a
// list of alternatives, each a sequence of elements that match one byte out of a set or a whole
// rule. Byte level, so a grammar speaks UTF-8 by spelling out its byte sequences, and a token's
// bytes are matched as they are (a character split across tokens needs no special case).
// Built through GrammarBuilder, which refuses what a pushdown matcher cannot run: undefined rules
// and left recursion. Immutable once built; shared by every request that uses it.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace attnres::structured {

// A set of bytes (256 bits).
class ByteSet {
 public:
  static ByteSet Of(uint8_t byte);
  static ByteSet Range(uint8_t lo, uint8_t hi);  // [lo, hi], both included
  ByteSet& Add(uint8_t byte);
  ByteSet& AddRange(uint8_t lo, uint8_t hi);
  ByteSet& AddAll(const ByteSet& other);
  ByteSet& Remove(uint8_t byte);
  ByteSet Complement() const;
  bool Has(uint8_t byte) const { return (bits_[byte >> 6] >> (byte & 63)) & 1; }
  bool empty() const;
  friend bool operator==(const ByteSet&, const ByteSet&) = default;
  template <typename H>
  friend H AbslHashValue(H h, const ByteSet& s) {
    return H::combine(std::move(h), s.bits_);
  }

 private:
  std::array<uint64_t, 4> bits_{};
};

struct Element {
  enum class Kind : uint8_t { kBytes, kRule };
  Kind kind = Kind::kBytes;
  int32_t index = 0;  // kBytes: into Grammar::byte_sets(); kRule: into Grammar::rules()
  friend bool operator==(const Element&, const Element&) = default;
};

// A sequence of elements; empty matches the empty string.
using Alternative = std::vector<Element>;

struct Rule {
  std::string name;                       // unique within the grammar
  std::vector<Alternative> alternatives;  // at least one
};

class Grammar {
 public:
  const std::vector<Rule>& rules() const { return rules_; }
  const std::vector<ByteSet>& byte_sets() const { return byte_sets_; }
  int root() const { return root_; }
  // GBNF-like text (`name ::= "lit" [a-z] other | ...`), one rule per line: for errors, tests
  // and logs.
  std::string ToString() const;

 private:
  friend class GrammarBuilder;
  std::vector<Rule> rules_;
  std::vector<ByteSet> byte_sets_;
  int root_ = 0;
};

// Limits Build enforces, so a request's schema cannot make a grammar of unbounded size.
struct GrammarLimits {
  int max_rules = 1 << 16;
  int max_elements = 1 << 20;  // over all alternatives of all rules
};

class GrammarBuilder {
 public:
  // A new rule to be defined later (references may come first). The name is made unique by a
  // numeric suffix where taken.
  int DeclareRule(std::string_view name);
  void DefineRule(int rule, std::vector<Alternative> alternatives);
  int AddRule(std::string_view name, std::vector<Alternative> alternatives);

  Element Bytes(const ByteSet& set);  // equal sets share one entry
  Element Byte(uint8_t byte) { return Bytes(ByteSet::Of(byte)); }
  Element Ref(int rule) const { return Element{Element::Kind::kRule, rule}; }
  Alternative Literal(std::string_view bytes);  // one element per byte

  // Rules for the usual operators over a sequence, named after `name`. Repetitions are
  // right-recursive (`s ::= item s | ""`), so an item that can match the empty string makes
  // them left-recursive, which Build refuses.
  Element Optional(std::string_view name, Alternative item);  // item?
  Element Star(std::string_view name, Alternative item);      // item*
  Element Plus(std::string_view name, Alternative item);      // item+
  // item{min,max}; max < 0: unbounded. Needs 0 <= min and (max < 0 or min <= max). Grows by
  // min + (max - min) elements and max - min small rules (nested optionals), not by copies of
  // the item; counts past the default GrammarLimits are refused at once (Build reports it).
  Element Repeat(std::string_view name, Alternative item, int min, int max);

  // Checks that every declared rule is defined with at least one alternative, that no rule can
  // reach itself without consuming a byte (left recursion), and the limits; errors name the rule.
  absl::StatusOr<std::shared_ptr<const Grammar>> Build(int root,
                                                       const GrammarLimits& limits = {}) &&;

 private:
  // `item` as a single element: itself when it is one, else a rule `name ::= item`, so that
  // repetitions refer to it instead of copying it.
  Alternative Shared(std::string_view name, Alternative item);
  // x_k ::= x x_{k-1} | "" down to x_1 ::= x | "": x{0,count}.
  Element NestedOptionals(std::string_view name, const Alternative& x, int count);
  void Fail(absl::Status status);  // keeps the first misuse for Build to report

  Grammar g_;
  std::vector<bool> defined_;
  absl::flat_hash_map<ByteSet, int32_t> byte_set_ids_;  // byte set -> index in g_.byte_sets_
  absl::flat_hash_map<std::string, int> next_suffix_;   // taken name -> next suffix to try
  absl::Status error_;
};

}  // namespace attnres::structured
