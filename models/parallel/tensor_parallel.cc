// Tensor-parallel plan, slice arithmetic and CPU weight slicing.
#include "models/parallel/tensor_parallel.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace attnres {

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

ShardSlices SlicesFor(const ModelConfig& c, const TensorParallelPlan& p) {
  const int64_t d = c.hidden_size, r = p.rank;
  const int64_t q = p.local.q_dim(), kv = p.local.kv_dim(), f = p.local.intermediate_size;
  ShardSlices s;
  s.q = MatrixSlice::Rows(c.q_dim(), d, r * q, q);  // heads are contiguous row blocks
  s.k = MatrixSlice::Rows(c.kv_dim(), d, r * kv, kv);
  s.v = MatrixSlice::Rows(c.kv_dim(), d, r * kv, kv);
  s.o = MatrixSlice::Cols(d, c.q_dim(), r * q, q);  // input columns of this rank's heads
  s.gate = MatrixSlice::Rows(c.intermediate_size, d, r * f, f);
  s.up = MatrixSlice::Rows(c.intermediate_size, d, r * f, f);
  s.down = MatrixSlice::Cols(d, c.intermediate_size, r * f, f);
  s.lm_head = MatrixSlice::Rows(c.vocab_size, d, p.vocab_begin, p.vocab_local);
  return s;
}

std::vector<float> TakeSlice(const std::vector<float>& m, const MatrixSlice& s) {
  std::vector<float> out(static_cast<size_t>(s.elements()));
  s.ForEachRun([&](int64_t src, int64_t dst, int64_t n) {
    std::copy_n(m.begin() + src, n, out.begin() + dst);
  });
  return out;
}

CpuWeights ShardCpuWeights(const CpuWeights& full, const ModelConfig& c,
                           const TensorParallelPlan& p) {
  const ShardSlices s = SlicesFor(c, p);
  CpuWeights w;
  w.embed = full.embed;
  w.final_norm = full.final_norm;
  w.output_res_u = full.output_res_u;
  w.num_parameters = full.num_parameters;
  w.lm_head = TakeSlice(full.head(), s.lm_head);
  for (const CpuLayerWeights& L : full.layers) {
    CpuLayerWeights l;
    l.wq = TakeSlice(L.wq, s.q);
    l.wk = TakeSlice(L.wk, s.k);
    l.wv = TakeSlice(L.wv, s.v);
    l.wo = TakeSlice(L.wo, s.o);
    l.w_gate = TakeSlice(L.w_gate, s.gate);
    l.w_up = TakeSlice(L.w_up, s.up);
    l.w_down = TakeSlice(L.w_down, s.down);
    l.input_norm = L.input_norm;
    l.post_norm = L.post_norm;
    l.q_norm = L.q_norm;
    l.k_norm = L.k_norm;
    l.attn_res_u = L.attn_res_u;
    l.mlp_res_u = L.mlp_res_u;
    w.layers.push_back(std::move(l));
  }
  return w;
}

}  // namespace attnres
