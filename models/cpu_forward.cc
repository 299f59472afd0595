// CPU forward pass. The AttnRes bookkeeping follows ATTNRES.md §3 in the generalised form of
// MixLayout: before sublayer s the input is the mix of bank + [prefix] (or the prefix alone while
// the bank is empty); a snapshot moves the raw prefix into the bank; the sublayer output starts
// or extends the prefix.
#include "models/cpu_forward.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "models/attn_res_mix.h"
#include "models/cpu_ops.h"
#include "models/rope.h"

namespace attnres {

CpuKvCache::CpuKvCache(const ModelConfig& c, int64_t num_pages, int page_size)
    : num_pages_(num_pages),
      page_size_(page_size),
      page_stride_(static_cast<int64_t>(page_size) * c.kv_dim()),
      k_(new float[static_cast<size_t>(c.num_layers * num_pages * page_stride_)]),
      v_(new float[static_cast<size_t>(c.num_layers * num_pages * page_stride_)]) {}

int64_t CpuKvCache::BytesPerPage(const ModelConfig& c, int page_size) {
  return 2LL * c.num_layers * page_size * c.kv_dim() * sizeof(float);
}

struct CpuForward::Workspace {
  int T = 0;
  std::vector<float> prefix;    // [T, d] running stream (standard) / running block sum (AttnRes)
  std::vector<float> bank;      // [slots, T, d] raw-prefix snapshots
  int bank_count = 0;
  bool prefix_empty = false;    // right after a snapshot, before the sublayer output lands
  std::vector<float> h;         // [T, d] sublayer input (mix output)
  std::vector<float> xn;        // [T, d] normed input
  std::vector<float> q, att;    // [T, q_dim]
  std::vector<float> k, v;      // [T, kv_dim]
  std::vector<float> gate, up;  // [T, ffn]
  std::vector<float> out;       // [T, d] sublayer output
  std::vector<int> record_row;  // [T] index into logit_rows, or -1
  std::vector<float>* mix_weights = nullptr;  // [rows, total_weights]
};

CpuForward::CpuForward(const ModelConfig& config, const CpuWeights& weights)
    : config_(config),
      weights_(weights),
      layout_(MixLayout::For(config)),
      inv_freq_(RopeInverseFrequencies(config)) {}

absl::Status CpuForward::Attention(int layer, const StepBatch& b, CpuKvCache& cache,
                                   Workspace& ws) {
  const ModelConfig& c = config_;
  const CpuLayerWeights& L = weights_.layers[layer];
  const int T = ws.T, hd = c.head_dim, H = c.num_heads, KV = c.num_kv_heads, group = H / KV;
  MatMulWt(ws.xn.data(), L.wq.data(), T, c.hidden_size, c.q_dim(), ws.q.data());
  MatMulWt(ws.xn.data(), L.wk.data(), T, c.hidden_size, c.kv_dim(), ws.k.data());
  MatMulWt(ws.xn.data(), L.wv.data(), T, c.hidden_size, c.kv_dim(), ws.v.data());
  const int ps = cache.page_size();
  auto slot_of = [&](int seq, int pos, int64_t* page) -> absl::Status {
    const int idx = b.kv_page_indptr[seq] + pos / ps;
    if (idx >= b.kv_page_indptr[seq + 1]) {
      return absl::InternalError(absl::StrCat("page table of sequence ", seq, " does not cover "
                                              "position ", pos));
    }
    *page = b.kv_page_indices[idx];
    if (*page < 0 || *page >= cache.num_pages()) {
      return absl::InternalError(absl::StrCat("page index ", *page, " out of range"));
    }
    return absl::OkStatus();
  };
  // q/k norm, RoPE, and the K/V page write for every new token.
  for (int s = 0; s < b.num_seqs(); ++s) {
    for (int r = b.query_indptr[s]; r < b.query_indptr[s + 1]; ++r) {
      const int pos = b.positions[r];
      for (int h = 0; h < H; ++h) {
        float* qh = &ws.q[static_cast<size_t>(r) * c.q_dim() + h * hd];
        if (!L.q_norm.empty()) RmsNorm(qh, L.q_norm.data(), 1, hd, c.rms_norm_eps, qh);
        ApplyRope(inv_freq_, pos, qh, hd);
      }
      for (int g = 0; g < KV; ++g) {
        float* kh = &ws.k[static_cast<size_t>(r) * c.kv_dim() + g * hd];
        if (!L.k_norm.empty()) RmsNorm(kh, L.k_norm.data(), 1, hd, c.rms_norm_eps, kh);
        ApplyRope(inv_freq_, pos, kh, hd);
      }
      int64_t page;
      if (auto st = slot_of(s, pos, &page); !st.ok()) return st;
      const size_t off = static_cast<size_t>(pos % ps) * c.kv_dim();
      std::memcpy(cache.k(layer, page) + off, &ws.k[static_cast<size_t>(r) * c.kv_dim()],
                  sizeof(float) * c.kv_dim());
      std::memcpy(cache.v(layer, page) + off, &ws.v[static_cast<size_t>(r) * c.kv_dim()],
                  sizeof(float) * c.kv_dim());
    }
  }
  // Causal attention over the pages: token at position p sees positions [0, p].
  const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
  std::vector<double> score, acc(hd);
  for (int s = 0; s < b.num_seqs(); ++s) {
    for (int r = b.query_indptr[s]; r < b.query_indptr[s + 1]; ++r) {
      const int pos = b.positions[r];
      score.resize(pos + 1);
      for (int h = 0; h < H; ++h) {
        const int g = h / group;
        const float* qh = &ws.q[static_cast<size_t>(r) * c.q_dim() + h * hd];
        double mx = -INFINITY;
        for (int p = 0; p <= pos; ++p) {
          int64_t page;
          if (auto st = slot_of(s, p, &page); !st.ok()) return st;
          const float* kp = cache.k(layer, page) + static_cast<size_t>(p % ps) * c.kv_dim() + g * hd;
          double dot = 0.0;
          for (int i = 0; i < hd; ++i) dot += static_cast<double>(qh[i]) * kp[i];
          score[p] = dot * scale;
          mx = std::max(mx, score[p]);
        }
        double sum = 0.0;
        for (int p = 0; p <= pos; ++p) sum += (score[p] = std::exp(score[p] - mx));
        std::fill(acc.begin(), acc.end(), 0.0);
        for (int p = 0; p <= pos; ++p) {
          int64_t page;
          (void)slot_of(s, p, &page);  // checked above
          const float* vp = cache.v(layer, page) + static_cast<size_t>(p % ps) * c.kv_dim() + g * hd;
          const double w = score[p] / sum;
          for (int i = 0; i < hd; ++i) acc[i] += w * vp[i];
        }
        float* oh = &ws.att[static_cast<size_t>(r) * c.q_dim() + h * hd];
        for (int i = 0; i < hd; ++i) oh[i] = static_cast<float>(acc[i]);
      }
    }
  }
  MatMulWt(ws.att.data(), L.wo.data(), T, c.q_dim(), c.hidden_size, ws.out.data());
  return absl::OkStatus();
}

void CpuForward::Mlp(int layer, Workspace& ws) {
  const ModelConfig& c = config_;
  const CpuLayerWeights& L = weights_.layers[layer];
  const int T = ws.T, d = c.hidden_size, f = c.intermediate_size;
  MatMulWt(ws.xn.data(), L.w_gate.data(), T, d, f, ws.gate.data());
  MatMulWt(ws.xn.data(), L.w_up.data(), T, d, f, ws.up.data());
  SwiGlu(ws.gate.data(), ws.up.data(), T * f, ws.gate.data());
  MatMulWt(ws.gate.data(), L.w_down.data(), T, f, d, ws.out.data());
}

namespace {

// h[t] = mix(bank[0..count) [t] + prefix[t]) for the rows in `rows` (all rows when null).
void MixRows(const std::vector<float>& bank, int count, const std::vector<float>& prefix,
             const float* u, int T, int d, double eps, const std::vector<int>* rows,
             float* h, std::vector<int>& record_row, int weight_offset, int total_weights,
             std::vector<float>* mix_weights) {
  std::vector<const float*> src(count + 1);
  const int n = rows ? static_cast<int>(rows->size()) : T;
  for (int k = 0; k < n; ++k) {
    const int t = rows ? (*rows)[k] : k;
    for (int j = 0; j < count; ++j) src[j] = &bank[(static_cast<size_t>(j) * T + t) * d];
    src[count] = &prefix[static_cast<size_t>(t) * d];
    float* alpha = nullptr;
    if (mix_weights && record_row[t] >= 0) {
      alpha = mix_weights->data() + static_cast<size_t>(record_row[t]) * total_weights +
              weight_offset;
    }
    AttnResMix(src.data(), count + 1, u, d, eps, h + static_cast<size_t>(rows ? k : t) * d, alpha);
  }
}

}  // namespace

absl::Status CpuForward::Run(const StepBatch& b, const std::vector<int>& logit_rows,
                             bool want_mix_weights, CpuKvCache& cache, CpuForwardOutput* out) {
  const ModelConfig& c = config_;
  const int T = b.num_tokens(), d = c.hidden_size, V = c.vocab_size;
  const bool attn_res = c.attn_res();
  Workspace ws;
  ws.T = T;
  ws.prefix.resize(static_cast<size_t>(T) * d);
  ws.h.resize(ws.prefix.size());
  ws.xn.resize(ws.prefix.size());
  ws.out.resize(ws.prefix.size());
  ws.q.resize(static_cast<size_t>(T) * c.q_dim());
  ws.att.resize(ws.q.size());
  ws.k.resize(static_cast<size_t>(T) * c.kv_dim());
  ws.v.resize(ws.k.size());
  ws.gate.resize(static_cast<size_t>(T) * c.intermediate_size);
  ws.up.resize(ws.gate.size());
  ws.bank.resize(static_cast<size_t>(layout_.num_bank_slots) * T * d);
  ws.record_row.assign(T, -1);
  for (size_t k = 0; k < logit_rows.size(); ++k) ws.record_row[logit_rows[k]] = static_cast<int>(k);
  out->mix_weights.clear();
  if (want_mix_weights && attn_res) {
    out->mix_weights.assign(logit_rows.size() * layout_.total_weights(), 0.0f);
    ws.mix_weights = &out->mix_weights;
  }

  for (int t = 0; t < T; ++t) {
    const int id = b.token_ids[t];
    if (id < 0 || id >= V) return absl::InternalError(absl::StrCat("token id ", id, " out of range"));
    std::memcpy(&ws.prefix[static_cast<size_t>(t) * d], &weights_.embed[static_cast<size_t>(id) * d],
                sizeof(float) * d);
  }

  for (int s = 0; s < 2 * c.num_layers; ++s) {
    const int layer = s / 2;
    const bool is_attn = s % 2 == 0;
    const CpuLayerWeights& L = weights_.layers[layer];
    const std::vector<float>& gamma = is_attn ? L.input_norm : L.post_norm;
    if (attn_res) {
      // Sublayer input: mix of bank + [prefix] (the prefix alone while the bank is empty).
      if (ws.bank_count == 0) {
        ws.h = ws.prefix;
        if (ws.mix_weights) {
          for (int t = 0; t < T; ++t) {
            if (ws.record_row[t] >= 0) {
              (*ws.mix_weights)[static_cast<size_t>(ws.record_row[t]) * layout_.total_weights() +
                                layout_.weight_offset[s]] = 1.0f;
            }
          }
        }
      } else {
        const std::vector<float>& u = is_attn ? L.attn_res_u : L.mlp_res_u;
        MixRows(ws.bank, ws.bank_count, ws.prefix, u.data(), T, d, c.rms_norm_eps, nullptr,
                ws.h.data(), ws.record_row, layout_.weight_offset[s], layout_.total_weights(),
                ws.mix_weights);
      }
      if (layout_.snapshot_before[s]) {
        std::memcpy(&ws.bank[static_cast<size_t>(ws.bank_count) * T * d], ws.prefix.data(),
                    sizeof(float) * T * d);
        ++ws.bank_count;
        ws.prefix_empty = true;
      }
      RmsNorm(ws.h.data(), gamma.data(), T, d, c.rms_norm_eps, ws.xn.data());
    } else {
      RmsNorm(ws.prefix.data(), gamma.data(), T, d, c.rms_norm_eps, ws.xn.data());
    }
    if (is_attn) {
      if (auto st = Attention(layer, b, cache, ws); !st.ok()) return st;
    } else {
      Mlp(layer, ws);
    }
    if (ws.prefix_empty) {
      ws.prefix.swap(ws.out);
      ws.prefix_empty = false;
    } else {
      for (size_t i = 0; i < ws.prefix.size(); ++i) ws.prefix[i] += ws.out[i];
    }
  }

  // Final mix (AttnRes), norm and head, for the requested rows only.
  const int R = static_cast<int>(logit_rows.size());
  std::vector<float> final_h(static_cast<size_t>(R) * d);
  if (attn_res) {
    MixRows(ws.bank, ws.bank_count, ws.prefix, weights_.output_res_u.data(), T, d,
            c.rms_norm_eps, &logit_rows, final_h.data(), ws.record_row,
            layout_.weight_offset[2 * c.num_layers], layout_.total_weights(), ws.mix_weights);
  } else {
    for (int k = 0; k < R; ++k) {
      std::memcpy(&final_h[static_cast<size_t>(k) * d],
                  &ws.prefix[static_cast<size_t>(logit_rows[k]) * d], sizeof(float) * d);
    }
  }
  RmsNorm(final_h.data(), weights_.final_norm.data(), R, d, c.rms_norm_eps, final_h.data());
  out->logits.resize(static_cast<size_t>(R) * V);
  MatMulWt(final_h.data(), weights_.head().data(), R, d, V, out->logits.data());
  return absl::OkStatus();
}

}  // namespace attnres
