// The forward pass on the GPU over one ragged batch, mirroring models/cpu_forward.cc: embedding,
// per sublayer one fused residual boundary (AttnRes mix + snapshot + RMSNorm, or the standard
// add + RMSNorm) then attention (fused QKV GEMM, RoPE + KV page write, paged attention, O GEMM)
// or the MLP (fused gate/up GEMM, SwiGLU, down GEMM); the final mix + norm for the logit rows,
// and the LM head in chunks of rows. Owns the per-step workspaces; the KV pool is the caller's.
// Tensor parallel: one CudaForward per rank, in that rank's shapes (plan.local: its heads, KV
// heads and MLP columns), each with the rank's NcclCommunicator. The o_proj and down_proj partial
// sums are all-reduced (bf16, on the forward's stream) before the residual boundary, so the
// AttnRes mix runs on identical full rows on every rank; the head computes the rank's vocabulary
// slice and all-gathers it. Every rank must make the same calls in the same order.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "kernels/ops.h"
#include "models/cuda/cudnn_attention.h"
#include "models/cuda/device_memory.h"
#include "models/cuda/device_weights.h"
#include "models/cuda/gemm.h"
#include "models/model_config.h"
#include "models/parallel/nccl_communicator.h"
#include "models/parallel/tensor_parallel.h"

namespace attnres::cuda {

// K and V pages for every layer, bf16, layout [layer][page][slot][kv_head][head_dim]; c is the
// rank's config, so a rank holds only its own KV heads.
struct KvPool {
  int64_t num_pages = 0;
  int page_size = 0;
  size_t layer_elems = 0;  // num_pages * page_size * kv_dim
  DevicePtr k, v;
  bf16* k_layer(int l) const { return static_cast<bf16*>(k.get()) + l * layer_elems; }
  bf16* v_layer(int l) const { return static_cast<bf16*>(v.get()) + l * layer_elems; }
  static size_t BytesPerPage(const ModelConfig& c, int page_size) {
    return 2ull * c.num_layers * page_size * c.kv_dim() * sizeof(bf16);
  }
  static absl::StatusOr<KvPool> Create(const ModelConfig& c, int64_t num_pages, int page_size);
};

// One step's batch in device memory (see step_upload.h for how it gets there).
struct DeviceBatch {
  int T = 0;                 // token rows
  int num_seqs = 0;
  int num_tiles = 0;         // attention query tiles (the dense chunks' last)
  int num_sparse_tiles = 0;  // the tiles of rows outside dense chunks (first in `tiles`)
  int max_tile_rows = 1;
  int max_context = 0;       // max over rows of position + 1
  int attn_splits = 0;       // > 0: fixed split-KV count (CUDA graph replays); 0: derived
  int R = 0;                 // logit rows
  const int32_t* token_ids = nullptr;        // [T]
  const int32_t* positions = nullptr;        // [T]
  const int32_t* row_seq = nullptr;          // [T]
  const int32_t* kv_page_indptr = nullptr;   // [num_seqs + 1]
  const int32_t* kv_page_indices = nullptr;  // [pages]
  const int32_t* tiles = nullptr;            // [num_tiles, 3]
  const int32_t* logit_rows = nullptr;       // [R]
  const int32_t* record_row = nullptr;       // [T] index into logit rows or -1
  // Prefill chunks long enough for cuDNN's attention (StepUpload::Upload's dense_min_rows): one
  // sequence's rows [first_row, first_row + rows) at positions [context - rows, context), its
  // pages from kv_page_indices[page_offset].
  struct DenseChunk {
    int first_row = 0, rows = 0, context = 0, page_offset = 0;
  };
  std::vector<DenseChunk> dense;
  const int32_t* dense_lens = nullptr;       // [dense, 8]: rows at 0, context at 4
};

class CudaForward {
 public:
  // plan: this rank's (PlanTensorParallel(config, 1, 0) on a single device); weights: loaded
  // with the same plan. comm: this rank's communicator, or null on a single device (then
  // plan.world_size must be 1). A communicator of one rank is accepted but never called: an
  // all-reduce or all-gather over one rank is the identity.
  static absl::StatusOr<std::unique_ptr<CudaForward>> Create(const TensorParallelPlan& plan,
                                                             const DeviceWeights& weights,
                                                             NcclCommunicator* comm,
                                                             int max_tokens, int max_head_rows);

