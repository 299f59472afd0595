// Tensor-parallel sharding of a model across ranks (Megatron style): column-parallel Q/K/V and
// gate/up (split by attention head, KV head and MLP column), row-parallel o_proj and down_proj
// (an all-reduce after each), the LM head split by vocabulary (an all-gather of the logits).
// Embeddings, norms and the AttnRes queries are replicated: the AttnRes mix is token-local and
// runs after the all-reduce on every rank. This file owns the plan and the CPU weight slicing;
// backends own execution.
#pragma once

#include "absl/status/statusor.h"
#include "models/cpu_weights.h"
#include "models/model_config.h"

namespace attnres {

struct TensorParallelPlan {
  int world_size = 1;
  int rank = 0;
  ModelConfig local;   // this rank's shapes: num_heads, num_kv_heads, intermediate_size / world
  int vocab_begin = 0; // this rank's LM-head rows [vocab_begin, vocab_begin + vocab_local)
  int vocab_local = 0;
};

// INVALID_ARGUMENT naming the config key that world_size does not divide.
absl::StatusOr<TensorParallelPlan> PlanTensorParallel(const ModelConfig& config, int world_size,
                                                      int rank);

// This rank's slices of the full fp32 weights. lm_head is always materialised (the vocab slice
// of the tied embedding when tie_word_embeddings).
CpuWeights ShardCpuWeights(const CpuWeights& full, const ModelConfig& config,
                           const TensorParallelPlan& plan);

}  // namespace attnres
