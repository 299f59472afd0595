// attnres-make-model: command-line front end of WriteRandomModel.
#include <cstdio>

#include "CLI/CLI.hpp"
#include "models/tools/random_model.h"

int main(int argc, char** argv) {
  CLI::App app{"Write a model directory with seeded random weights"};
  std::string out, preset = "tiny-block", dtype = "f32", attn_res;
  attnres::RandomModelOptions o;
  int block_size = -1, layers = 0, hidden = 0, ffn = 0, heads = 0, kv_heads = 0, head_dim = 0,
      vocab = 0;
  app.add_option("--out", out, "output directory")->required();
  app.add_option("--preset", preset, "tiny-std|tiny-block|tiny-full|small-block|llama-1b[-block]|"
                                     "llama-8b[-block]");
  app.add_option("--seed", o.seed, "weights seed");
  app.add_option("--dtype", dtype, "f32|bf16|f16")->check(CLI::IsMember({"f32", "bf16", "f16"}));
  app.add_option("--query-std", o.query_std, "pseudo-query std (0: zero queries)");
  app.add_flag("--qk-norm", o.qk_norm, "write Qwen3-style q_norm/k_norm");
  app.add_option("--shards", o.num_shards, "number of safetensors shards");
  app.add_option("--tokenizer", o.tokenizer_json, "tokenizer.json to copy");
  app.add_option("--attn-res", attn_res, "override: none|block|full")
      ->check(CLI::IsMember({"none", "block", "full"}));
  app.add_option("--block-size", block_size, "override attn_res_block_size");
  app.add_option("--layers", layers, "override num_hidden_layers");
  app.add_option("--hidden", hidden, "override hidden_size");
  app.add_option("--ffn", ffn, "override intermediate_size");
  app.add_option("--heads", heads, "override num_attention_heads");
  app.add_option("--kv-heads", kv_heads, "override num_key_value_heads");
  app.add_option("--head-dim", head_dim, "override head_dim");
  app.add_option("--vocab", vocab, "override vocab_size");
  CLI11_PARSE(app, argc, argv);

  auto config = attnres::RandomModelPreset(preset);
  if (!config.ok()) {
    std::fprintf(stderr, "error: %s\n", std::string(config.status().message()).c_str());
    return 1;
  }
  attnres::ModelConfig& c = *config;
  for (auto [value, field] : {std::pair{layers, &c.num_layers}, {hidden, &c.hidden_size},
                              {ffn, &c.intermediate_size}, {heads, &c.num_heads},
                              {kv_heads, &c.num_kv_heads}, {head_dim, &c.head_dim},
                              {vocab, &c.vocab_size}}) {
    if (value > 0) *field = value;
  }
  if (block_size >= 0) c.attn_res_block_size = block_size;
  if (attn_res == "none") c.residual_mode = attnres::ResidualMode::kStandard;
  if (attn_res == "full") c.residual_mode = attnres::ResidualMode::kFull;
  if (attn_res == "block" || (attn_res.empty() && block_size > 0)) {
    if (c.attn_res_block_size <= 0) c.attn_res_block_size = 1;
    c.residual_mode = attnres::ResidualMode::kBlock;
  }
  if (attn_res.empty() && block_size == 0) c.residual_mode = attnres::ResidualMode::kStandard;
  c.architecture = c.attn_res() ? "AttnResLlamaForCausalLM" : "LlamaForCausalLM";
  o.dtype = dtype == "bf16" ? attnres::DType::kBF16
            : dtype == "f16" ? attnres::DType::kF16 : attnres::DType::kF32;
  // Validate by round-tripping through the same parser the server uses.
  auto check = attnres::ParseModelConfig(attnres::ModelConfigToJson(c), "generated config");
  if (!check.ok()) {
    std::fprintf(stderr, "error: %s\n", std::string(check.status().message()).c_str());
    return 1;
  }
  if (auto st = attnres::WriteRandomModel(c, o, out); !st.ok()) {
    std::fprintf(stderr, "error: %s\n", std::string(st.message()).c_str());
    return 1;
  }
  std::printf("wrote %s (%s, %s)\n", out.c_str(), c.architecture.c_str(),
              attnres::ResidualModeName(c.residual_mode));
  return 0;
}
