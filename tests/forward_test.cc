// CPU forward pass: zero-query equivalence with the standard model (ATTNRES.md §6), paged-KV
// chunking invariance, shape/dtype load errors, and mix-weight bookkeeping.
#include <cmath>
#include <fstream>
#include <numeric>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "models/weight_spec.h"
#include "tests/test_models.h"

namespace attnres {
namespace {

using testing::AllLogits;
using testing::LoadCpuModel;
using testing::MakeModel;
using testing::RelL2;
using ::testing::HasSubstr;

std::vector<int32_t> Prompt(int n, int vocab, uint32_t seed) {
  std::vector<int32_t> ids(n);
  for (int i = 0; i < n; ++i) ids[i] = static_cast<int32_t>((seed * 2654435761u + i * 40503u) % vocab);
  return ids;
}

ModelConfig Tiny(ResidualMode mode, int layers, int block_size) {
  ModelConfig c = *RandomModelPreset("tiny-std");
  c.num_layers = layers;
  c.residual_mode = mode;
  c.attn_res_block_size = block_size;
  return c;
}

TEST(Forward, ZeroQueriesReproduceTheStandardModel) {
  // Same seed => every shared tensor is identical; only the AttnRes tensors differ.
  for (auto [mode, layers, bs] : {std::tuple{ResidualMode::kBlock, 5, 2},
                                  std::tuple{ResidualMode::kBlock, 4, 1},
                                  std::tuple{ResidualMode::kFull, 3, 0}}) {
    ModelConfig std_cfg = Tiny(ResidualMode::kStandard, layers, 0);
    std_cfg.rms_norm_eps = 1e-10;  // the bridge holds up to eps (eps behaves as eps * n^2)
    ModelConfig ar_cfg = std_cfg;
    ar_cfg.residual_mode = mode;
    ar_cfg.attn_res_block_size = bs;
    RandomModelOptions o;
    o.seed = 5;
    auto std_model = LoadCpuModel(MakeModel("zq_std", std_cfg, o));
    o.query_std = 0.0;
    auto ar_model = LoadCpuModel(MakeModel("zq_ar", ar_cfg, o));
    const auto ids = Prompt(11, std_cfg.vocab_size, 3);
    const auto a = AllLogits(std_model, ids), b = AllLogits(ar_model, ids);
    for (size_t t = 0; t < ids.size(); ++t) {
      EXPECT_LT(RelL2(b[t], a[t]), 1e-5) << ResidualModeName(mode) << " Bs=" << bs << " t=" << t;
    }
  }
}

TEST(Forward, NonZeroQueriesChangeTheOutput) {
  ModelConfig cfg = Tiny(ResidualMode::kBlock, 5, 2);
  RandomModelOptions o;
  o.seed = 5;
  auto with_q = LoadCpuModel(MakeModel("nz_q", cfg, o));
  o.query_std = 0.0;
  auto zero_q = LoadCpuModel(MakeModel("nz_zero", cfg, o));
  const auto ids = Prompt(6, cfg.vocab_size, 4);
  EXPECT_GT(RelL2(AllLogits(with_q, ids).back(), AllLogits(zero_q, ids).back()), 1e-3);
}

TEST(Forward, ChunkedPrefillAndDecodeMatchOneShotPrefill) {
  for (const char* preset : {"tiny-std", "tiny-block", "tiny-full"}) {
    RandomModelOptions o;
    o.seed = 9;
    o.qk_norm = std::string(preset) == "tiny-full";
    auto model = LoadCpuModel(MakeModel(preset, *RandomModelPreset(preset), o));
    const auto ids = Prompt(19, model.config.vocab_size, 7);
    const auto whole = AllLogits(model, ids, {}, 4);
    std::vector<int> chunks = {7, 5};
    for (int i = 0; i < 7; ++i) chunks.push_back(1);  // decode steps
    for (int page_size : {1, 3, 16}) {
      const auto pieces = AllLogits(model, ids, chunks, page_size);
      for (size_t t = 0; t < ids.size(); ++t) {
        ASSERT_LT(RelL2(pieces[t], whole[t]), 1e-5) << preset << " t=" << t;
      }
    }
  }
}

TEST(Forward, MixWeightsAreDistributions) {
  RandomModelOptions o;
  auto model = LoadCpuModel(MakeModel("mixw", *RandomModelPreset("tiny-block"), o));
  const MixLayout layout = MixLayout::For(model.config);
  std::vector<float> w;
  AllLogits(model, Prompt(5, 300, 1), {}, 4, &w);
  ASSERT_EQ(static_cast<int>(w.size()), layout.total_weights());
  for (int m = 0; m < layout.num_mixes; ++m) {
    double sum = 0;
    for (int k = layout.weight_offset[m]; k < layout.weight_offset[m + 1]; ++k) {
      EXPECT_GE(w[k], 0.0f);
      sum += w[k];
    }
    EXPECT_NEAR(sum, 1.0, 1e-5) << "mix " << m;
  }
  EXPECT_EQ(w[0], 1.0f);  // layer 0 attention: one source
}

TEST(Forward, LoadErrorsNameFileTensorAndShape) {
  RandomModelOptions o;
  ModelConfig cfg = *RandomModelPreset("tiny-block");
  auto dir = MakeModel("bad_shape", cfg, o);
  // Claim a bigger FFN than the weights have: the first mismatching tensor is reported.
  ModelConfig wrong = cfg;
  wrong.intermediate_size = 161;
  std::ofstream(dir / "config.json") << ModelConfigToJson(wrong);
  auto config = LoadModelConfig(dir);
  ASSERT_TRUE(config.ok());
  auto store = SafetensorsStore::Open(dir);
  ASSERT_TRUE(store.ok());
  auto w = LoadCpuWeights(*config, **store);
  ASSERT_FALSE(w.ok());
  EXPECT_THAT(std::string(w.status().message()),
              HasSubstr("model.safetensors: tensor \"model.layers.0.mlp.gate_proj.weight\" has "
                        "shape [160, 64], expected [161, 64]"));
  // A standard config over an AttnRes checkpoint loads (extra tensors are ignored), but an
  // AttnRes config over a standard checkpoint names the missing query.
  auto std_dir = MakeModel("missing", *RandomModelPreset("tiny-std"), o);
  ModelConfig ar = *RandomModelPreset("tiny-std");
  ar.residual_mode = ResidualMode::kBlock;
  ar.attn_res_block_size = 2;
  auto std_store = SafetensorsStore::Open(std_dir);
  auto w2 = LoadCpuWeights(ar, **std_store);
  ASSERT_FALSE(w2.ok());
  EXPECT_THAT(std::string(w2.status().message()),
              HasSubstr("missing tensor \"model.layers.0.self_attention_res_norm.weight\" "
                        "(expected shape [64])"));
}

}  // namespace
}  // namespace attnres