  // Runs every layer over the batch, writes K/V into the pool, and leaves the final normed
  // hidden states of the logit rows for Head. mix_weights: device [R, total_weights] or null.
  absl::Status Run(const DeviceBatch& batch, const KvPool& pool, float* mix_weights,
                   cudaStream_t stream);
  // logits [count, vocab] fp32 (device) for logit rows [first, first + count), count <=
  // max_head_rows, after Run. Tensor parallel: every rank computes its vocabulary slice and
  // joins the all-gather; ranks that need no logits pass null (a single device must not).
  absl::Status Head(int first, int count, float* logits, cudaStream_t stream);

  // The split-KV count attention uses for a batch of `rows` one-token sequences at this context
  // bound, capped so that `padded_rows` rows fit the split workspace.
  int DecodeAttentionSplits(int rows, int max_context, int padded_rows) const;

  // StepUpload::Upload's dense-chunk bounds: prefill chunks this long go to cuDNN's attention
  // (0: cuDNN off), over contexts of up to dense_max_context tokens (its K/V scratch).
  int dense_min_rows() const { return cudnn_ ? kDenseMinRows : 0; }
  int dense_max_context() const { return cudnn_ ? kDenseMaxContext : 0; }
  static constexpr int kDenseMinRows = 512;
  static constexpr int kDenseMaxContext = 16384;  // a KeyBucket boundary
  // A step's dense chunks go to cuDNN only if all their plans are built; missing ones are
  // queued for CudnnAttention's background builder and the step's attention stays on our
  // kernel (no ~45 ms stall for everyone in the batch). With wait_for_plans (tests) the step
  // builds them first instead.
  void set_wait_for_plans(bool wait) { wait_for_plans_ = wait; }
  void WaitForAttentionPlans();  // until the background builder is idle
  int64_t dense_chunks_run() const { return dense_chunks_run_; }  // through cuDNN, so far
  // Residual boundaries folded into the Gemvs around them (fold_boundary_), launched so far (a
  // CUDA graph's replays are not counted).
  int64_t boundaries_folded() const { return boundaries_folded_; }
  // Snapshot boundaries of prefill-sized steps that ran phase 1 (prefill two-phase mixing).
  int64_t prefill_phase1_boundaries() const { return prefill_phase1_boundaries_; }

  const MixLayout& mix_layout() const { return layout_; }
  int max_tokens() const { return max_tokens_; }
  int max_head_rows() const { return max_head_rows_; }
  size_t workspace_bytes() const { return workspace_bytes_; }

  // Gemm::Tune on the head's and layer 0's plain projections (the ones above Gemv's static
  // limit are timed), each choice reported on stderr; the runner calls it (unless
  // ATTNRES_GEMM_TUNE=0) once every buffer is allocated and before any step. It borrows the
  // idle workspace and zeroes it again, so it allocates nothing. (Run inside Create, on buffers
  // of its own before the workspace and KV pool existed, it left an H100's tuned 8B b64 step
  // 1.7% slower than an untuned one and the b1 attention 6% slower: bench/BENCHMARKS.md run 51.)
  absl::Status TuneGemms();

