// CPU forward pass. The AttnRes bookkeeping follows ATTNRES.md §3 in the generalised form of
// MixLayout: before sublayer s the input is the mix of bank + [prefix] (or the prefix alone while
// the bank is empty); a snapshot moves the raw prefix into the bank; the sublayer output starts
// or extends the prefix.
#include "models/cpu_forward.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "models/attn_res_mix.h"
#include "models/cpu_ops.h"
#include "models/parallel/communicator.h"
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

CpuForward::CpuForward(const ModelConfig& config, const CpuWeights& weights, Communicator* comm)
    : config_(config),
      weights_(weights),
      comm_(comm),
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
      int64_t page = 0;
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
          int64_t page = 0;
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
          int64_t page = 0;
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

// The AttnRes mix for local rows: out[k] = mix(bank[0..count)[k] + [prefix[k]]) for k in `rows`
// (local indices); out row k (index_out_by_row) or i (the i-th of `rows`). bank is
// [slots, stride, d], prefix [stride, d]. Weights of recorded rows (record_row[row0 + k] >= 0)
// go to mix_weights at weight_offset.
struct MixArgs {
  const std::vector<float>* bank;
  int count;
  const std::vector<float>* prefix;
  int stride;
  int d;
  double eps;
  int row0;
  const std::vector<int>* record_row;
  std::vector<float>* mix_weights;
  int total_weights;
};

void MixRows(const MixArgs& a, const float* u, const std::vector<int>& rows, int weight_offset,
             float* out, bool index_out_by_row) {
  std::vector<const float*> src(a.count + 1);
  for (size_t i = 0; i < rows.size(); ++i) {
    const int k = rows[i];
    for (int j = 0; j < a.count; ++j) {
      src[j] = &(*a.bank)[(static_cast<size_t>(j) * a.stride + k) * a.d];
    }
    src[a.count] = &(*a.prefix)[static_cast<size_t>(k) * a.d];
    float* alpha = nullptr;
    const int rec = (*a.record_row)[a.row0 + k];
    if (a.mix_weights && rec >= 0) {
      alpha = a.mix_weights->data() + static_cast<size_t>(rec) * a.total_weights + weight_offset;
    }
    const size_t o = index_out_by_row ? static_cast<size_t>(k) : i;
    AttnResMix(src.data(), a.count + 1, u, a.d, a.eps, out + o * a.d, alpha);
  }
}

}  // namespace

