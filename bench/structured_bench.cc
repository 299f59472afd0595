// What structured outputs cost the engine thread per generated token (CPU): the token mask of
// each step (server/structured/token_constraint.h) while a JSON document of the schema is
// "generated" token by token (the tokenizer's own tokens of it), for the first request with a
// schema (every state new) and for the next one sharing its masks (GrammarMasks), then the
// sampler's KeepAllowed over a row of the vocabulary. Prints a table; no targets.
//
//   attnres-structured-bench [--tokenizer tests/data/tokenizer/llama3/tokenizer.json]
//                            [--vocab-size N] [--repeat R]
// --vocab-size pads the tokenizer's vocabulary with synthetic tokens (random 2-8 letter words,
// seeded) up to N, to see a 128 K vocabulary's cost with the 50 K test tokenizer.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "models/sampler.h"
#include "models/tokenizer.h"
#include "server/structured/json_schema_grammar.h"
#include "server/structured/token_constraint.h"

namespace attnres {
namespace {

using Clock = std::chrono::steady_clock;

double MsSince(Clock::time_point start) {
  return std::chrono::duration<double, std::milli>(Clock::now() - start).count();
}

// A schema with the usual parts (strings, numbers, enums, nested objects and arrays) and a
// document of it, pretty-printed as models tend to write.
constexpr char kSchema[] = R"({
  "type": "object",
  "properties": {
    "name": {"type": "string", "maxLength": 64},
    "age": {"type": "integer"},
    "email": {"type": "string"},
    "role": {"enum": ["admin", "editor", "viewer"]},
    "active": {"type": "boolean"},
    "score": {"type": "number"},
    "address": {
      "type": "object",
      "properties": {"street": {"type": "string"}, "city": {"type": "string"},
                     "zip": {"type": "string", "maxLength": 10}},
      "required": ["street", "city"]
    },
    "tags": {"type": "array", "items": {"type": "string"}, "maxItems": 8},
    "history": {
      "type": "array",
      "items": {"type": "object", "properties": {"year": {"type": "integer"},
                                                 "event": {"type": "string"}},
                "required": ["year", "event"]}
    }
  },
  "required": ["name", "age", "role", "active", "address", "tags", "history"]
})";

constexpr char kDocument[] = R"({
  "name": "Ada Lovelace",
  "age": 36,
  "email": "ada@example.org",
  "role": "editor",
  "active": true,
  "score": 97.25,
  "address": {"street": "12 St James's Square", "city": "London", "zip": "SW1Y 4JH"},
  "tags": ["mathematics", "analytical engine", "poetry", "notes"],
  "history": [
    {"year": 1833, "event": "meets Charles Babbage"},
    {"year": 1843, "event": "publishes the Notes, with the first published program"}
  ]
})";

struct Walk {
  double total_ms = 0, max_ms = 0;
  int tokens = 0;
};

// Masks and accepts `ids` one by one, as the engine does per step.
Walk Generate(structured::TokenConstraint& c, const std::vector<int32_t>& ids) {
  Walk w;
  structured::TokenConstraint::State state = c.initial();
  for (const int32_t id : ids) {
    const auto start = Clock::now();
    absl::StatusOr<std::shared_ptr<const TokenBitmask>> mask = c.AllowedTokens(state);
    const double ms = MsSince(start);
    if (!mask.ok() || !(*mask)->Has(id)) {
      std::fprintf(stderr, "token %d refused at step %d: %s\n", id, w.tokens,
                   mask.ok() ? "not in the mask" : std::string(mask.status().message()).c_str());
      std::exit(1);
    }
    state = *c.Accept(state, id);
    w.total_ms += ms;
    w.max_ms = std::max(w.max_ms, ms);
    ++w.tokens;
  }
  if (!c.IsFinished(state)) {
    std::fprintf(stderr, "the document did not complete the grammar\n");
    std::exit(1);
  }
  return w;
}

