// Test helpers for JSON Schema grammars (server/structured/json_schema_grammar.h): a schema's
// grammar as a text matcher, and expectations on accepted and refused texts and on errors.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/structured/json_schema_grammar.h"
#include "server/structured/token_constraint.h"

namespace attnres::structured {

// The grammar of `schema` (JSON text) as a matcher; a schema that does not compile fails the
// test and accepts nothing.
class Matcher {
 public:
  explicit Matcher(std::string_view schema) {
    absl::StatusOr<std::shared_ptr<const Grammar>> g = JsonSchemaGrammarFromText(schema);
    EXPECT_TRUE(g.ok()) << g.status() << "\nschema: " << schema;
    if (g.ok()) automaton_ = std::make_unique<GrammarAutomaton>(*g);
  }
  bool Accepts(std::string_view text) {
    if (automaton_ == nullptr) return false;
    absl::StatusOr<bool> ok = automaton_->Accepts(text);
    EXPECT_TRUE(ok.ok()) << ok.status();
    return ok.ok() && *ok;
  }

 private:
  std::unique_ptr<GrammarAutomaton> automaton_;
};

inline void ExpectTexts(std::string_view schema, const std::vector<std::string>& accepted,
                        const std::vector<std::string>& refused) {
  SCOPED_TRACE(schema);
  Matcher m(schema);
  for (const std::string& text : accepted) EXPECT_TRUE(m.Accepts(text)) << "accepts " << text;
  for (const std::string& text : refused) EXPECT_FALSE(m.Accepts(text)) << "refuses " << text;
}

// The schema is refused with an error whose message holds `part` (a location, a reason).
inline void ExpectError(std::string_view schema, std::string_view part) {
  absl::StatusOr<std::shared_ptr<const Grammar>> g = JsonSchemaGrammarFromText(schema);
  ASSERT_FALSE(g.ok()) << "schema compiled: " << schema;
  EXPECT_EQ(g.status().code(), absl::StatusCode::kInvalidArgument) << g.status();
  EXPECT_THAT(std::string(g.status().message()), ::testing::HasSubstr(std::string(part)))
      << "schema: " << schema;
}

}  // namespace attnres::structured
