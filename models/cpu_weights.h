// The model's weights in fp32 host memory, loaded and shape-checked from safetensors, with the
// AttnRes queries folded (u = gamma * w). Used by the CPU backend; owns no KV cache.
#pragma once

#include <cstdint>
#include <filesystem>
#include <vector>

#include "absl/status/statusor.h"
#include "models/model_config.h"
#include "models/safetensors.h"

namespace attnres {

struct CpuLayerWeights {
  std::vector<float> wq;          // [q_dim, d]
  std::vector<float> wk, wv;      // [kv_dim, d]
  std::vector<float> wo;          // [d, q_dim]
  std::vector<float> w_gate, w_up;  // [ffn, d]
  std::vector<float> w_down;      // [d, ffn]
  std::vector<float> input_norm, post_norm;  // [d]
  std::vector<float> q_norm, k_norm;         // [head_dim], empty without Qwen3 qk-norm
  std::vector<float> attn_res_u, mlp_res_u;  // [d] folded queries, empty for standard models
};

struct CpuWeights {
  std::vector<float> embed;       // [vocab, d]
  std::vector<CpuLayerWeights> layers;
  std::vector<float> final_norm;  // [d]
  std::vector<float> lm_head;     // [vocab, d]; empty when tied to embed
  std::vector<float> output_res_u;  // [d] final mix query, empty for standard models
  int64_t num_parameters = 0;     // as stored in the checkpoint (tied head counted once)

  const std::vector<float>& head() const { return lm_head.empty() ? embed : lm_head; }
};

absl::StatusOr<CpuWeights> LoadCpuWeights(const ModelConfig& config,
                                          const SafetensorsStore& store);

}  // namespace attnres
