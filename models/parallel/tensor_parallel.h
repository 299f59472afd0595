// Tensor-parallel sharding of a model across ranks (Megatron style): column-parallel Q/K/V and
// gate/up (split by attention head, KV head and MLP column), row-parallel o_proj and down_proj
// (an all-reduce after each), the LM head split by vocabulary (an all-gather of the logits).
// Embeddings, norms and the AttnRes queries are replicated: the AttnRes mix is token-local and
// runs after the all-reduce on every rank. This file owns the plan, which block of each split
// checkpoint matrix a rank takes (shared by the CPU slicing here and the GPU loader,
// checkpoint_shards.h) and the CPU weight slicing; backends own execution.
#pragma once

#include <cstdint>
#include <vector>

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

// A block of a row-major checkpoint matrix [rows, cols]: rows [row_begin, row_begin + row_count)
// of columns [col_begin, col_begin + col_count), taken out as a row-major [row_count, col_count].
struct MatrixSlice {
  int64_t rows = 0, cols = 0;  // the whole matrix
  int64_t row_begin = 0, row_count = 0;
  int64_t col_begin = 0, col_count = 0;

  static MatrixSlice Whole(int64_t rows, int64_t cols) { return {rows, cols, 0, rows, 0, cols}; }
  static MatrixSlice Rows(int64_t rows, int64_t cols, int64_t begin, int64_t count) {
    return {rows, cols, begin, count, 0, cols};
  }
  static MatrixSlice Cols(int64_t rows, int64_t cols, int64_t begin, int64_t count) {
    return {rows, cols, 0, rows, begin, count};
  }
  int64_t elements() const { return row_count * col_count; }
  // fn(source_index, dest_index, count) for every contiguous run of elements, in order: one per
  // row, or a single one when whole rows are taken.
  template <typename Fn>
  void ForEachRun(Fn&& fn) const {
    if (col_count == cols) {
      fn(row_begin * cols, int64_t{0}, elements());
      return;
    }
    for (int64_t r = 0; r < row_count; ++r) {
      fn((row_begin + r) * cols + col_begin, r * col_count, col_count);
    }
  }
};

// This rank's block of every split checkpoint matrix (the same in every layer, from the full
// config); every other tensor is replicated.
struct ShardSlices {
  MatrixSlice q, k, v;   // [q_dim | kv_dim, d]: the rows of this rank's heads / KV heads
  MatrixSlice o;         // [d, q_dim]: the columns of this rank's heads (row-parallel)
  MatrixSlice gate, up;  // [ffn, d]: the rows of this rank's MLP columns
  MatrixSlice down;      // [d, ffn]: their columns (row-parallel)
  MatrixSlice lm_head;   // [vocab, d]: rows [vocab_begin, vocab_begin + vocab_local)
};
ShardSlices SlicesFor(const ModelConfig& config, const TensorParallelPlan& plan);

// The slice of a full row-major matrix (s.rows * s.cols elements).
std::vector<float> TakeSlice(const std::vector<float>& matrix, const MatrixSlice& s);

// This rank's slices of the full fp32 weights. lm_head is always materialised (the vocab slice
// of the tied embedding when tie_word_embeddings).
CpuWeights ShardCpuWeights(const CpuWeights& full, const ModelConfig& config,
                           const TensorParallelPlan& plan);

}  // namespace attnres
