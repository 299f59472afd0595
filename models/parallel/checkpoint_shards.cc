// Checkpoint blocks of each device matrix, and their bf16 read-out.
#include "models/parallel/checkpoint_shards.h"

#include <cstring>

#include "models/half.h"
#include "models/weight_spec.h"

namespace attnres {

int64_t ShardMatrix::rows() const {
  int64_t n = 0;
  for (const CheckpointBlock& b : blocks) n += b.slice.row_count;
  return n;
}

LayerShardMatrices LayerShardMatricesFor(const ModelConfig& c, const TensorParallelPlan& p,
                                         int layer) {
  const ShardSlices s = SlicesFor(c, p);
  const LayerTensorNames n = LayerTensorNames::For(layer);
  LayerShardMatrices m;
  m.qkv.blocks = {{n.q, s.q}, {n.k, s.k}, {n.v, s.v}};
  m.o.blocks = {{n.o, s.o}};
  m.gate_up.blocks = {{n.gate, s.gate}, {n.up, s.up}};
  m.down.blocks = {{n.down, s.down}};
  return m;
}

ShardMatrix EmbedMatrix(const ModelConfig& c) {
  return {{{kEmbedName, MatrixSlice::Whole(c.vocab_size, c.hidden_size)}}};
}

ShardMatrix LmHeadMatrix(const ModelConfig& c, const TensorParallelPlan& p) {
  return {{{c.tie_word_embeddings ? kEmbedName : kLmHeadName, SlicesFor(c, p).lm_head}}};
}

absl::Status ReadBf16(const SafetensorsStore& store, const ShardMatrix& m, uint16_t* out) {
  for (const CheckpointBlock& b : m.blocks) {
    auto view = CheckedView(store, b.name, {b.slice.rows, b.slice.cols});
    if (!view.ok()) return view.status();
    const TensorView& t = **view;
    b.slice.ForEachRun([&](int64_t src, int64_t dst, int64_t n) {
      uint16_t* o = out + dst;
      switch (t.dtype) {
        case DType::kBF16:
          std::memcpy(o, t.data + 2 * src, 2 * n);
          break;
        case DType::kF32:
          for (int64_t i = 0; i < n; ++i) {
            float f;
            std::memcpy(&f, t.data + 4 * (src + i), 4);
            o[i] = F32ToBf16(f);
          }
          break;
        case DType::kF16:
          for (int64_t i = 0; i < n; ++i) {
            uint16_t h;
            std::memcpy(&h, t.data + 2 * (src + i), 2);
            o[i] = F32ToBf16(F16ToF32(h));
          }
          break;
      }
    });
    out += b.slice.elements();
  }
  return absl::OkStatus();
}

}  // namespace attnres
