// Device weight layout, checkpoint upload of one rank's blocks (read and rounded to bf16 on the
// host by checkpoint_shards.cc) and random fill.
#include "models/cuda/device_weights.h"

#include <cmath>
#include <cstring>

#include "models/parallel/checkpoint_shards.h"
#include "models/weight_spec.h"

namespace attnres::cuda {
namespace {

// Whether the rank's tied LM head can be a view into the embedding: the GEMM wants its operands
// 256-byte aligned, as every Arena tensor is (always true on one GPU and at real shapes).
bool HeadInsideEmbed(const ModelConfig& c, const TensorParallelPlan& p) {
  return c.tie_word_embeddings &&
         static_cast<size_t>(p.vocab_begin) * c.hidden_size * sizeof(bf16) % 256 == 0;
}

// Hands out every tensor's place; run once to size the allocation and once to place it.
void Carve(const ModelConfig& full, const TensorParallelPlan& p, bool qk_norm, Arena& a,
           DeviceWeights* w) {
  const ModelConfig& c = p.local;
  const size_t d = c.hidden_size, f = c.intermediate_size, q = c.q_dim(), kv = c.kv_dim();
  w->embed = a.Take<bf16>(full.vocab_size * d);
  if (HeadInsideEmbed(full, p)) {
    w->lm_head = w->embed ? w->embed + p.vocab_begin * d : nullptr;
  } else {
    w->lm_head = a.Take<bf16>(p.vocab_local * d);
  }
  w->final_norm = a.Take<float>(d);
  // Every mix's query in forward order (MixLayout numbering), so the later mixes of a block
  // are one [Q, d] slice for the two-phase mix.
  w->res_u = c.attn_res() ? a.Take<float>((2 * c.num_layers + 1) * d) : nullptr;
  w->output_res_u = w->res_u ? w->res_u + 2 * c.num_layers * d : nullptr;
  w->layers.resize(c.num_layers);
  for (int l = 0; l < c.num_layers; ++l) {
    DeviceLayerWeights& L = w->layers[l];
    L.w_qkv = a.Take<bf16>((q + 2 * kv) * d);
    L.w_o = a.Take<bf16>(d * q);
    L.w_gate_up = a.Take<bf16>(2 * f * d);
    L.w_down = a.Take<bf16>(d * f);
    L.input_norm = a.Take<float>(d);
    L.post_norm = a.Take<float>(d);
    L.q_norm = qk_norm ? a.Take<float>(c.head_dim) : nullptr;
    L.k_norm = qk_norm ? a.Take<float>(c.head_dim) : nullptr;
    L.attn_res_u = w->res_u ? w->res_u + 2 * l * d : nullptr;
    L.mlp_res_u = w->res_u ? w->res_u + (2 * l + 1) * d : nullptr;
  }
}

absl::StatusOr<std::unique_ptr<DeviceWeights>> Allocate(const ModelConfig& full,
                                                        const TensorParallelPlan& p,
                                                        bool qk_norm) {
  auto w = std::make_unique<DeviceWeights>();
  Arena measure;
  Carve(full, p, qk_norm, measure, w.get());
  auto mem = DeviceAlloc(measure.bytes());
  if (!mem.ok()) return mem.status();
  w->storage = std::move(*mem);
  w->bytes = measure.bytes();
  Arena place(w->storage.get());
  Carve(full, p, qk_norm, place, w.get());
  for (const WeightSpec& spec : RequiredWeights(full, qk_norm)) {
    int64_t n = 1;
    for (int64_t s : spec.shape) n *= s;
    w->num_parameters += n;
  }
  return w;
}

// staging: reused host buffer.
absl::Status UploadMatrix(const SafetensorsStore& store, const ShardMatrix& m, bf16* dst,
                          std::vector<uint16_t>& staging) {
  staging.resize(static_cast<size_t>(m.elements()));
  if (auto st = ReadBf16(store, m, staging.data()); !st.ok()) return st;
  ATTNRES_CUDA_RETURN(
      cudaMemcpy(dst, staging.data(), 2 * staging.size(), cudaMemcpyHostToDevice));
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
                                                                  const SafetensorsStore& store,
                                                                  const TensorParallelPlan& p) {
  const bool qk_norm = HasQkNorm(store);
  auto w = Allocate(c, p, qk_norm);
  if (!w.ok()) return w.status();
  DeviceWeights& W = **w;
  const int d = c.hidden_size;
  std::vector<uint16_t> staging;
  std::vector<std::pair<ShardMatrix, bf16*>> matrices = {{EmbedMatrix(c), W.embed}};
  if (!HeadInsideEmbed(c, p)) matrices.push_back({LmHeadMatrix(c, p), W.lm_head});
  for (int l = 0; l < c.num_layers; ++l) {
    LayerShardMatrices m = LayerShardMatricesFor(c, p, l);
    const DeviceLayerWeights& L = W.layers[l];
    matrices.push_back({std::move(m.qkv), L.w_qkv});
    matrices.push_back({std::move(m.o), L.w_o});
    matrices.push_back({std::move(m.gate_up), L.w_gate_up});
    matrices.push_back({std::move(m.down), L.w_down});
  }
  for (const auto& [matrix, dst] : matrices) {
    if (auto st = UploadMatrix(store, matrix, dst, staging); !st.ok()) return st;
  }
  std::vector<absl::Status> st;
  st.push_back(UploadNorm(store, kFinalNormName, d, W.final_norm));
  if (c.attn_res()) {
    st.push_back(UploadQuery(store, kOutputResNormName, kOutputResProjName, d, W.output_res_u));
  }
  for (int l = 0; l < c.num_layers; ++l) {
    const auto n = LayerTensorNames::For(l);
    DeviceLayerWeights& L = W.layers[l];
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
  }
  for (const absl::Status& s : st) {
    if (!s.ok()) return s;
  }
  return w;
}

absl::StatusOr<std::unique_ptr<DeviceWeights>> RandomDeviceWeights(const ModelConfig& full,
                                                                   uint64_t seed,
                                                                   const TensorParallelPlan& p) {
  auto w = Allocate(full, p, /*qk_norm=*/false);
  if (!w.ok()) return w.status();
  DeviceWeights& W = **w;
  const ModelConfig& c = p.local;
  const size_t d = c.hidden_size, f = c.intermediate_size, q = c.q_dim(), kv = c.kv_dim();
  uint64_t tensor = seed * 1000003ull;
  auto mat = [&](bf16* ptr, size_t rows, size_t in, float stddev = -1.0f) {
    return kernels::FillUniformBf16(ptr, rows * in, ++tensor, 0.0f,
                                    stddev > 0 ? stddev : 1.0f / std::sqrt(float(in)), nullptr);
  };
  auto vec = [&](float* ptr, size_t n, float mean, float stddev) {
    return ptr ? kernels::FillUniformF32(ptr, n, ++tensor, mean, stddev, nullptr) : cudaSuccess;
  };
  const float query_std = 1.0f / std::sqrt(float(d));
  ATTNRES_CUDA_RETURN(mat(W.embed, full.vocab_size, d, 2.0f / std::sqrt(float(d))));
  if (!full.tie_word_embeddings) {
    ATTNRES_CUDA_RETURN(mat(W.lm_head, p.vocab_local, d));
  } else if (!HeadInsideEmbed(full, p)) {
    ATTNRES_CUDA_RETURN(cudaMemcpy(W.lm_head, W.embed + p.vocab_begin * d,
                                   sizeof(bf16) * p.vocab_local * d, cudaMemcpyDeviceToDevice));
  }
  ATTNRES_CUDA_RETURN(vec(W.final_norm, d, 1.0f, 0.1f));
  ATTNRES_CUDA_RETURN(vec(W.output_res_u, d, 0.0f, query_std));
  for (DeviceLayerWeights& L : W.layers) {
    ATTNRES_CUDA_RETURN(mat(L.w_qkv, q + 2 * kv, d));
    // Row-parallel matrices keep the std of the whole model's input width.
    ATTNRES_CUDA_RETURN(mat(L.w_o, d, q, 1.0f / std::sqrt(float(full.q_dim()))));
    ATTNRES_CUDA_RETURN(mat(L.w_gate_up, 2 * f, d));
    ATTNRES_CUDA_RETURN(mat(L.w_down, d, f, 1.0f / std::sqrt(float(full.intermediate_size))));
    ATTNRES_CUDA_RETURN(vec(L.input_norm, d, 1.0f, 0.1f));
    ATTNRES_CUDA_RETURN(vec(L.post_norm, d, 1.0f, 0.1f));
    ATTNRES_CUDA_RETURN(vec(L.attn_res_u, d, 0.0f, query_std));
    ATTNRES_CUDA_RETURN(vec(L.mlp_res_u, d, 0.0f, query_std));
  }
  ATTNRES_CUDA_RETURN(cudaDeviceSynchronize());
  return w;
}

}  // namespace attnres::cuda
