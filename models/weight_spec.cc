// Required-tensor lists and checked loading of single tensors.
#include "models/weight_spec.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "models/half.h"

namespace attnres {
namespace {

std::string ShapeString(const std::vector<int64_t>& shape) {
  return absl::StrCat("[", absl::StrJoin(shape, ", "), "]");
}

}  // namespace

LayerTensorNames LayerTensorNames::For(int layer) {
  const std::string p = absl::StrCat("model.layers.", layer, ".");
  LayerTensorNames n;
  n.q = p + "self_attn.q_proj.weight";
  n.k = p + "self_attn.k_proj.weight";
  n.v = p + "self_attn.v_proj.weight";
  n.o = p + "self_attn.o_proj.weight";
  n.q_norm = p + "self_attn.q_norm.weight";
  n.k_norm = p + "self_attn.k_norm.weight";
  n.gate = p + "mlp.gate_proj.weight";
  n.up = p + "mlp.up_proj.weight";
  n.down = p + "mlp.down_proj.weight";
  n.input_norm = p + "input_layernorm.weight";
  n.post_norm = p + "post_attention_layernorm.weight";
  n.attn_res_norm = p + "self_attention_res_norm.weight";
  n.attn_res_proj = p + "self_attention_res_proj.weight";
  n.mlp_res_norm = p + "mlp_res_norm.weight";
  n.mlp_res_proj = p + "mlp_res_proj.weight";
  return n;
}

bool HasQkNorm(const SafetensorsStore& store) {
  return store.Contains(LayerTensorNames::For(0).q_norm);
}

std::vector<WeightSpec> RequiredWeights(const ModelConfig& c, bool qk_norm) {
  const int64_t d = c.hidden_size, f = c.intermediate_size, q = c.q_dim(), kv = c.kv_dim();
  std::vector<WeightSpec> w;
  w.push_back({kEmbedName, {c.vocab_size, d}});
  for (int l = 0; l < c.num_layers; ++l) {
    const auto n = LayerTensorNames::For(l);
    w.push_back({n.q, {q, d}});
    w.push_back({n.k, {kv, d}});
    w.push_back({n.v, {kv, d}});
    w.push_back({n.o, {d, q}});
    w.push_back({n.gate, {f, d}});
    w.push_back({n.up, {f, d}});
    w.push_back({n.down, {d, f}});
    w.push_back({n.input_norm, {d}});
    w.push_back({n.post_norm, {d}});
    if (qk_norm) {
      w.push_back({n.q_norm, {c.head_dim}});
      w.push_back({n.k_norm, {c.head_dim}});
    }
    if (c.attn_res()) {
      w.push_back({n.attn_res_norm, {d}});
      w.push_back({n.attn_res_proj, {1, d}});
      w.push_back({n.mlp_res_norm, {d}});
      w.push_back({n.mlp_res_proj, {1, d}});
    }
  }
  w.push_back({kFinalNormName, {d}});
  if (!c.tie_word_embeddings) w.push_back({kLmHeadName, {c.vocab_size, d}});
  if (c.attn_res()) {
    w.push_back({kOutputResNormName, {d}});
    w.push_back({kOutputResProjName, {1, d}});
  }
  return w;
}

absl::StatusOr<const TensorView*> CheckedView(const SafetensorsStore& store,
                                              const std::string& name,
                                              const std::vector<int64_t>& expected_shape) {
  auto view = store.Get(name);
  if (!view.ok()) {
    return absl::NotFoundError(absl::StrCat(view.status().message(), " (expected shape ",
                                            ShapeString(expected_shape), ")"));
  }
  if ((*view)->shape != expected_shape) {
    return absl::InvalidArgumentError(absl::StrCat(
        (*view)->file, ": tensor \"", name, "\" has shape ", ShapeString((*view)->shape),
        ", expected ", ShapeString(expected_shape), " from config.json"));
  }
  return view;
}

absl::StatusOr<std::vector<float>> LoadF32(const SafetensorsStore& store, const std::string& name,
                                           const std::vector<int64_t>& expected_shape) {
  auto view = CheckedView(store, name, expected_shape);
  if (!view.ok()) return view.status();
  const TensorView& t = **view;
  std::vector<float> out(static_cast<size_t>(t.num_elements()));
  const uint8_t* p = t.data;
  for (size_t i = 0; i < out.size(); ++i) {
    switch (t.dtype) {
      case DType::kF32: std::memcpy(&out[i], p + 4 * i, 4); break;
      case DType::kBF16: {
        uint16_t h;
        std::memcpy(&h, p + 2 * i, 2);
        out[i] = Bf16ToF32(h);
        break;
      }
      case DType::kF16: {
        uint16_t h;
        std::memcpy(&h, p + 2 * i, 2);
        out[i] = F16ToF32(h);
        break;
      }
    }
  }
  return out;
}

absl::StatusOr<std::vector<float>> LoadFoldedQuery(const SafetensorsStore& store,
                                                   const std::string& norm_name,
                                                   const std::string& proj_name, int d) {
  auto gamma = LoadF32(store, norm_name, {d});
  if (!gamma.ok()) return gamma.status();
  auto w = LoadF32(store, proj_name, {1, d});
  if (!w.ok()) return w.status();
  std::vector<float> u(d);
  for (int i = 0; i < d; ++i) u[i] = (*gamma)[i] * (*w)[i];
  return u;
}

}  // namespace attnres
