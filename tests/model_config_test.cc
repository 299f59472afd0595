// config.json parsing, validation messages, and the AttnRes mix layout.
#include "gtest/gtest.h"
#include "gmock/gmock.h"
#include "models/model_config.h"
#include "nlohmann/json.hpp"

namespace attnres {
namespace {

using ::testing::HasSubstr;

nlohmann::json BaseConfig() {
  return {{"hidden_size", 64},        {"intermediate_size", 128}, {"num_hidden_layers", 5},
          {"num_attention_heads", 4}, {"num_key_value_heads", 2}, {"vocab_size", 300},
          {"rms_norm_eps", 1e-5},     {"rope_theta", 10000.0},    {"eos_token_id", {1, 2}},
          {"bos_token_id", 0},        {"max_position_embeddings", 256}};
}

TEST(ModelConfig, ParsesLlamaKeysAndDefaults) {
  auto c = ParseModelConfig(BaseConfig().dump(), "x/config.json");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->head_dim, 16);
  EXPECT_EQ(c->residual_mode, ResidualMode::kStandard);
  EXPECT_EQ(c->eos_token_ids, (std::vector<int32_t>{1, 2}));
  EXPECT_FALSE(c->tie_word_embeddings);
}

TEST(ModelConfig, ParsesAttnResAndRopeScaling) {
  auto j = BaseConfig();
  j["attn_res_block_size"] = 2;
  j["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8.0}, {"low_freq_factor", 1.0},
                       {"high_freq_factor", 4.0}, {"original_max_position_embeddings", 128}};
  auto c = ParseModelConfig(j.dump(), "x");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->residual_mode, ResidualMode::kBlock);
  ASSERT_TRUE(c->rope_scaling.has_value());
  EXPECT_EQ(c->rope_scaling->original_max_position_embeddings, 128);
  j["attn_res_mode"] = "full";
  EXPECT_EQ(ParseModelConfig(j.dump(), "x")->residual_mode, ResidualMode::kFull);
}

TEST(ModelConfig, ErrorsNameFileAndKey) {
  struct Case { const char* key; nlohmann::json value; const char* expect; };
  const Case cases[] = {
      {"hidden_size", nullptr, "\"hidden_size\" is required"},
      {"num_key_value_heads", 3, "\"num_key_value_heads\" must divide"},
      {"vocab_size", "big", "\"vocab_size\" must be an integer"},
      {"num_hidden_layers", 0, "\"num_hidden_layers\" must be in [1"},
      {"attn_res_mode", "weird", "\"attn_res_mode\" must be"},
      {"eos_token_id", 999, "\"eos_token_id\" ids must be in"},
      {"rope_scaling", {{"rope_type", "yarn"}}, "rope_scaling.rope_type"},
      {"attention_bias", true, "attention_bias"},
      {"hidden_act", "gelu", "hidden_act"},
      // Wrong JSON types are errors, not exceptions (found by tests/fuzz/model_config_fuzz).
      {"model_type", 1e-05, "\"model_type\" must be a string"},
      {"hidden_act", 7, "\"hidden_act\" must be a string"},
      {"rope_scaling", {{"rope_type", 3}}, "\"rope_type\" must be a string"},
      {"rope_scaling", {{"type", false}}, "\"type\" must be a string"},
      {"attn_res_mode", 2, "\"attn_res_mode\" must be a string"},
      // An id past int32 must not wrap into a valid one (4294967552 = 2^32 + 256).
      {"eos_token_id", {1, 4294967552ULL}, "\"eos_token_id\" ids must be in [0, 2^31)"},
      {"eos_token_id", -3, "\"eos_token_id\" ids must be in [0, 2^31)"},
  };
  for (const Case& c : cases) {
    auto j = BaseConfig();
    if (c.value.is_null()) j.erase(c.key); else j[c.key] = c.value;
    auto r = ParseModelConfig(j.dump(), "dir/config.json");
    ASSERT_FALSE(r.ok()) << c.key;
    EXPECT_THAT(std::string(r.status().message()), HasSubstr("dir/config.json")) << c.key;
    EXPECT_THAT(std::string(r.status().message()), HasSubstr(c.expect)) << c.key;
  }
  EXPECT_FALSE(ParseModelConfig("{not json", "f").ok());
  // A literal past double's range is refused (nlohmann rejects it; ReadDouble would too).
  auto j = BaseConfig().dump();
  j.insert(j.size() - 1, ", \"rope_theta\": 1e999");
  auto r = ParseModelConfig(j, "dir/config.json");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(r.status().message()), HasSubstr("dir/config.json"));
}

TEST(MixLayout, BlockCountsFollowAttnResFormulas) {
  for (int Lt : {1, 2, 5, 12, 13}) {
    for (int Bs : {1, 2, 3, 4, 12}) {
      ModelConfig c;
      c.num_layers = Lt;
      c.residual_mode = ResidualMode::kBlock;
      c.attn_res_block_size = Bs;
      MixLayout m = MixLayout::For(c);
      ASSERT_EQ(m.num_mixes, 2 * Lt + 1);
      EXPECT_EQ(m.num_bank_slots, (Lt + Bs - 1) / Bs);
      EXPECT_EQ(m.num_sources[0], 1);
      for (int l = 1; l < Lt; ++l) EXPECT_EQ(m.num_sources[2 * l], (l - 1) / Bs + 2);
      for (int l = 0; l < Lt; ++l) EXPECT_EQ(m.num_sources[2 * l + 1], l / Bs + 2);
      EXPECT_EQ(m.num_sources[2 * Lt], (Lt + Bs - 1) / Bs + 1);
      for (int s = 0; s < 2 * Lt; ++s) EXPECT_EQ(m.snapshot_before[s], s % (2 * Bs) == 0);
      // Two-phase: a snapshot's later mixes are the rest of its block (and, after the last
      // snapshot, the final mix), and each reads exactly one more source than the snapshot's
      // own mix: the bank it completed, then its prefix.
      for (int s = 0; s < 2 * Lt; ++s) {
        if (!m.snapshot_before[s]) {
          EXPECT_EQ(m.later_mixes[s], 0);
          continue;
        }
        const bool last = s + 2 * Bs >= 2 * Lt;
        EXPECT_EQ(m.later_mixes[s], last ? 2 * Lt - s : 2 * Bs - 1) << "Lt " << Lt << " s " << s;
        for (int q = s + 1; q <= s + m.later_mixes[s]; ++q) {
          EXPECT_EQ(m.num_sources[q], m.num_sources[s] + 1) << "Lt " << Lt << " mix " << q;
        }
      }
    }
  }
}

TEST(MixLayout, FullModeHasOneSourcePerSublayer) {
  ModelConfig c;
  c.num_layers = 4;
  c.residual_mode = ResidualMode::kFull;
  MixLayout m = MixLayout::For(c);
  for (int s = 0; s <= 8; ++s) EXPECT_EQ(m.num_sources[s], s + 1);
  EXPECT_EQ(m.num_bank_slots, 8);
  EXPECT_EQ(m.total_weights(), 45);
  // Every sublayer snapshots: only the final mix follows the last snapshot.
  const std::vector<int> later = {0, 0, 0, 0, 0, 0, 0, 1};
  EXPECT_EQ(m.later_mixes, later);
}

TEST(MixLayout, StandardHasNoMixes) {
  ModelConfig c;
  c.num_layers = 3;
  EXPECT_EQ(MixLayout::For(c).num_mixes, 0);
}

}  // namespace
}  // namespace attnres
