// One rank's GPU weight matrices as they come out of a checkpoint: each is a stack (by rows) of
// blocks of checkpoint tensors (fused QKV: this rank's q, k, v rows; fused gate/up: its gate then
// up rows; o_proj/down_proj: its columns; the LM head: its vocabulary rows), read and rounded to
// bf16 on the host with the blocks of tensor_parallel.h's SlicesFor. The CUDA loader
// (models/cuda/device_weights.cc) uploads what ReadBf16 produces; nothing here needs a GPU, so
// the CPU tests check it against ShardCpuWeights.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "models/model_config.h"
#include "models/parallel/tensor_parallel.h"
#include "models/safetensors.h"

namespace attnres {

struct CheckpointBlock {
  std::string name;   // checkpoint tensor; its full shape is [slice.rows, slice.cols]
  MatrixSlice slice;  // the block taken
};

// A device matrix [rows(), cols()]: its blocks stacked in order (all of the same width).
struct ShardMatrix {
  std::vector<CheckpointBlock> blocks;
  int64_t rows() const;
  int64_t cols() const { return blocks.empty() ? 0 : blocks[0].slice.col_count; }
  int64_t elements() const { return rows() * cols(); }
};

struct LayerShardMatrices {
  ShardMatrix qkv;      // [q_local + 2 * kv_local, d]
  ShardMatrix o;        // [d, q_local]
  ShardMatrix gate_up;  // [2 * ffn_local, d]: gate rows, then up rows
  ShardMatrix down;     // [d, ffn_local]
};

// config: the full model's; plan: the rank's.
LayerShardMatrices LayerShardMatricesFor(const ModelConfig& config, const TensorParallelPlan& plan,
                                         int layer);
// [vocab, d]: the whole embedding, on every rank.
ShardMatrix EmbedMatrix(const ModelConfig& config);
// [vocab_local, d]: the rank's rows of lm_head, or of the embedding when tie_word_embeddings.
ShardMatrix LmHeadMatrix(const ModelConfig& config, const TensorParallelPlan& plan);

// Writes m's elements as bf16 bits to out[0, m.elements()), checking that every tensor exists
// with its full shape (errors name the file, the tensor and the shape config.json implies);
// fp32 and fp16 checkpoints are rounded to nearest even.
absl::Status ReadBf16(const SafetensorsStore& store, const ShardMatrix& m, uint16_t* out);

}  // namespace attnres