 private:
  CudaForward(const TensorParallelPlan& p, const DeviceWeights& w, NcclCommunicator* comm)
      : plan_(p), c_(plan_.local), w_(w), comm_(p.world_size > 1 ? comm : nullptr) {}
  void Carve(Arena& a);
  // dense: the batch's dense chunks go through cuDNN (DensePlansReady).
  // in: the residual boundary before this sublayer folded into its first GEMM (qkv or
  // gate/up), else null (it reads xn_); residual: the boundary after it folded into its last
  // GEMM (o or down), else null (it writes delta_). See fold_boundary_.
  absl::Status Attention(int layer, const DeviceBatch& b, const KvPool& pool, bool dense,
                         const kernels::GemvNormIn* in, const kernels::GemvResidual* residual,
                         cudaStream_t s);
  // Whether this step's dense chunks run on cuDNN: all their plans are cached (else they are
  // queued, or with wait_for_plans_ built now).
  bool DensePlansReady(const DeviceBatch& b);
  // cuDNN's attention of the batch's dense chunks (their K/V gathered from the pages first).
  absl::Status DenseAttention(int layer, const DeviceBatch& b, const KvPool& pool,
                              cudaStream_t s);
  absl::Status Mlp(int layer, const DeviceBatch& b, const kernels::GemvNormIn* in,
                   const kernels::GemvResidual* residual, cudaStream_t s);
  // The snapshot boundary `snapshot` (with its later mixes' phase 1) as two kernels: the
  // boundary alone on s, then phase 1 on side_ (join_ marks its end). Phase 1 waits in
  // pending_phase1_ for ForkPendingPhase1, which the sublayer calls after its first GEMM
  // (fork_after_gemm_; else at once, after the boundary).
  absl::Status ForkPhase1(const kernels::ResidualBoundaryArgs& snapshot, cudaStream_t s);
  absl::Status ForkPendingPhase1(cudaStream_t s);
  // delta_[0:T] = sum over ranks (row-parallel partial sums); nothing on a single device.
  absl::Status ReduceDelta(int T, cudaStream_t s);
  // Elements between ranks' slots in head_gather_ for `count` rows (256-byte aligned slots).
  size_t HeadSlotElems(int count) const;

