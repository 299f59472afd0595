// The tensors a config requires, by Hugging Face name and shape, and typed loading of one tensor
// from a SafetensorsStore with errors that name the file, the tensor and the expected shape.
// Shared by the CPU and CUDA backends so both accept and reject exactly the same checkpoints.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "models/model_config.h"
#include "models/safetensors.h"

namespace attnres {

// Names of one transformer layer's tensors.
struct LayerTensorNames {
  std::string q, k, v, o, gate, up, down, input_norm, post_norm, q_norm, k_norm;
  std::string attn_res_norm, attn_res_proj, mlp_res_norm, mlp_res_proj;
  static LayerTensorNames For(int layer);
};

inline constexpr char kEmbedName[] = "model.embed_tokens.weight";
inline constexpr char kFinalNormName[] = "model.norm.weight";
inline constexpr char kLmHeadName[] = "lm_head.weight";
inline constexpr char kOutputResNormName[] = "model.output_attn_res_norm.weight";
inline constexpr char kOutputResProjName[] = "model.output_attn_res_proj.weight";

// Whether the checkpoint has Qwen3-style q_norm/k_norm (decided by layer 0; then every layer
// must have them).
bool HasQkNorm(const SafetensorsStore& store);

// Every tensor the config needs, with its shape, in a stable order.
struct WeightSpec {
  std::string name;
  std::vector<int64_t> shape;
};
std::vector<WeightSpec> RequiredWeights(const ModelConfig& config, bool qk_norm);

// Checks presence and shape, and converts to fp32.
absl::StatusOr<std::vector<float>> LoadF32(const SafetensorsStore& store, const std::string& name,
                                           const std::vector<int64_t>& expected_shape);
// Checks presence and shape; returns the view (for backends that convert on their own).
absl::StatusOr<const TensorView*> CheckedView(const SafetensorsStore& store,
                                              const std::string& name,
                                              const std::vector<int64_t>& expected_shape);

// Folds an AttnRes key-norm gain and pseudo-query: u = fp32(gamma) * fp32(w), shape [d].
absl::StatusOr<std::vector<float>> LoadFoldedQuery(const SafetensorsStore& store,
                                                   const std::string& norm_name,
                                                   const std::string& proj_name, int d);

}  // namespace attnres