int Run(const std::string& tokenizer_path, int vocab_size, int repeat) {
  auto tokenizer = Tokenizer::FromFile(tokenizer_path);
  if (!tokenizer.ok()) {
    std::fprintf(stderr, "%s\n", std::string(tokenizer.status().message()).c_str());
    return 1;
  }
  const int32_t base = (*tokenizer)->vocab_size();
  std::vector<std::string> bytes(std::max<int32_t>(base, vocab_size));
  std::vector<int32_t> excluded;
  for (int32_t id = 0; id < base; ++id) {
    bytes[id] = (*tokenizer)->TokenBytes(id);
    if ((*tokenizer)->IsSpecial(id)) excluded.push_back(id);
  }
  std::mt19937 rng(7);
  for (size_t id = base; id < bytes.size(); ++id) {
    std::string word = (rng() % 2) ? " " : "";
    for (int n = 2 + rng() % 7; n > 0; --n) word += static_cast<char>('a' + rng() % 26);
    bytes[id] = word;
  }
  const int32_t V = static_cast<int32_t>(bytes.size());
  auto start = Clock::now();
  auto vocabulary = std::make_shared<const structured::GrammarVocabulary>(bytes, excluded);
  const double vocab_ms = MsSince(start);

  start = Clock::now();
  auto grammar = structured::JsonSchemaGrammarFromText(kSchema);
  const double compile_ms = MsSince(start);
  if (!grammar.ok()) {
    std::fprintf(stderr, "%s\n", std::string(grammar.status().message()).c_str());
    return 1;
  }
  const std::vector<int32_t> ids = (*tokenizer)->Encode(kDocument, false);

  std::printf("vocabulary %d tokens (%d of the tokenizer), document %zu tokens\n", V, base,
              ids.size());
  std::printf("%-44s %10s %10s %10s\n", "", "total ms", "ms/token", "max ms");
  std::printf("%-44s %10.2f\n", "GrammarVocabulary (once per server)", vocab_ms);
  std::printf("%-44s %10.2f\n", "schema compile (per request)", compile_ms);
  for (int r = 0; r < repeat; ++r) {
    auto masks = std::make_shared<structured::GrammarMasks>(*grammar, vocabulary);
    structured::TokenConstraint first(masks, excluded);  // the special ids end it, as EOS
    const Walk cold = Generate(first, ids);
    structured::TokenConstraint second(masks, excluded);
    const Walk warm = Generate(second, ids);
    std::printf("%-44s %10.2f %10.4f %10.3f\n", "masks, first request (all states new)",
                cold.total_ms, cold.total_ms / cold.tokens, cold.max_ms);
    std::printf("%-44s %10.2f %10.4f %10.3f\n", "masks, next request (shared GrammarMasks)",
                warm.total_ms, warm.total_ms / warm.tokens, warm.max_ms);
    std::printf("%-44s %10d\n", "automaton states", masks->automaton().num_states());
  }
  TokenBitmask allowed(V);
  for (int32_t id = 0; id < V; id += 3) allowed.Set(id);
  std::vector<float> logits(V, 0.5f);
  constexpr int kRows = 200;
  start = Clock::now();
  for (int i = 0; i < kRows; ++i) KeepAllowed(allowed, logits);
  std::printf("%-44s %10s %10.4f\n", "KeepAllowed, one row (sampler)", "", MsSince(start) / kRows);
  return 0;
}

}  // namespace
}  // namespace attnres

int main(int argc, char** argv) {
  CLI::App app("Structured outputs: the engine thread's cost per generated token");
  std::string tokenizer = "tests/data/tokenizer/llama3/tokenizer.json";
  int vocab_size = 0, repeat = 3;
  app.add_option("--tokenizer", tokenizer, "tokenizer.json")->check(CLI::ExistingFile);
  app.add_option("--vocab-size", vocab_size, "pad the vocabulary with synthetic tokens to N")
      ->check(CLI::Range(0, 1 << 20));
  app.add_option("--repeat", repeat, "passes")->check(CLI::Range(1, 100));
  CLI11_PARSE(app, argc, argv);
  return attnres::Run(tokenizer, vocab_size, repeat);
}
