// One tensor-parallel rank's weights on its GPU: bf16 matrices with fused QKV ([q+2kv, d]) and
// gate/up ([2f, d]) projections of this rank's heads and MLP columns, its o_proj/down_proj
// columns and LM-head vocabulary rows, the whole embedding, fp32 norm gains and folded AttnRes
// queries, all in one allocation (shapes below are the rank's: q, kv, ffn of plan.local). Loaded
// through the shared weight_spec checks and checkpoint_shards.h's blocks (so both backends accept
// the same checkpoints and slice them alike), or filled with seeded random values on the device
// for benchmarks. Owns no KV cache and no workspaces. A single GPU is the plan of world 1.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "kernels/ops.h"
#include "models/cuda/device_memory.h"
#include "models/model_config.h"
#include "models/parallel/tensor_parallel.h"
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
  float* attn_res_u = nullptr;  // [d] or null (standard models); inside DeviceWeights::res_u
  float* mlp_res_u = nullptr;   // [d] or null; inside DeviceWeights::res_u
};

struct DeviceWeights {
  bf16* embed = nullptr;         // [vocab, d], the whole table on every rank
  // [vocab_local, d]: rows [vocab_begin, vocab_begin + vocab_local); inside embed when tied (and
  // 256-byte aligned there, as the GEMM wants), else its own
  bf16* lm_head = nullptr;
  float* final_norm = nullptr;   // [d]
  // [2*Lt + 1, d] or null: mix m's folded query at res_u + m*d (MixLayout numbering); the
  // layers' attn_res_u / mlp_res_u and output_res_u point into it
  float* res_u = nullptr;
  float* output_res_u = nullptr; // [d] or null
  std::vector<DeviceLayerWeights> layers;
  int64_t num_parameters = 0;   // of the whole model, as in the checkpoint
  size_t bytes = 0;             // this rank's allocation
  DevicePtr storage;
};

// config: the whole model's (checkpoint shapes); plan: this rank's (PlanTensorParallel).
absl::StatusOr<std::unique_ptr<DeviceWeights>> LoadDeviceWeights(const ModelConfig& config,
                                                                  const SafetensorsStore& store,
                                                                  const TensorParallelPlan& plan);

// Seeded uniform weights made on the device with the initialisation rules of the random-model
// tool (same means and standard deviations, counter-based uniforms; not bit-identical to a model
// directory the tool writes), in the rank's shapes. Every rank fills its own shards from the
// same seeds, so the split matrices are not slices of one model. For benchmarks at 1B/8B shapes
// without shipping checkpoints.
absl::StatusOr<std::unique_ptr<DeviceWeights>> RandomDeviceWeights(const ModelConfig& config,
                                                                   uint64_t seed,
                                                                   const TensorParallelPlan& plan);

}  // namespace attnres::cuda
