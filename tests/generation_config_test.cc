// generation_config.json parsing: the keys read, unset keys, and type errors that name the file
// and the key (ranges are the API's: tests/request_validation_test.cc).
#include "models/generation_config.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace attnres {
namespace {

using ::testing::HasSubstr;

TEST(GenerationConfig, ReadsTheSamplingDefaultsAndEosIds) {
  auto g = ParseGenerationConfig(
      R"({"temperature": 0.6, "top_p": 0.9, "top_k": 50, "min_p": 0.05,
          "repetition_penalty": 1.1, "max_new_tokens": 256, "eos_token_id": [128001, 128009],
          "do_sample": true, "transformers_version": "4.45.0"})",
      "m/generation_config.json");
  ASSERT_TRUE(g.ok()) << g.status();
  EXPECT_FLOAT_EQ(*g->temperature, 0.6f);
  EXPECT_FLOAT_EQ(*g->top_p, 0.9f);
  EXPECT_EQ(*g->top_k, 50);
  EXPECT_FLOAT_EQ(*g->min_p, 0.05f);
  EXPECT_FLOAT_EQ(*g->repetition_penalty, 1.1f);
  EXPECT_EQ(*g->max_new_tokens, 256);
  EXPECT_EQ(g->eos_token_ids, (std::vector<int32_t>{128001, 128009}));

  auto empty = ParseGenerationConfig(R"({"eos_token_id": 2, "temperature": null})", "x");
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_FALSE(empty->temperature.has_value());
  EXPECT_FALSE(empty->top_k.has_value());
  EXPECT_EQ(empty->eos_token_ids, (std::vector<int32_t>{2}));
}

TEST(GenerationConfig, WrongTypesAreErrorsNamingFileAndKey) {
  const std::pair<const char*, const char*> cases[] = {
      {R"({"temperature": "hot"})", "\"temperature\" must be a number"},
      {R"({"top_k": 40.5})", "\"top_k\" must be an integer"},
      {R"({"max_new_tokens": 99999999999})", "\"max_new_tokens\" must be in"},
      {R"({"eos_token_id": [2, "x"]})", "\"eos_token_id\" must hold integers only"},
      {R"({"eos_token_id": 4294967298})", "\"eos_token_id\" ids must be in [0, 2^31)"},
      {R"([1, 2])", "not a JSON object"},
  };
  for (const auto& [json, expect] : cases) {
    auto g = ParseGenerationConfig(json, "m/generation_config.json");
    ASSERT_FALSE(g.ok()) << json;
    EXPECT_THAT(std::string(g.status().message()), HasSubstr("m/generation_config.json")) << json;
    EXPECT_THAT(std::string(g.status().message()), HasSubstr(expect)) << json;
  }
}

}  // namespace
}  // namespace attnres
