// GPU forward orchestration. The AttnRes bookkeeping (bank_count, prefix_empty, snapshots) is
// the same state machine as CpuForward::Run, driven by MixLayout; the collectives sit where
// CpuForward's all-reduce form has them.
#include "models/cuda/cuda_forward.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "kernels/env_switch.h"
#include "models/rope.h"

namespace attnres::cuda {
namespace {
// Split-KV partials: enough for 32 splits of a few dozen decode rows at 8B shapes.
constexpr size_t kAttnSplitBytes = 32u << 20;
constexpr size_t kSlotAlignElems = 256 / sizeof(float);  // GEMM outputs stay 256-byte aligned
// Two-phase mixing serves every block of steps of up to this many rows (decode batches, the
// boundary's one-chunk-per-thread form). ATTNRES_TWO_PHASE=0 turns it off (to measure what it
// buys).
constexpr int kTwoPhaseMaxRows = 255;

// Longer steps (prefill) mix in two phases only in blocks whose completed bank holds at least
// this many slots. Per later mix and row, phase 1 (fused into the snapshot boundary, which has
// the bank staged already) writes one fp32 summary and phase 2 reads it: 4 bf16 rows of traffic
// against the bank's slots the one-phase mix reads, so from 5 slots on it pays (4: even). 8B
// Block prefill: 70 of 280 bank rows a token saved; the kernel bench's per-block rows agree
// (4 slots: 0.33 against 0.33 ms, 5: 0.43 against 0.38 on an H200, bench/BENCHMARKS.md run 42).
// ATTNRES_PREFILL_PHASE1_SLOTS=N: from N slots (0: never), to measure the rule. It serves
// every step over kTwoPhaseMaxRows rows, a full 256-row decode batch too: there the 8B Block
// step's boundaries took 0.595 ms against 0.695 one-phase, 14.92 ms a step against 15.04 (H100,
// bench/BENCHMARKS.md run 42).
constexpr int kPrefillPhase1MinSlots = 5;

int PrefillPhase1Slots() {
  return std::max(0, kernels::EnvInt("ATTNRES_PREFILL_PHASE1_SLOTS", kPrefillPhase1MinSlots));
}

// Decode batches of more than kForkAboveRows rows, and those whose snapshot boundary has no spare
// resident slot left for each later mix's phase-1 block (kernels::Phase1FitsBeside; on an H200:
// above 16 rows at the 8B shape, 7 later mixes of 512-thread blocks; above 65 at the 1B shape, 3
// later mixes of 256-thread blocks, two per SM), fork phase 1 off the boundary. Forked after the
// qkv GEMM it beats phase 1 in the boundary even where that fits: 1B Block b64 1827 us a step
// against 1841 (bench/BENCHMARKS.md run 40), b16 1.493 ms against 1.503 (run 41; 8B b16 even);
// at 8 rows it loses (1B +1.0%, 8B +0.4%), so decode graphs fork from the 16-row bucket. (A
// traced forked step idles ~9.5 us after its first kernel; a probe idles so only under CUPTI,
// so that is most likely the tracer's: run 41. The spans above include it.)
// ATTNRES_FORK_PHASE1=N forks from N rows instead (0: never), to measure the rule.
constexpr int kForkByFit = -1;
constexpr int kForkAboveRows = 8;

int ForkPhase1Rows() {
  const char* v = std::getenv("ATTNRES_FORK_PHASE1");
  return v == nullptr ? kForkByFit : std::max(0, std::atoi(v));
}

// The fields RopeKvWriteArgs and PagedAttentionArgs share: the layer's K/V caches, the step's
// positions and page tables, and the rank's head shape.
template <typename Args>
void SetPagedKv(const ModelConfig& c, const KvPool& pool, int layer, const DeviceBatch& b,
                Args& x) {
  x.k_cache = pool.k_layer(layer);
  x.v_cache = pool.v_layer(layer);
  x.positions = b.positions;
  x.kv_page_indptr = b.kv_page_indptr;
  x.kv_page_indices = b.kv_page_indices;
  x.T = b.T;
  x.H = c.num_heads;
  x.KV = c.num_kv_heads;
  x.hd = c.head_dim;
  x.page_size = pool.page_size;
}

}  // namespace

absl::StatusOr<KvPool> KvPool::Create(const ModelConfig& c, int64_t num_pages, int page_size) {
  KvPool p;
  p.num_pages = num_pages;
  p.page_size = page_size;
  p.layer_elems = static_cast<size_t>(num_pages) * page_size * c.kv_dim();
  const size_t bytes = p.layer_elems * c.num_layers * sizeof(bf16);
  auto k = DeviceAlloc(bytes);
  if (!k.ok()) return k.status();
  auto v = DeviceAlloc(bytes);
  if (!v.ok()) return v.status();
  p.k = std::move(*k);
  p.v = std::move(*v);
  return p;
}

void CudaForward::Carve(Arena& a) {
  const size_t T = max_tokens_, d = c_.hidden_size, f = c_.intermediate_size;
  const size_t q = c_.q_dim(), kv = c_.kv_dim(), slots = layout_.num_bank_slots;
  prefix_ = a.Take<bf16>(T * d);
  bank_ = a.Take<bf16>(slots * T * d);
  bank_inv_rms_ = a.Take<float>(slots * T);
  xn_ = a.Take<bf16>(T * d);
  qkv_ = a.Take<bf16>(T * (q + 2 * kv));
  const size_t pad = cudnn_ ? CudnnAttention::kBucket : 0;
  q_ = a.Take<bf16>((T + pad) * q);
  att_ = a.Take<bf16>((T + pad) * q);
  delta_ = a.Take<bf16>(T * d);
  gate_up_ = a.Take<bf16>(T * 2 * f);
  act_ = a.Take<bf16>(T * f);
  rope_ = a.Take<float2>(T * (c_.head_dim / 2));
  inv_freq_ = a.Take<double>(c_.head_dim / 2);
  final_xn_ = a.Take<bf16>(T * d);
  boundary_stats_ =
      a.Take<float>(fold_boundary_ ? size_t(kernels::kGemvMaxRows) * kernels::kBoundaryStats *
                                         kernels::GemvTiles(c_.hidden_size)
                                   : 0);
  attn_split_ = a.Take<float>(kAttnSplitBytes / sizeof(float));
  dense_k_ = a.Take<bf16>(cudnn_ ? size_t(kDenseMaxContext) * kv : 0);
  dense_v_ = a.Take<bf16>(cudnn_ ? size_t(kDenseMaxContext) * kv : 0);
  // [Q, rows] states: decode steps' (+ 1: a forked phase 1 also scores the next block's
  // snapshot mix), or prefill's (never forked) where longer.
  const size_t decode = layout_.later_mixes.empty() ? 0 : (max_later_mixes_ + 1) * two_phase_rows_;
  const size_t states = std::max<size_t>(
      decode, prefill_phase1_slots_ > 0 ? size_t(max_later_mixes_) * max_tokens_ : 0);
  summary_h_ = a.Take<float>(states * d);
  summary_ml_ = a.Take<float2>(states);
  summary_scores_ = a.Take<float>(states * slots);
  const int world = plan_.world_size;
  head_gather_ = a.Take<float>(world > 1 ? world * HeadSlotElems(max_head_rows_) : 0);
}

size_t CudaForward::HeadSlotElems(int count) const {
  const size_t n = static_cast<size_t>(count) * plan_.vocab_local;
  return (n + kSlotAlignElems - 1) / kSlotAlignElems * kSlotAlignElems;
}

absl::StatusOr<std::unique_ptr<CudaForward>> CudaForward::Create(const TensorParallelPlan& plan,
                                                                 const DeviceWeights& w,
                                                                 NcclCommunicator* comm,
                                                                 int max_tokens,
                                                                 int max_head_rows) {
  const bool matches = comm ? comm->world_size() == plan.world_size && comm->rank() == plan.rank
                            : plan.world_size == 1;
  if (!matches) {
    return absl::InvalidArgumentError(absl::StrCat(
        "CudaForward: plan of rank ", plan.rank, " of ", plan.world_size, " with ",
        comm ? absl::StrCat("communicator rank ", comm->rank(), " of ", comm->world_size())
             : std::string("no communicator")));
  }
  std::unique_ptr<CudaForward> f(new CudaForward(plan, w, comm));
  const ModelConfig& c = f->c_;
  f->layout_ = MixLayout::For(c);
  const std::vector<int>& later = f->layout_.later_mixes;
  f->max_later_mixes_ = later.empty() ? 0 : *std::max_element(later.begin(), later.end());
  // The final mix, a later mix of the last block, shares a phase-1 block with another query.
  for (int s = 0; s < static_cast<int>(later.size()); ++s) {
    f->fit_queries_ = std::max(f->fit_queries_, std::min(later[s], 2 * c.num_layers - 1 - s));
  }
  f->max_tokens_ = max_tokens;
  f->max_head_rows_ = max_head_rows;
  f->fuse_rope_ = kernels::EnvOn("ATTNRES_FUSED_ROPE");
  f->gemv_rope_ = kernels::EnvOn("ATTNRES_GEMV_ROPE");
  f->fold_boundary_ = kernels::EnvOptIn("ATTNRES_FUSED_BOUNDARY") && f->comm_ == nullptr;
  if (c.attn_res() && kernels::EnvOn("ATTNRES_TWO_PHASE")) {
    f->two_phase_rows_ = std::min(max_tokens, kTwoPhaseMaxRows);
    // Prefill summaries take [Q, max_tokens, d] fp32: only where some block would run phase 1.
    const int slots = f->layout_.num_bank_slots, min_slots = PrefillPhase1Slots();
    if (max_tokens > kTwoPhaseMaxRows && min_slots > 0 && slots >= min_slots &&
        kernels::StagedPhase1Fits(c.hidden_size, slots - 1, f->max_later_mixes_)) {
      f->prefill_phase1_slots_ = min_slots;
    }
    f->fork_rows_ = ForkPhase1Rows();
    f->fork_after_gemm_ = kernels::EnvOn("ATTNRES_FORK_AFTER_GEMM");
    auto side = StreamCreate();
    if (!side.ok()) return side.status();
    f->side_ = std::move(*side);
    for (EventPtr* e : {&f->fork_, &f->join_}) {
      auto ev = EventCreate();
      if (!ev.ok()) return ev.status();
      *e = std::move(*ev);
    }
  }
  auto gemm = Gemm::Create();
  if (!gemm.ok()) return gemm.status();
  f->gemm_ = std::move(*gemm);
  // cuDNN's attention only pays off on long prefill chunks. Its first plan compiles cuDNN's
  // kernels (~1 s): built here, for a full-budget chunk, not on the first long prompt.
  if (kernels::EnvOn("ATTNRES_CUDNN") && CudnnAttention::Built() && max_tokens >= kDenseMinRows) {
    const auto start = std::chrono::steady_clock::now();
    auto cudnn = CudnnAttention::Create(c.num_heads, c.num_kv_heads, c.head_dim,
                                        static_cast<float>(1.0 / std::sqrt(c.head_dim)));
    const absl::Status st =
        cudnn.ok() ? (*cudnn)->Prepare(max_tokens, max_tokens) : cudnn.status();
    if (st.ok()) {
      f->cudnn_ = std::move(*cudnn);
      std::fprintf(stderr, "attnres cuda: cuDNN prefill attention from %d rows, plan in %.2f s\n",
                   kDenseMinRows,
                   std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
      // The other plans of prompts without a cached prefix, built in the background.
      for (int n = kDenseMinRows; n < max_tokens; n += CudnnAttention::kBucket) {
        f->cudnn_->ReadyOrQueue(n, n);
      }
    } else {
      std::fprintf(stderr, "attnres cuda: prefill attention without cuDNN: %s\n",
                   std::string(st.message()).c_str());
    }
  }
  Arena measure;
  f->Carve(measure);
  auto mem = DeviceAlloc(measure.bytes());
  if (!mem.ok()) return mem.status();
  f->storage_ = std::move(*mem);
  f->workspace_bytes_ = measure.bytes();
  // Zeros: cuDNN reads its buckets' rows past the live ones (masked; they must not be NaN).
  ATTNRES_CUDA_RETURN(cudaMemset(f->storage_.get(), 0, measure.bytes()));
  Arena place(f->storage_.get());
  f->Carve(place);
  const std::vector<double> inv_freq = RopeInverseFrequencies(c);
  ATTNRES_CUDA_RETURN(cudaMemcpy(f->inv_freq_, inv_freq.data(), sizeof(double) * inv_freq.size(),
                                 cudaMemcpyHostToDevice));
  return f;
}

absl::Status CudaForward::TuneGemms() {
  const int d = c_.hidden_size;
  struct Shape {
    const char* name;
    const bf16* w;
    int N, K;
    bool out_f32;
  };
  std::vector<Shape> shapes = {{"lm_head", w_.lm_head, plan_.vocab_local, d, true}};
  if (!w_.layers.empty()) {  // every layer has layer 0's shapes
    const DeviceLayerWeights& L = w_.layers[0];
    shapes.push_back({"qkv", L.w_qkv, c_.q_dim() + 2 * c_.kv_dim(), d, false});
    shapes.push_back({"o", L.w_o, d, c_.q_dim(), false});
    shapes.push_back({"down", L.w_down, d, c_.intermediate_size, false});
  }
  auto stream = StreamCreate();
  if (!stream.ok()) return stream.status();
  size_t dirty = 0;  // workspace bytes Tune wrote
  for (const Shape& shape : shapes) {
    const auto start = std::chrono::steady_clock::now();
    auto t = gemm_->Tune(shape.w, shape.N, shape.K, shape.out_f32, stream->get(), storage_.get(),
                         workspace_bytes_);
    if (!t.ok()) return t.status();
    if (*t == nullptr) continue;  // within Gemv's static limit
    dirty = std::max(
        dirty, std::min(workspace_bytes_, Gemm::TuneScratchBytes(shape.N, shape.K, shape.out_f32)));
    std::fprintf(stderr, "attnres cuda: %s %s, timed in %.2f s\n", shape.name,
                 (*t)->Describe().c_str(),
                 std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  // Zeros again where it wrote (Create's rule: cuDNN reads its buckets' rows past the live ones).
  if (dirty > 0) ATTNRES_CUDA_RETURN(cudaMemsetAsync(storage_.get(), 0, dirty, stream->get()));
  ATTNRES_CUDA_RETURN(cudaStreamSynchronize(stream->get()));
  return absl::OkStatus();
}

bool CudaForward::DensePlansReady(const DeviceBatch& b) {
  if (!cudnn_ || b.dense.empty()) return false;
  bool ready = true;
  for (const DeviceBatch::DenseChunk& d : b.dense) {  // every chunk: each missing plan queued
    ready = (wait_for_plans_ ? cudnn_->Prepare(d.rows, d.context).ok()
                             : cudnn_->ReadyOrQueue(d.rows, d.context)) &&
            ready;
  }
  if (ready) dense_chunks_run_ += static_cast<int64_t>(b.dense.size());
  return ready;
}

void CudaForward::WaitForAttentionPlans() {
  if (cudnn_) cudnn_->WaitForQueued();
}

absl::Status CudaForward::Attention(int layer, const DeviceBatch& b, const KvPool& pool, bool dense,
                                    const kernels::GemvNormIn* in,
                                    const kernels::GemvResidual* residual, cudaStream_t s) {
  const DeviceLayerWeights& L = w_.layers[layer];
  const int d = c_.hidden_size, q = c_.q_dim(), kv = c_.kv_dim();
  const kernels::RopeInputs rope{qkv_, rope_, L.q_norm, L.k_norm,
                                 static_cast<float>(c_.rms_norm_eps)};
  kernels::RopeKvWriteArgs r;
  SetPagedKv(c_, pool, layer, b, r);
  r.rope = rope;
  r.row_seq = b.row_seq;
  r.q_out = q_;
  // A Gemv-sized step (without a folded boundary or q/k norms) rotates q and writes the new
  // K/V in the qkv projection's epilogue (kernels::GemvQkvRope): one kernel fewer on the
  // latency-bound chain between the qkv and o projections.
  const bool rope_in_gemv = gemv_rope_ && !in && kernels::GemvQkvRopeSupports(r) &&
                            gemm_->TakesGemv(xn_, L.w_qkv, b.T, q + 2 * kv, d);
  if (in) {
    ATTNRES_CUDA_RETURN(kernels::GemvNormed(*in, L.w_qkv, qkv_, b.T, q + 2 * kv, d, s));
  } else if (rope_in_gemv) {
    ATTNRES_CUDA_RETURN(kernels::GemvQkvRope(xn_, L.w_qkv, d, r, s));
  } else if (auto st = gemm_->Run(xn_, L.w_qkv, qkv_, b.T, q + 2 * kv, d, false, s); !st.ok()) {
    return st;
  }
  if (auto st = ForkPendingPhase1(s); !st.ok()) return st;
  kernels::PagedAttentionArgs a;
  SetPagedKv(c_, pool, layer, b, a);
  a.q = q_;
  a.tiles = b.tiles;
  a.num_tiles = b.num_tiles;
  a.max_tile_rows = b.max_tile_rows;
  a.max_context = b.max_context;
  a.workspace = attn_split_;
  a.workspace_bytes = kAttnSplitBytes;
  a.splits = b.attn_splits;
  a.scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(c_.head_dim)));
  a.out = att_;
  // Otherwise a pure decode step (every row a sequence of its own: one-row tiles, no dense
  // chunks) whose attention grid needs no split-KV runs RoPE and the K/V write inside the
  // attention kernel (ops.h PagedAttentionArgs::rope), which then loads the older K/V during the
  // QKV projection. Split grids (a few sequences: latency-bound) keep the separate kernel, which
  // measured equal or faster there depending on the card (bench/BENCHMARKS.md run 21).
  const bool pure_decode = !dense && b.max_tile_rows == 1 && b.num_tiles == b.T;
  if (!rope_in_gemv) {
    if (fuse_rope_ && pure_decode && kernels::PagedAttentionSplitCount(a) == 1) {
      a.rope = rope;
    } else {
      ATTNRES_CUDA_RETURN(kernels::RopeKvWrite(r, s));
    }
  }
  if (dense && cudnn_) {
    if (auto st = DenseAttention(layer, b, pool, s); st.ok()) {
      // The rest without split-KV: its merge rewrites every row, the dense ones too.
      a.num_tiles = b.num_sparse_tiles;
      a.workspace = nullptr;
      a.workspace_bytes = 0;
      a.splits = 0;
    } else {  // the attention kernel takes every tile, this step and after
      std::fprintf(stderr, "attnres cuda: cuDNN attention off: %s\n",
                   std::string(st.message()).c_str());
      cudnn_.reset();
    }
  }
  if (a.num_tiles > 0) ATTNRES_CUDA_RETURN(kernels::PagedAttention(a, s));
  if (residual) {
    ATTNRES_CUDA_RETURN(kernels::GemvAddResidual(att_, L.w_o, b.T, d, q, *residual, s));
    return absl::OkStatus();
  }
  if (auto st = gemm_->Run(att_, L.w_o, delta_, b.T, d, q, false, s); !st.ok()) return st;
  return ReduceDelta(b.T, s);
}

absl::Status CudaForward::DenseAttention(int layer, const DeviceBatch& b, const KvPool& pool,
                                         cudaStream_t s) {
  const int q = c_.q_dim(), kv = c_.kv_dim();
  // In row order: a chunk's bucket may run past its rows into the next chunk's, which is
  // computed after it, and the attention kernel's rows come last.
  for (size_t i = 0; i < b.dense.size(); ++i) {
    const DeviceBatch::DenseChunk& d = b.dense[i];
    kernels::GatherKvArgs g;
    g.k_cache = pool.k_layer(layer);
    g.v_cache = pool.v_layer(layer);
    g.pages = b.kv_page_indices + d.page_offset;
    g.n = d.context;
    g.kv_dim = kv;
    g.page_size = pool.page_size;
    g.k_out = dense_k_;
    g.v_out = dense_v_;
    ATTNRES_CUDA_RETURN(kernels::GatherKv(g, s));
    CudnnAttention::Chunk c;
    c.q = q_ + static_cast<size_t>(d.first_row) * q;
    c.k = dense_k_;
    c.v = dense_v_;
    c.out = att_ + static_cast<size_t>(d.first_row) * q;
    c.lens = b.dense_lens + 8 * i;
    c.s_q = d.rows;
    c.s_kv = d.context;
    if (auto st = cudnn_->Run(c, s); !st.ok()) return st;
  }
  return absl::OkStatus();
}

absl::Status CudaForward::ReduceDelta(int T, cudaStream_t s) {
  if (!comm_) return absl::OkStatus();
  const size_t n = static_cast<size_t>(T) * c_.hidden_size;
  return comm_->AllReduceSum(delta_, n, CollectiveDType::kBF16, s);
}

int CudaForward::DecodeAttentionSplits(int rows, int max_context, int padded_rows) const {
  kernels::PagedAttentionArgs a;
  a.num_tiles = rows;    // one tile per sequence row
  a.T = padded_rows;     // the partials the workspace must hold (PagedAttentionSplitCount caps)
  a.max_tile_rows = 1;
  a.max_context = max_context;
  a.H = c_.num_heads;
  a.KV = c_.num_kv_heads;
  a.hd = c_.head_dim;
  a.workspace = attn_split_;
  a.workspace_bytes = kAttnSplitBytes;
  return kernels::PagedAttentionSplitCount(a);
}

absl::Status CudaForward::Mlp(int layer, const DeviceBatch& b, const kernels::GemvNormIn* in,
                              const kernels::GemvResidual* residual, cudaStream_t s) {
  const DeviceLayerWeights& L = w_.layers[layer];
  const int d = c_.hidden_size, f = c_.intermediate_size;
  if (in) {
    ATTNRES_CUDA_RETURN(kernels::GemvSwiGluNormed(*in, L.w_gate_up, act_, b.T, f, d, s));
  } else if (auto st = gemm_->RunSwiGlu(xn_, L.w_gate_up, gate_up_, act_, b.T, f, d, s); !st.ok()) {
    return st;
  }
  if (auto st = ForkPendingPhase1(s); !st.ok()) return st;
  if (residual) {
    ATTNRES_CUDA_RETURN(kernels::GemvAddResidual(act_, L.w_down, b.T, d, f, *residual, s));
    return absl::OkStatus();
  }
  if (auto st = gemm_->Run(act_, L.w_down, delta_, b.T, d, f, false, s); !st.ok()) return st;
  return ReduceDelta(b.T, s);
}

absl::Status CudaForward::Run(const DeviceBatch& b, const KvPool& pool, float* mix_weights,
                              cudaStream_t s) {
  if (b.T > max_tokens_ || b.T < 1) {
    return absl::InvalidArgumentError(
        absl::StrCat("batch of ", b.T, " tokens; the runner holds up to ", max_tokens_));
  }
  const bool attn_res = c_.attn_res();
  const int d = c_.hidden_size;
  const bool dense = DensePlansReady(b);
  ATTNRES_CUDA_RETURN(kernels::EmbeddingGather(b.token_ids, w_.embed, b.T, d, prefix_, s));
  ATTNRES_CUDA_RETURN(kernels::RopeTable(b.positions, inv_freq_, b.T, c_.head_dim / 2, rope_, s));
  kernels::ResidualBoundaryArgs r;
  r.num_rows = b.T;
  r.T = b.T;
  r.d = d;
  r.prefix = prefix_;
  r.bank = bank_;
  r.bank_inv_rms = bank_inv_rms_;
  r.eps = static_cast<float>(c_.rms_norm_eps);
  r.out = xn_;
  r.mix_weights = attn_res ? mix_weights : nullptr;
  r.record_row = b.record_row;
  r.mix_stride = layout_.total_weights();
  const bool two_phase = b.T <= two_phase_rows_;
  const bool prefill_two_phase = !two_phase && prefill_phase1_slots_ > 0;
  r.summary_h = summary_h_;
  r.summary_ml = summary_ml_;
  r.summary_scores = summary_scores_;
  r.summary_stride = layout_.num_bank_slots;
  const bool fork = two_phase && max_later_mixes_ > 0 &&
                    (fork_rows_ == kForkByFit
                         ? b.T > kForkAboveRows || !kernels::Phase1FitsBeside(b.T, d, fit_queries_)
                         : fork_rows_ > 0 && b.T >= fork_rows_);
  bool joined = true;  // false while a forked phase 1 runs on side_
  pending_phase1_.reset();
  auto join = [&]() -> absl::Status {  // before a mix that reads phase 1's summaries
    r.after_join = !joined;
    if (!joined) ATTNRES_CUDA_RETURN(cudaStreamWaitEvent(s, join_.get(), 0));
    joined = true;
    return absl::OkStatus();
  };
  // Phase 1 of snapshot s scores mixes s+1 .. s+later (they read the bank s completes, and
  // their queries are rows s+1.. of res_u). Forked, it also scores the next snapshot's mix,
  // s+later+1, which reads the same sources: the bank before s's slot, then that block's sum.
  // Prefill: only blocks of enough slots, and the final mix only where the head takes every row
  // (prompt logprobs; otherwise it mixes a row or a few, and T summaries would be wasted).
  const int num_sub = 2 * c_.num_layers;
  auto phase1_queries = [&](int sub) {
    const int later = layout_.later_mixes[sub];
    if (two_phase) return later + (fork && later > 0 && sub + later + 1 < num_sub ? 1 : 0);
    if (!prefill_two_phase || r.bank_count + 1 < prefill_phase1_slots_) return 0;
    const int q = b.R < b.T ? std::min(later, num_sub - 1 - sub) : later;
    return kernels::StagedPhase1Fits(d, r.bank_count, q) ? q : 0;
  };
  int last_snapshot = 0, last_queries = 0;
  // Boundary x's index among the last snapshot's phase-1 summaries (its mix merges that state
  // instead of reading the bank), or -1; valid once the boundaries before x are booked.
  auto phase2_index = [&](int x) {
    const int q = x - last_snapshot - 1;
    return (two_phase || prefill_two_phase) && attn_res && x > 0 && q < last_queries ? q : -1;
  };
  // Folding the boundaries into the Gemvs around them (fold_boundary_): the step must be Gemv's
  // (checked per matrix below), every AttnRes mix it folds a phase-2 one, and no mix weights
  // recorded (the folded forms do not write them).
  const bool fold_step = fold_boundary_ && b.T <= kernels::kGemvMaxRows &&
                         kernels::GemvNormedSupports(b.T, d) &&
                         (!attn_res || (two_phase && !fork && mix_weights == nullptr));
  const int tiles = kernels::GemvTiles(d);
  // Boundary `next`, decided while the sublayer before it runs (so after its own boundary's
  // bookkeeping): its mix is a phase-2 one (last_snapshot's summary), and both the GEMM before it
  // (o or down) and the one after (qkv or gate/up) take Gemv.
  auto folds = [&](int next) {
    if (!fold_step || next < 1 || next >= num_sub) return false;
    if (attn_res && (layout_.snapshot_before[next] || phase2_index(next) < 0)) return false;
    const DeviceLayerWeights& before = w_.layers[(next - 1) / 2];
    const DeviceLayerWeights& after = w_.layers[next / 2];
    const int f = c_.intermediate_size, q = c_.q_dim(), qkv = q + 2 * c_.kv_dim();
    const bool produced = (next - 1) % 2 == 0 ? gemm_->TakesGemv(att_, before.w_o, b.T, d, q)
                                              : gemm_->TakesGemv(act_, before.w_down, b.T, d, f);
    const bool consumed = next % 2 == 0
                              ? gemm_->TakesGemv(prefix_, after.w_qkv, b.T, qkv, d)
                              : gemm_->TakesGemvSwiGlu(prefix_, after.w_gate_up, b.T, f, d);
    return produced && consumed;
  };
  // The row offset of (phase-2) boundary `next`'s state in the [Q, T, ...] summaries.
  auto summary_of = [&](int next) { return static_cast<size_t>(phase2_index(next)) * b.T; };
  bool folded = false;  // whether this sublayer's boundary was folded (decided one earlier)
  kernels::GemvNormIn norm_in;
  for (int sub = 0; sub < num_sub; ++sub) {
    const int layer = sub / 2;
    const bool is_attn = sub % 2 == 0;
    const DeviceLayerWeights& L = w_.layers[layer];
    r.delta = sub == 0 ? nullptr : delta_;
    r.gamma = is_attn ? L.input_norm : L.post_norm;
    r.u = attn_res ? (is_attn ? L.attn_res_u : L.mlp_res_u) : nullptr;
    r.snapshot = attn_res && layout_.snapshot_before[sub];
    r.mix_offset = attn_res ? layout_.weight_offset[sub] : 0;
    r.summary_index = phase2_index(sub);
    r.summary_queries = r.snapshot ? phase1_queries(sub) : 0;
    r.summary_u = attn_res ? w_.res_u + static_cast<size_t>(sub + 1) * d : nullptr;
    if (r.snapshot) {
      last_snapshot = sub;
      last_queries = r.summary_queries;
      if (prefill_two_phase && r.summary_queries > 0) ++prefill_phase1_boundaries_;
    }
    r.after_join = false;
    if (r.summary_index >= 0) {
      if (auto st = join(); !st.ok()) return st;
    }
    if (folded) {
      // Done by the GEMMs around it: the previous one added its output to the stream, and this
      // sublayer's first one normalizes (norm_in, set then).
      ++boundaries_folded_;
    } else if (fork && r.summary_queries > 0) {
      if (auto st = ForkPhase1(r, s); !st.ok()) return st;
      joined = false;
    } else {
      ATTNRES_CUDA_RETURN(kernels::ResidualBoundary(r, s));
    }
    if (r.snapshot) ++r.bank_count;
    r.prefix_empty = r.snapshot;
    const kernels::GemvNormIn in = norm_in;  // this boundary's, where folded
    const bool folded_in = folded;
    folded = folds(sub + 1);
    kernels::GemvResidual residual;
    if (folded) {  // the next boundary: this sublayer's last GEMM adds, the next one normalizes
      const int next = sub + 1;
      const DeviceLayerWeights& N = w_.layers[next / 2];
      residual.prefix = prefix_;
      residual.prefix_empty = r.prefix_empty;
      residual.stats = boundary_stats_;
      norm_in = kernels::GemvNormIn{};
      norm_in.prefix = prefix_;
      norm_in.stats = boundary_stats_;
      norm_in.tiles = tiles;
      norm_in.gamma = next % 2 == 0 ? N.input_norm : N.post_norm;
      norm_in.eps = r.eps;
      if (attn_res) {
        residual.u = next % 2 == 0 ? N.attn_res_u : N.mlp_res_u;
        residual.summary_h = summary_h_ + summary_of(next) * d;
        norm_in.summary_h = residual.summary_h;
        norm_in.summary_ml = summary_ml_ + summary_of(next);
      }
    }
    const kernels::GemvNormIn* in_ptr = folded_in ? &in : nullptr;
    const kernels::GemvResidual* residual_ptr = folded ? &residual : nullptr;
    auto st = is_attn ? Attention(layer, b, pool, dense, in_ptr, residual_ptr, s)
                      : Mlp(layer, b, in_ptr, residual_ptr, s);
    if (!st.ok()) return st;
  }
  // Final mix (or the last residual add), norm, for the logit rows only.
  r.num_rows = b.R;
  r.rows = b.logit_rows;
  r.delta = delta_;
  r.gamma = w_.final_norm;
  r.u = attn_res ? w_.output_res_u : nullptr;
  r.snapshot = false;
  r.mix_offset = attn_res ? layout_.weight_offset[2 * c_.num_layers] : 0;
  r.summary_queries = 0;
  r.summary_index = phase2_index(num_sub);
  r.out = final_xn_;
  if (auto st = join(); !st.ok()) return st;
  ATTNRES_CUDA_RETURN(kernels::ResidualBoundary(r, s));
  return absl::OkStatus();
}

absl::Status CudaForward::ForkPhase1(const kernels::ResidualBoundaryArgs& snapshot,
                                     cudaStream_t s) {
  kernels::ResidualBoundaryArgs own = snapshot;
  own.summary_queries = 0;
  ATTNRES_CUDA_RETURN(kernels::ResidualBoundary(own, s));
  // Phase 1 alone: x is the slot the boundary just wrote, mixed after the slots before it.
  kernels::ResidualBoundaryArgs p1 = snapshot;
  p1.summary_index = -1;
  p1.phase1_only = true;
  p1.after_join = true;  // it reads that slot before any wait: the boundary must be done
  p1.snapshot = false;
  p1.delta = nullptr;
  p1.prefix = bank_ + static_cast<size_t>(snapshot.bank_count) * snapshot.T * snapshot.d;
  pending_phase1_ = p1;
  return fork_after_gemm_ ? absl::OkStatus() : ForkPendingPhase1(s);
}

absl::Status CudaForward::ForkPendingPhase1(cudaStream_t s) {
  if (!pending_phase1_) return absl::OkStatus();
  const kernels::ResidualBoundaryArgs p1 = *pending_phase1_;
  pending_phase1_.reset();
  ATTNRES_CUDA_RETURN(cudaEventRecord(fork_.get(), s));
  ATTNRES_CUDA_RETURN(cudaStreamWaitEvent(side_.get(), fork_.get(), 0));
  ATTNRES_CUDA_RETURN(kernels::ResidualBoundary(p1, side_.get()));
  ATTNRES_CUDA_RETURN(cudaEventRecord(join_.get(), side_.get()));
  return absl::OkStatus();
}

absl::Status CudaForward::Head(int first, int count, float* logits, cudaStream_t s) {
  if (count > max_head_rows_) {
    return absl::InvalidArgumentError(absl::StrCat("head of ", count, " rows; at most ",
                                                   max_head_rows_));
  }
  const int world = plan_.world_size, vl = plan_.vocab_local;
  if (world == 1 && !logits) return absl::InvalidArgumentError("head: no logits buffer");
  // [world, slot]: rank k's [count, vocab_local] in slot k. With one rank that is [count, vocab]
  // already, so the caller's buffer serves as the gather buffer.
  const size_t slot = world == 1 ? static_cast<size_t>(count) * vl : HeadSlotElems(count);
  float* gathered = world == 1 ? logits : head_gather_;
  float* mine = gathered + plan_.rank * slot;
  const size_t d = c_.hidden_size;
  if (auto st = gemm_->Run(final_xn_ + first * d, w_.lm_head, mine, count, vl, c_.hidden_size,
                           true, s);
      !st.ok()) {
    return st;
  }
  if (comm_) {  // in place: this rank's slot is already where the gather puts it
    if (auto st = comm_->AllGather(mine, gathered, slot, CollectiveDType::kF32, s); !st.ok()) {
      return st;
    }
  }
  if (world == 1 || !logits) return absl::OkStatus();
  for (int k = 0; k < world; ++k) {  // [world, count, vocab_local] -> [count, vocab]
    ATTNRES_CUDA_RETURN(cudaMemcpy2DAsync(
        logits + static_cast<size_t>(k) * vl, sizeof(float) * c_.vocab_size,
        gathered + k * slot, sizeof(float) * vl, sizeof(float) * vl, count,
        cudaMemcpyDeviceToDevice, s));
  }
  return absl::OkStatus();
}

}  // namespace attnres::cuda
