// The fp32 forward pass on the CPU over one ragged batch with a paged KV cache: embedding, the
// layer loop with the AttnRes mixes (or standard residual adds), the final mix, norm and head.
// It is the reference the GPU backend and the PyTorch goldens are compared with. No sampling.
#pragma once

#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "models/cpu_weights.h"
#include "models/model_config.h"
#include "models/model_runner.h"

namespace attnres {

// K and V pages for every layer, fp32, in the NHD page layout the GPU kernels use:
// k[layer][page][slot][kv_head][head_dim].
class CpuKvCache {
 public:
  CpuKvCache(const ModelConfig& config, int64_t num_pages, int page_size);
  int64_t num_pages() const { return num_pages_; }
  int page_size() const { return page_size_; }
  float* k(int layer, int64_t page) { return k_.get() + Offset(layer, page); }
  float* v(int layer, int64_t page) { return v_.get() + Offset(layer, page); }
  static int64_t BytesPerPage(const ModelConfig& config, int page_size);

 private:
  int64_t Offset(int layer, int64_t page) const {
    return (static_cast<int64_t>(layer) * num_pages_ + page) * page_stride_;
  }
  int64_t num_pages_;
  int page_size_;
  int64_t page_stride_;          // page_size * kv_heads * head_dim floats
  std::unique_ptr<float[]> k_, v_;  // uninitialised until written: pages commit lazily
};

struct CpuForwardOutput {
  std::vector<float> logits;       // [logit_rows.size(), vocab]
  std::vector<float> mix_weights;  // [logit_rows.size(), MixLayout::total_weights()] when asked
};

class Communicator;

class CpuForward {
 public:
  // Single device: config and weights of the whole model. Tensor parallel: this rank's config
  // and weight slices (models/parallel/tensor_parallel.h) and its communicator; the o_proj and
  // down_proj partial sums are all-reduced and the vocab-sliced logits all-gathered.
  CpuForward(const ModelConfig& config, const CpuWeights& weights, Communicator* comm = nullptr);

  // Runs the batch; writes the new tokens' K/V into their pages; computes logits (and, when
  // want_mix_weights, the depth-attention weights) for the token rows in logit_rows.
  absl::Status Run(const StepBatch& batch, const std::vector<int>& logit_rows,
                   bool want_mix_weights, CpuKvCache& cache, CpuForwardOutput* out);

  const MixLayout& mix_layout() const { return layout_; }
  // Tensor parallel: steps of at least this many tokens use the sequence-sharded residual stream.
  void set_sequence_shard_min_tokens(int n) { seq_shard_min_tokens_ = n; }

 private:
  struct Workspace;
  absl::Status Attention(int layer, const StepBatch& batch, CpuKvCache& cache, Workspace& ws);
  void Mlp(int layer, Workspace& ws);

  const ModelConfig& config_;
  const CpuWeights& weights_;
  Communicator* comm_;  // null on a single device
  MixLayout layout_;
  std::vector<double> inv_freq_;  // [head_dim / 2]
  int seq_shard_min_tokens_ = 256;
};

}  // namespace attnres