  const TensorParallelPlan plan_;
  const ModelConfig& c_;  // plan_.local
  const DeviceWeights& w_;
  NcclCommunicator* comm_;  // null on one rank: its collectives would be the identity
  MixLayout layout_;
  std::unique_ptr<Gemm> gemm_;
  int max_tokens_ = 0, max_head_rows_ = 0;
  size_t workspace_bytes_ = 0;
  DevicePtr storage_;
  // Workspaces, sized for max_tokens rows.
  bf16* prefix_ = nullptr;     // [T, d] running stream / block sum
  bf16* bank_ = nullptr;       // [slots, T, d]
  float* bank_inv_rms_ = nullptr;  // [slots, T]
  bf16* xn_ = nullptr;         // [T, d] normed sublayer input
  bf16* qkv_ = nullptr;        // [T, q + 2kv]
  bf16* q_ = nullptr;          // [T + pad, q] (pad: a cuDNN bucket's rows past the last chunk)
  bf16* att_ = nullptr;        // [T + pad, q]
  bf16* delta_ = nullptr;      // [T, d] sublayer output
  bf16* gate_up_ = nullptr;    // [T, 2f]
  bf16* act_ = nullptr;        // [T, f]
  float2* rope_ = nullptr;     // [T, hd/2]
  double* inv_freq_ = nullptr; // [hd/2]
  bf16* final_xn_ = nullptr;   // [T, d] normed final hidden of the logit rows
  float* attn_split_ = nullptr;  // split-KV partials (kAttnSplitBytes)
  // cuDNN prefill attention (null: off, unavailable, or failed once) and its dense K/V.
  std::unique_ptr<CudnnAttention> cudnn_;
  bool wait_for_plans_ = false;
  // Pure decode steps with unsplit attention grids fuse RoPE + the K/V write into the
  // attention kernel (Attention); ATTNRES_FUSED_ROPE=0 runs the separate kernel (to measure
  // what the fusion buys).
  bool fuse_rope_ = true;
  // Gemv-sized steps of models without q/k norms do RoPE + the K/V write in the qkv Gemv's
  // epilogue instead (kernels::GemvQkvRope; Attention); ATTNRES_GEMV_ROPE=0 turns it off.
  bool gemv_rope_ = true;
  // Decode steps of up to kGemvMaxRows rows on one device fold each residual boundary between
  // two Gemvs (the standard add + norm, or a phase-2 AttnRes mix) into them: the o or down
  // projection adds its output to the stream and leaves row statistics in boundary_stats_, and
  // the next qkv or gate/up projection normalizes its own input (kernels::GemvAddResidual,
  // GemvNormed). Two kernels fewer per layer. Opt-in (ATTNRES_FUSED_BOUNDARY=1): on an H100 it
  // was neutral for the standard models and 6-16% slower for Block AttnRes at batch 1, whose mix
  // then runs inside the Gemv's weight-streaming blocks (bench/BENCHMARKS.md run 29).
  bool fold_boundary_ = false;
  int64_t boundaries_folded_ = 0;
  float* boundary_stats_ = nullptr;  // [kGemvMaxRows, kBoundaryStats, GemvTiles(d)]
  int64_t dense_chunks_run_ = 0;
  bf16* dense_k_ = nullptr;  // [kDenseMaxContext, kv]
  bf16* dense_v_ = nullptr;  // [kDenseMaxContext, kv]
  // Two-phase AttnRes mixing (kernels/ops.h) for steps of up to two_phase_rows_ rows (0: off):
  // the later mixes of snapshot sublayer s are mixes s+1 .. s+layout_.later_mixes[s]; their
  // summaries, rewritten at each snapshot, hold Q = max later_mixes states per row.
  int two_phase_rows_ = 0;
  int max_later_mixes_ = 0;  // Q: the most later mixes of any snapshot sublayer
  int fit_queries_ = 0;      // the same without the final mix (Phase1FitsBeside's queries)
  // Longer steps (prefill, up to max_tokens_ rows) mix in two phases in the blocks whose
  // completed bank holds at least prefill_phase1_slots_ slots (0: none), where the snapshot
  // boundary's staged phase 1 serves (kernels::StagedPhase1Fits): one fp32 summary written and
  // read per later mix costs 4 bf16 rows against the bank slots it saves.
  int prefill_phase1_slots_ = 0;
  int64_t prefill_phase1_boundaries_ = 0;
  // [Q, T, ...] for a step of T rows: Q = max_later_mixes_ + 1 up to two_phase_rows_ rows,
  // max_later_mixes_ past them where prefill_phase1_slots_ > 0 (prefill never forks phase 1).
  float* summary_h_ = nullptr;       // [Q, T, d]
  float2* summary_ml_ = nullptr;     // [Q, T]
  float* summary_scores_ = nullptr;  // [Q, T, slots]
  // Steps whose snapshot boundary cannot give each later mix a phase-1 block of its own
  // (fork_rows_ = -1; else steps of at least fork_rows_ rows, 0: never) run phase 1 as its own
  // kernel on side_, joined before the block's first later mix, so it overlaps the block's
  // first attention sublayer instead of lengthening the snapshot boundary. It forks after that
  // sublayer's qkv GEMM, not right after the boundary: its blocks would hold the SMs whose
  // registers a cuBLASLt tile needs, and the GEMM would wait for them (8B Block b64: 7737 us a
  // step against 7794, bench/BENCHMARKS.md run 40). ATTNRES_FORK_AFTER_GEMM=0: after the
  // boundary.
  int fork_rows_ = 0;
  bool fork_after_gemm_ = true;
  std::optional<kernels::ResidualBoundaryArgs> pending_phase1_;  // booked, not yet forked
  StreamPtr side_;
  EventPtr fork_, join_;
  // [world, slot] fp32, slot >= count * vocab_local: every rank's head logits, gathered
  // (world > 1; a single rank's slot is the caller's [count, vocab] output itself)
  float* head_gather_ = nullptr;
};

}  // namespace attnres::cuda
