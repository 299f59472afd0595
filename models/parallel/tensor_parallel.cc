// Tensor-parallel plan and CPU weight slicing.
#include "models/parallel/tensor_parallel.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace attnres {
namespace {

// Rows [begin, begin + count) of a row-major [rows, cols] matrix.
std::vector<float> Rows(const std::vector<float>& m, int cols, int begin, int count) {
  return std::vector<float>(m.begin() + static_cast<size_t>(begin) * cols,
                            m.begin() + static_cast<size_t>(begin + count) * cols);
}

// Columns [begin, begin + count) of a row-major [rows, cols] matrix.
std::vector<float> Cols(const std::vector<float>& m, int cols, int begin, int count) {
  const size_t rows = m.size() / cols;
  std::vector<float> out(rows * count);
  for (size_t r = 0; r < rows; ++r) {
    std::copy_n(m.begin() + r * cols + begin, count, out.begin() + r * count);
  }
  return out;
}

}  // namespace

absl::StatusOr<TensorParallelPlan> PlanTensorParallel(const ModelConfig& c, int world, int rank) {
  if (world < 1 || rank < 0 || rank >= world) {
    return absl::InvalidArgumentError(absl::StrCat("tensor_parallel: bad rank ", rank, " of ", world));
  }
  struct Key { const char* name; int value; };
  for (Key k : {Key{"num_attention_heads", c.num_heads}, Key{"num_key_value_heads", c.num_kv_heads},
                Key{"intermediate_size", c.intermediate_size}, Key{"vocab_size", c.vocab_size}}) {
    if (k.value % world != 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "--tensor-parallel ", world, " must divide config.json ", k.name, " (", k.value, ")"));
    }
  }
  TensorParallelPlan p;
  p.world_size = world;
  p.rank = rank;
  p.local = c;
  p.local.num_heads = c.num_heads / world;
  p.local.num_kv_heads = c.num_kv_heads / world;
  p.local.intermediate_size = c.intermediate_size / world;
  p.vocab_local = c.vocab_size / world;
  p.vocab_begin = rank * p.vocab_local;
  return p;
}

CpuWeights ShardCpuWeights(const CpuWeights& full, const ModelConfig& c,
                           const TensorParallelPlan& p) {
  const int d = c.hidden_size, r = p.rank;
  const int q = p.local.q_dim(), kv = p.local.kv_dim(), f = p.local.intermediate_size;
  CpuWeights w;
  w.embed = full.embed;
  w.final_norm = full.final_norm;
  w.output_res_u = full.output_res_u;
  w.num_parameters = full.num_parameters;
  w.lm_head = Rows(full.head(), d, p.vocab_begin, p.vocab_local);
  for (const CpuLayerWeights& L : full.layers) {
    CpuLayerWeights s;
    s.wq = Rows(L.wq, d, r * q, q);            // heads are contiguous row blocks
    s.wk = Rows(L.wk, d, r * kv, kv);
    s.wv = Rows(L.wv, d, r * kv, kv);
    s.wo = Cols(L.wo, c.q_dim(), r * q, q);    // row-parallel: input columns of this rank's heads
    s.w_gate = Rows(L.w_gate, d, r * f, f);
    s.w_up = Rows(L.w_up, d, r * f, f);
    s.w_down = Cols(L.w_down, c.intermediate_size, r * f, f);
    s.input_norm = L.input_norm;
    s.post_norm = L.post_norm;
    s.q_norm = L.q_norm;
    s.k_norm = L.k_norm;
    s.attn_res_u = L.attn_res_u;
    s.mlp_res_u = L.mlp_res_u;
    w.layers.push_back(std::move(s));
  }
  return w;
}

}  // namespace attnres