absl::Status CpuForward::Run(const StepBatch& b, const std::vector<int>& logit_rows,
                             bool want_mix_weights, CpuKvCache& cache, CpuForwardOutput* out) {
  const ModelConfig& c = config_;
  const int T = b.num_tokens(), d = c.hidden_size, V = c.vocab_size;
  const bool attn_res = c.attn_res();
  // Sequence sharding (tensor parallel, long inputs; the paper's form): each rank keeps the
  // residual stream, the bank and the mixes of its own slice of the tokens, all-gathers the
  // normed sublayer inputs and reduce-scatters the sublayer outputs, so the bank memory is
  // divided by the world size. Otherwise every rank holds every row and all-reduces.
  const int world = comm_ ? comm_->world_size() : 1;
  const bool seq_shard = world > 1 && T >= seq_shard_min_tokens_;
  const int stride = seq_shard ? (T + world - 1) / world : T;  // local rows, padded
  const int row0 = seq_shard ? comm_->rank() * stride : 0;
  const int R = std::clamp(T - row0, 0, stride);                // this rank's real rows
  const size_t t_pad = static_cast<size_t>(seq_shard ? world * stride : T);
  Workspace ws;
  ws.T = T;
  ws.prefix.resize(static_cast<size_t>(stride) * d);
  ws.h.resize(ws.prefix.size());
  ws.bank.resize(static_cast<size_t>(layout_.num_bank_slots) * stride * d);
  ws.xn.resize(t_pad * d);      // gathered sublayer input (all rows)
  ws.out.resize(t_pad * d);     // sublayer output partial sums; rows >= T stay zero
  std::vector<float> xn_local(seq_shard ? ws.prefix.size() : 0);
  std::vector<float> out_local(seq_shard ? ws.prefix.size() : 0);
  ws.q.resize(static_cast<size_t>(T) * c.q_dim());
  ws.att.resize(ws.q.size());
  ws.k.resize(static_cast<size_t>(T) * c.kv_dim());
  ws.v.resize(ws.k.size());
  ws.gate.resize(static_cast<size_t>(T) * c.intermediate_size);
  ws.up.resize(ws.gate.size());
  ws.record_row.assign(T, -1);
  for (size_t k = 0; k < logit_rows.size(); ++k) ws.record_row[logit_rows[k]] = static_cast<int>(k);
  out->mix_weights.clear();
  if (want_mix_weights && attn_res) {
    out->mix_weights.assign(logit_rows.size() * layout_.total_weights(), 0.0f);
    ws.mix_weights = &out->mix_weights;
  }
  std::vector<int> local_rows(R);
  std::iota(local_rows.begin(), local_rows.end(), 0);
  const MixArgs mix{&ws.bank, 0, &ws.prefix, stride, d, c.rms_norm_eps, row0, &ws.record_row,
                    ws.mix_weights, layout_.total_weights()};

  for (int t = 0; t < T; ++t) {
    const int id = b.token_ids[t];
    if (id < 0 || id >= V) return absl::InternalError(absl::StrCat("token id ", id, " out of range"));
  }
  for (int k = 0; k < R; ++k) {
    std::memcpy(&ws.prefix[static_cast<size_t>(k) * d],
                &weights_.embed[static_cast<size_t>(b.token_ids[row0 + k]) * d], sizeof(float) * d);
  }

  for (int s = 0; s < 2 * c.num_layers; ++s) {
    const int layer = s / 2;
    const bool is_attn = s % 2 == 0;
    const CpuLayerWeights& L = weights_.layers[layer];
    const std::vector<float>& gamma = is_attn ? L.input_norm : L.post_norm;
    float* xn = seq_shard ? xn_local.data() : ws.xn.data();
    if (attn_res) {
      // Sublayer input: mix of bank + [prefix] (the prefix alone while the bank is empty).
      if (ws.bank_count == 0) {
        std::copy(ws.prefix.begin(), ws.prefix.end(), ws.h.begin());
        for (int k = 0; k < R && ws.mix_weights; ++k) {
          if (ws.record_row[row0 + k] >= 0) {
            (*ws.mix_weights)[static_cast<size_t>(ws.record_row[row0 + k]) *
                                  layout_.total_weights() + layout_.weight_offset[s]] = 1.0f;
          }
        }
      } else {
        MixArgs m = mix;
        m.count = ws.bank_count;
        MixRows(m, (is_attn ? L.attn_res_u : L.mlp_res_u).data(), local_rows,
                layout_.weight_offset[s], ws.h.data(), /*index_out_by_row=*/true);
      }
      if (layout_.snapshot_before[s]) {
        std::copy(ws.prefix.begin(), ws.prefix.end(),
                  ws.bank.begin() + static_cast<size_t>(ws.bank_count) * stride * d);
        ++ws.bank_count;
        ws.prefix_empty = true;
      }
      RmsNorm(ws.h.data(), gamma.data(), R, d, c.rms_norm_eps, xn);
    } else {
      RmsNorm(ws.prefix.data(), gamma.data(), R, d, c.rms_norm_eps, xn);
    }
    if (seq_shard) comm_->AllGather(xn, xn_local.size(), ws.xn.data());
    if (is_attn) {
      if (auto st = Attention(layer, b, cache, ws); !st.ok()) return st;
    } else {
      Mlp(layer, ws);
    }
    // Sum the row-parallel partial outputs: this rank's rows only, or every row.
    const float* delta = ws.out.data();
    if (seq_shard) {
      comm_->ReduceScatterSum(ws.out.data(), out_local.size(), out_local.data());
      delta = out_local.data();
    } else if (comm_) {
      comm_->AllReduceSum(ws.out.data(), static_cast<size_t>(T) * d);
    }
    const size_t n = static_cast<size_t>(R) * d;
    if (ws.prefix_empty) {
      std::copy_n(delta, n, ws.prefix.begin());
      ws.prefix_empty = false;
    } else {
      for (size_t i = 0; i < n; ++i) ws.prefix[i] += delta[i];
    }
  }

  // Final mix (AttnRes), norm and head, for the requested rows only. Under sequence sharding
  // each row is computed by the rank that owns it and summed into place on every rank.
  const int num_rows = static_cast<int>(logit_rows.size());
  std::vector<float> final_h(static_cast<size_t>(num_rows) * d, 0.0f);
  std::vector<int> owned;  // local indices of requested rows this rank owns
  std::vector<int> slot;   // their index in logit_rows
  for (int i = 0; i < num_rows; ++i) {
    const int k = logit_rows[i] - row0;
    if (k >= 0 && k < R) {
      owned.push_back(k);
      slot.push_back(i);
    }
  }
  if (attn_res) {
    MixArgs m = mix;
    m.count = ws.bank_count;
    std::vector<float> mixed(owned.size() * d);
    MixRows(m, weights_.output_res_u.data(), owned, layout_.weight_offset[2 * c.num_layers],
            mixed.data(), /*index_out_by_row=*/false);
    for (size_t i = 0; i < owned.size(); ++i) {
      std::copy_n(&mixed[i * d], d, &final_h[static_cast<size_t>(slot[i]) * d]);
    }
  } else {
    for (size_t i = 0; i < owned.size(); ++i) {
      std::copy_n(&ws.prefix[static_cast<size_t>(owned[i]) * d], d,
                  &final_h[static_cast<size_t>(slot[i]) * d]);
    }
  }
  if (seq_shard) {
    comm_->AllReduceSum(final_h.data(), final_h.size());
    if (ws.mix_weights) comm_->AllReduceSum(ws.mix_weights->data(), ws.mix_weights->size());
  }
  RmsNorm(final_h.data(), weights_.final_norm.data(), num_rows, d, c.rms_norm_eps, final_h.data());
  // The head may be this rank's vocabulary slice: gather [world][rows][V_local] into [rows][V].
  const int v_local = static_cast<int>(weights_.head().size() / d);
  std::vector<float> local(static_cast<size_t>(num_rows) * v_local);
  MatMulWt(final_h.data(), weights_.head().data(), num_rows, d, v_local, local.data());
  if (!comm_) {
    out->logits = std::move(local);
    return absl::OkStatus();
  }
  std::vector<float> gathered(local.size() * world);
  comm_->AllGather(local.data(), local.size(), gathered.data());
  out->logits.resize(static_cast<size_t>(num_rows) * V);
  for (int k = 0; k < world; ++k) {
    for (int r = 0; r < num_rows; ++r) {
      std::copy_n(&gathered[(static_cast<size_t>(k) * num_rows + r) * v_local], v_local,
                  &out->logits[static_cast<size_t>(r) * V + k * v_local]);
    }
  }
  return absl::OkStatus();
}

}  // namespace attnres
