// Device weight layout, checkpoint upload (converted to bf16 on the host) and random fill.
#include "models/cuda/device_weights.h"

#include <cmath>
#include <cstring>

#include "models/half.h"
#include "models/weight_spec.h"

namespace attnres::cuda {
namespace {

// Hands out every tensor's place; run once to size the allocation and once to place it.
void Carve(const ModelConfig& c, bool qk_norm, Arena& a, DeviceWeights* w) {
  const size_t d = c.hidden_size, f = c.intermediate_size, q = c.q_dim(), kv = c.kv_dim();
  w->embed = a.Take<bf16>(c.vocab_size * d);
  w->lm_head = c.tie_word_embeddings ? w->embed : a.Take<bf16>(c.vocab_size * d);
  w->final_norm = a.Take<float>(d);
  w->output_res_u = c.attn_res() ? a.Take<float>(d) : nullptr;
  w->layers.resize(c.num_layers);
  for (DeviceLayerWeights& L : w->layers) {
    L.w_qkv = a.Take<bf16>((q + 2 * kv) * d);
    L.w_o = a.Take<bf16>(d * q);
    L.w_gate_up = a.Take<bf16>(2 * f * d);
    L.w_down = a.Take<bf16>(d * f);
    L.input_norm = a.Take<float>(d);
    L.post_norm = a.Take<float>(d);
    L.q_norm = qk_norm ? a.Take<float>(c.head_dim) : nullptr;
    L.k_norm = qk_norm ? a.Take<float>(c.head_dim) : nullptr;
    L.attn_res_u = c.attn_res() ? a.Take<float>(d) : nullptr;
    L.mlp_res_u = c.attn_res() ? a.Take<float>(d) : nullptr;
  }
}

absl::StatusOr<std::unique_ptr<DeviceWeights>> Allocate(const ModelConfig& c, bool qk_norm) {
  auto w = std::make_unique<DeviceWeights>();
  Arena measure;
  Carve(c, qk_norm, measure, w.get());
  auto mem = DeviceAlloc(measure.bytes());
  if (!mem.ok()) return mem.status();
  w->storage = std::move(*mem);
  w->bytes = measure.bytes();
  Arena place(w->storage.get());
  Carve(c, qk_norm, place, w.get());
  for (const WeightSpec& spec : RequiredWeights(c, qk_norm)) {
    int64_t n = 1;
    for (int64_t s : spec.shape) n *= s;
    w->num_parameters += n;
  }
  return w;
}

absl::Status UploadBf16(const SafetensorsStore& store, const std::string& name,
                        const std::vector<int64_t>& shape, bf16* dst) {
  auto view = CheckedView(store, name, shape);
  if (!view.ok()) return view.status();
  const TensorView& t = **view;
  const size_t n = static_cast<size_t>(t.num_elements());
  std::vector<uint16_t> host(n);
  if (t.dtype == DType::kBF16) {
    std::memcpy(host.data(), t.data, 2 * n);
  } else {
    for (size_t i = 0; i < n; ++i) {
      float f;
      if (t.dtype == DType::kF32) {
        std::memcpy(&f, t.data + 4 * i, 4);
      } else {
        uint16_t h;
        std::memcpy(&h, t.data + 2 * i, 2);
        f = F16ToF32(h);
      }
      host[i] = F32ToBf16(f);
    }
  }
  ATTNRES_CUDA_RETURN(cudaMemcpy(dst, host.data(), 2 * n, cudaMemcpyHostToDevice));
  return absl::OkStatus();
}

absl::Status UploadF32(const std::vector<float>& v, float* dst) {
  ATTNRES_CUDA_RETURN(cudaMemcpy(dst, v.data(), sizeof(float) * v.size(), cudaMemcpyHostToDevice));
  return absl::OkStatus();
}

absl::Status UploadNorm(const SafetensorsStore& store, const std::string& name, int n, float* dst) {
  auto v = LoadF32(store, name, {n});
  if (!v.ok()) return v.status();
  return UploadF32(*v, dst);
}

absl::Status UploadQuery(const SafetensorsStore& store, const std::string& norm,
                         const std::string& proj, int d, float* dst) {
  auto u = LoadFoldedQuery(store, norm, proj, d);
  if (!u.ok()) return u.status();
  return UploadF32(*u, dst);
}

}  // namespace

absl::StatusOr<std::unique_ptr<DeviceWeights>> LoadDeviceWeights(const ModelConfig& c,
                                                                  const SafetensorsStore& store) {
  const bool qk_norm = HasQkNorm(store);
  auto w = Allocate(c, qk_norm);
  if (!w.ok()) return w.status();
  DeviceWeights& W = **w;
  const int64_t d = c.hidden_size, f = c.intermediate_size, q = c.q_dim(), kv = c.kv_dim();
  std::vector<absl::Status> st;
  st.push_back(UploadBf16(store, kEmbedName, {c.vocab_size, d}, W.embed));
  if (!c.tie_word_embeddings) st.push_back(UploadBf16(store, kLmHeadName, {c.vocab_size, d}, W.lm_head));
  st.push_back(UploadNorm(store, kFinalNormName, d, W.final_norm));
  if (c.attn_res()) {
    st.push_back(UploadQuery(store, kOutputResNormName, kOutputResProjName, d, W.output_res_u));
  }
  for (int l = 0; l < c.num_layers; ++l) {
    const auto n = LayerTensorNames::For(l);
    DeviceLayerWeights& L = W.layers[l];
    st.push_back(UploadBf16(store, n.q, {q, d}, L.w_qkv));
    st.push_back(UploadBf16(store, n.k, {kv, d}, L.w_qkv + q * d));
    st.push_back(UploadBf16(store, n.v, {kv, d}, L.w_qkv + (q + kv) * d));
    st.push_back(UploadBf16(store, n.o, {d, q}, L.w_o));
    st.push_back(UploadBf16(store, n.gate, {f, d}, L.w_gate_up));
    st.push_back(UploadBf16(store, n.up, {f, d}, L.w_gate_up + f * d));
    st.push_back(UploadBf16(store, n.down, {d, f}, L.w_down));
    st.push_back(UploadNorm(store, n.input_norm, d, L.input_norm));
    st.push_back(UploadNorm(store, n.post_norm, d, L.post_norm));
    if (qk_norm) {
      st.push_back(UploadNorm(store, n.q_norm, c.head_dim, L.q_norm));
      st.push_back(UploadNorm(store, n.k_norm, c.head_dim, L.k_norm));
    }
    if (c.attn_res()) {
      st.push_back(UploadQuery(store, n.attn_res_norm, n.attn_res_proj, d, L.attn_res_u));
      st.push_back(UploadQuery(store, n.mlp_res_norm, n.mlp_res_proj, d, L.mlp_res_u));
    }
    for (const absl::Status& s : st) {
      if (!s.ok()) return s;
    }
    st.clear();
  }
  for (const absl::Status& s : st) {
    if (!s.ok()) return s;
  }
  return w;
}

absl::StatusOr<std::unique_ptr<DeviceWeights>> RandomDeviceWeights(const ModelConfig& c,
                                                                   uint64_t seed) {
  auto w = Allocate(c, /*qk_norm=*/false);
  if (!w.ok()) return w.status();
  DeviceWeights& W = **w;
  const size_t d = c.hidden_size, f = c.intermediate_size, q = c.q_dim(), kv = c.kv_dim();
  uint64_t tensor = seed * 1000003ull;
  auto mat = [&](bf16* p, size_t rows, size_t in, float stddev = -1.0f) {
    return kernels::FillUniformBf16(p, rows * in, ++tensor, 0.0f,
                                    stddev > 0 ? stddev : 1.0f / std::sqrt(float(in)), nullptr);
  };
  auto vec = [&](float* p, size_t n, float mean, float stddev) {
    return p ? kernels::FillUniformF32(p, n, ++tensor, mean, stddev, nullptr) : cudaSuccess;
  };
  const float query_std = 1.0f / std::sqrt(float(d));
  ATTNRES_CUDA_RETURN(mat(W.embed, c.vocab_size, d, 2.0f / std::sqrt(float(d))));
  if (!c.tie_word_embeddings) ATTNRES_CUDA_RETURN(mat(W.lm_head, c.vocab_size, d));
  ATTNRES_CUDA_RETURN(vec(W.final_norm, d, 1.0f, 0.1f));
  ATTNRES_CUDA_RETURN(vec(W.output_res_u, d, 0.0f, query_std));
  for (DeviceLayerWeights& L : W.layers) {
    ATTNRES_CUDA_RETURN(mat(L.w_qkv, q + 2 * kv, d));
    ATTNRES_CUDA_RETURN(mat(L.w_o, d, q));
    ATTNRES_CUDA_RETURN(mat(L.w_gate_up, 2 * f, d));
    ATTNRES_CUDA_RETURN(mat(L.w_down, d, f));
    ATTNRES_CUDA_RETURN(vec(L.input_norm, d, 1.0f, 0.1f));
    ATTNRES_CUDA_RETURN(vec(L.post_norm, d, 1.0f, 0.1f));
    ATTNRES_CUDA_RETURN(vec(L.attn_res_u, d, 0.0f, query_std));
    ATTNRES_CUDA_RETURN(vec(L.mlp_res_u, d, 0.0f, query_std));
  }
  ATTNRES_CUDA_RETURN(cudaDeviceSynchronize());
  return w;
}

}  // namespace attnres::cuda
