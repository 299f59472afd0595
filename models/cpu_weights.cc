// Loading CpuWeights through the shared RequiredWeights/LoadF32 checks.
#include "models/cpu_weights.h"

#include "models/weight_spec.h"

namespace attnres {

absl::StatusOr<CpuWeights> LoadCpuWeights(const ModelConfig& c, const SafetensorsStore& store) {
  const bool qk_norm = HasQkNorm(store);
  CpuWeights w;
  for (const WeightSpec& spec : RequiredWeights(c, qk_norm)) {
    int64_t n = 1;
    for (int64_t s : spec.shape) n *= s;
    w.num_parameters += n;
  }
  const int64_t d = c.hidden_size, f = c.intermediate_size, q = c.q_dim(), kv = c.kv_dim();
  auto load = [&](const std::string& name, std::vector<int64_t> shape,
                  std::vector<float>* out) -> absl::Status {
    auto t = LoadF32(store, name, shape);
    if (!t.ok()) return t.status();
    *out = std::move(*t);
    return absl::OkStatus();
  };
  auto fold = [&](const std::string& norm, const std::string& proj,
                  std::vector<float>* out) -> absl::Status {
    auto u = LoadFoldedQuery(store, norm, proj, c.hidden_size);
    if (!u.ok()) return u.status();
    *out = std::move(*u);
    return absl::OkStatus();
  };
  if (auto st = load(kEmbedName, {c.vocab_size, d}, &w.embed); !st.ok()) return st;
  w.layers.resize(c.num_layers);
  for (int l = 0; l < c.num_layers; ++l) {
    const auto n = LayerTensorNames::For(l);
    CpuLayerWeights& L = w.layers[l];
    for (auto st : {load(n.q, {q, d}, &L.wq), load(n.k, {kv, d}, &L.wk), load(n.v, {kv, d}, &L.wv),
                    load(n.o, {d, q}, &L.wo), load(n.gate, {f, d}, &L.w_gate),
                    load(n.up, {f, d}, &L.w_up), load(n.down, {d, f}, &L.w_down),
                    load(n.input_norm, {d}, &L.input_norm),
                    load(n.post_norm, {d}, &L.post_norm)}) {
      if (!st.ok()) return st;
    }
    if (qk_norm) {
      if (auto st = load(n.q_norm, {c.head_dim}, &L.q_norm); !st.ok()) return st;
      if (auto st = load(n.k_norm, {c.head_dim}, &L.k_norm); !st.ok()) return st;
    }
    if (c.attn_res()) {
      if (auto st = fold(n.attn_res_norm, n.attn_res_proj, &L.attn_res_u); !st.ok()) return st;
      if (auto st = fold(n.mlp_res_norm, n.mlp_res_proj, &L.mlp_res_u); !st.ok()) return st;
    }
  }
  if (auto st = load(kFinalNormName, {d}, &w.final_norm); !st.ok()) return st;
  if (!c.tie_word_embeddings) {
    if (auto st = load(kLmHeadName, {c.vocab_size, d}, &w.lm_head); !st.ok()) return st;
  }
  if (c.attn_res()) {
    if (auto st = fold(kOutputResNormName, kOutputResProjName, &w.output_res_u); !st.ok()) {
      return st;
    }
  }
  return w;
}

}  // namespace attnres
