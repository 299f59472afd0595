// The model's weights on the GPU: bf16 matrices with fused QKV ([q+2kv, d]) and gate/up ([2f, d])
// projections, fp32 norm gains and folded AttnRes queries, all in one allocation. Loaded through
// the shared weight_spec checks (so both backends accept the same checkpoints), or filled with
// seeded random values on the device for benchmarks. Owns no KV cache and no workspaces.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "kernels/ops.h"
#include "models/cuda/device_memory.h"
#include "models/model_config.h"
#include "models/safetensors.h"

namespace attnres::cuda {

using kernels::bf16;

struct DeviceLayerWeights {
  bf16* w_qkv = nullptr;      // [q_dim + 2*kv_dim, d]
  bf16* w_o = nullptr;        // [d, q_dim]
  bf16* w_gate_up = nullptr;  // [2*ffn, d]: gate rows then up rows
  bf16* w_down = nullptr;     // [d, ffn]
  float* input_norm = nullptr;  // [d]
  float* post_norm = nullptr;   // [d]
  float* q_norm = nullptr;      // [head_dim] or null
  float* k_norm = nullptr;      // [head_dim] or null
  float* attn_res_u = nullptr;  // [d] or null (standard models)
  float* mlp_res_u = nullptr;   // [d] or null
};

struct DeviceWeights {
  bf16* embed = nullptr;         // [vocab, d]
  bf16* lm_head = nullptr;       // [vocab, d]; == embed when tied
  float* final_norm = nullptr;   // [d]
  float* output_res_u = nullptr; // [d] or null
  std::vector<DeviceLayerWeights> layers;
  int64_t num_parameters = 0;
  size_t bytes = 0;
  DevicePtr storage;
};

absl::StatusOr<std::unique_ptr<DeviceWeights>> LoadDeviceWeights(const ModelConfig& config,
                                                                  const SafetensorsStore& store);

// Seeded uniform weights made on the device with the initialisation rules of the random-model
// tool (same means and standard deviations, counter-based uniforms; not bit-identical to a model
// directory the tool writes). For benchmarks at 1B/8B shapes without shipping checkpoints.
absl::StatusOr<std::unique_ptr<DeviceWeights>> RandomDeviceWeights(const ModelConfig& config,
                                                                   uint64_t seed);

}  // namespace attnres::cuda
