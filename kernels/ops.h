// Every CUDA op of the forward pass and the sampler: shapes, dtypes and preconditions. Pure CUDA:
// raw device pointers, cudaError_t results (the launch status), no absl/proto. Each op has a CPU
// twin in models/ that tests/gpu compares it with. Rows are tokens; bf16 tensors are row-major.
#pragma once

#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "kernels/logit_edits.h"

namespace attnres::kernels {

using bf16 = __nv_bfloat16;

// ---- elementwise.cu ----

// out[t, :] = table[ids[t], :]. table: [vocab, d] bf16; out: [T, d]. d % 8 == 0.
cudaError_t EmbeddingGather(const int32_t* ids, const bf16* table, int T, int d, bf16* out,
                            cudaStream_t stream);

// out[t, i] = silu(gate_up[t, i]) * gate_up[t, f + i]. gate_up: [T, 2f] bf16; out: [T, f] bf16.
// fp32 math (twin: SwiGlu). f % 8 == 0.
cudaError_t SwiGlu(const bf16* gate_up, int T, int f, bf16* out, cudaStream_t stream);

// table[t, i] = (cos, sin)(positions[t] * inv_freq[i]) computed in double (twin: ApplyRope).
// inv_freq: [half] double; table: [T, half] float2.
cudaError_t RopeTable(const int32_t* positions, const double* inv_freq, int T, int half,
                      float2* table, cudaStream_t stream);

// Seeded uniform fill for benchmark weights made on the device: out[i] = bf16(mean + (2u-1)*w)
// with u = SampleUniform(seed, i) (the host sampler's counter-based uniform), w = std*sqrt(3).
cudaError_t FillUniformBf16(bf16* out, size_t n, uint64_t seed, float mean, float stddev,
                            cudaStream_t stream);
cudaError_t FillUniformF32(float* out, size_t n, uint64_t seed, float mean, float stddev,
                           cudaStream_t stream);

// ---- attn_res.cu: the fused residual boundary before each sublayer (and the final mix) ----
//
// For each output row k (source token row t = rows ? rows[k] : k):
//   x = delta ? (prefix_empty ? delta[t] : bf16(prefix[t] + delta[t])) : prefix[t]
//   h = (u && bank_count > 0) ? mix(bank[0..bank_count)[t] + [x]) : x     (fp32, online softmax;
//       bank rows use the cached bank_inv_rms; twin: AttnResMix)
//   snapshot: bank[bank_count][t] = x, bank_inv_rms[bank_count][t] = rsqrt(mean(x^2) + eps);
//   else prefix[t] = x
//   out[k] = bf16(rmsnorm(h) * gamma)                                     (twin: RmsNorm)
//   mix_weights[record_row[t] * mix_stride + mix_offset + j] = alpha_j when record_row[t] >= 0.
// The snapshot slot is bank_count, never a slot the mix reads. Standard residual models call it
// with u = nullptr and bank_count = 0. Preconditions: d % 8 == 0, d <= 8192,
// bank_count + 1 <= kMaxMixSources; rows unique. Under programmatic dependent launch only delta
// may be the previous kernel's output: prefix, bank, bank_inv_rms and the summaries are read
// before the wait (kernels/common.cuh's rule).
//
// Two-phase mixing (ATTNRES.md §5; the queries are constants, so the completed bank can be
// scored for every later mix of a block at once). Phase 1 runs beside a snapshot boundary
// (snapshot set, summary_queries = Q > 0; u may be null only without a bank): for each later mix
// q < Q, whose query is summary_u[q], extra blocks (from 256 rows: the row's own block, from
// its staged sources; StagedPhase1Fits) fold the sources bank[0..bank_count)[t] + [x]
// (x becomes slot bank_count) into their online-softmax state: summary_ml[q][t] = (max m, sum l
// of exp(s_j - m)), summary_h[q][t] = sum_j exp(s_j - m) v_j (fp32, not divided by l) and, for
// recorded rows, summary_scores[q][t][j] = s_j. Phase 2 (summary_index = q >= 0, no phase 1,
// bank_count >= 1 = the slots summary q covers): the mix reads that state instead of the bank
// rows and merges x last, as the one-phase online softmax does; the bank is not read. A phase-2
// mix may snapshot (the next block's first mix, scored by the previous block's phase 1).
// Same results as the one-phase mix up to fp32 rounding; summaries are [Q, T, ...] with the T
// above, summary_stride >= bank_count + 1 (phase 1) or bank_count (phase 2).
inline constexpr int kMaxMixSources = 128;
struct ResidualBoundaryArgs {
  int num_rows = 0;                   // R
  const int32_t* rows = nullptr;      // [R] or null (R == T)
  int T = 0;                          // rows of prefix / each bank slot
  int d = 0;
  const bf16* delta = nullptr;        // [T, d] sublayer output, or null
  bool prefix_empty = false;
  bf16* prefix = nullptr;             // [T, d]
  bf16* bank = nullptr;               // [slots, T, d]
  float* bank_inv_rms = nullptr;      // [slots, T]
  int bank_count = 0;
  bool snapshot = false;
  const float* u = nullptr;           // [d] folded query gamma_res * w, fp32
  const float* gamma = nullptr;       // [d] RMSNorm gain, fp32
  float eps = 1e-6f;
  bf16* out = nullptr;                // [R, d]
  float* mix_weights = nullptr;       // optional
  const int32_t* record_row = nullptr;  // [T], -1 = do not record
  int mix_stride = 0, mix_offset = 0;
  // Two-phase mixing (above).
  const float* summary_u = nullptr;   // [Q, d] phase 1: the later mixes' folded queries
  int summary_queries = 0;            // Q (phase 1)
  int summary_index = -1;             // phase 2: the summary this mix reads
  float* summary_h = nullptr;         // [Q, T, d]
  float2* summary_ml = nullptr;       // [Q, T] (max, sum)
  float* summary_scores = nullptr;    // [Q, T, summary_stride] (recorded rows only)
  int summary_stride = 0;
  // Phase 1 alone, after the snapshot boundary (on a forked stream, beside the next sublayer):
  // x is read from `prefix` (the slot the snapshot wrote, delta null), bank_count is the slots
  // before it, and only phase-1 blocks run: grid (R, blocks), nothing but summaries written.
  bool phase1_only = false;
  // A launch across a fork or join between streams (phase 1 itself, the first mix after it):
  // without programmatic dependent launch (kernels/common.cuh LaunchMaybePdl says why).
  bool after_join = false;
};
cudaError_t ResidualBoundary(const ResidualBoundaryArgs& args, cudaStream_t stream);
// Whether a snapshot boundary of `rows` rows of width d runs phase 1 for `queries` later mixes
// with a block of its own per query, in the resident slots that the rows' own blocks leave
// free: it then takes about as long as without phase 1. Otherwise its phase-1 blocks take
// several queries in turn, and a caller may rather fork phase 1 onto another stream (host).
bool Phase1FitsBeside(int rows, int d, int queries);
// Whether a snapshot boundary of width d over bank_count slots takes prefill's fused phase 1 for
// `queries` later mixes (attn_res_staged.cu: from 256 rows, its sources staged in shared memory,
// so phase 1 reads no bank row twice): up to 8 queries, 8 slots, d <= 4096 and 112 KiB of staged
// rows.
bool StagedPhase1Fits(int d, int bank_count, int queries);

// ---- rope_kv.cu ----
// A step's RoPE inputs (RopeKvWrite, and the fused form of PagedAttention): the fused QKV
// projection qkv [T, (H + 2*KV) * hd] bf16, its cos/sin table [T, hd/2] (RopeTable), and the
// optional Qwen3 per-head RMSNorm gains q_norm / k_norm [hd] fp32 with their eps.
struct RopeInputs {
  const bf16* qkv = nullptr;
  const float2* table = nullptr;
  const float* q_norm = nullptr;
  const float* k_norm = nullptr;
  float eps = 1e-6f;
};
// For each token row t of rope.qkv: the optional per-head RMSNorm, RoPE in rotate-half form, q to
// q_out [T, H*hd]; k and v to their page: page = kv_page_indices[kv_page_indptr[row_seq[t]] +
// positions[t] / page_size], slot positions[t] % page_size, cache layout [page][slot][KV][hd].
// hd even, hd <= 256. Page tables must cover every position (checked by the host).
struct RopeKvWriteArgs {
  RopeInputs rope;
  const int32_t* positions = nullptr;
  const int32_t* row_seq = nullptr;
  const int32_t* kv_page_indptr = nullptr;
  const int32_t* kv_page_indices = nullptr;
  int T = 0, H = 0, KV = 0, hd = 0, page_size = 0;
  bf16* q_out = nullptr;
  bf16* k_cache = nullptr;
  bf16* v_cache = nullptr;
};
cudaError_t RopeKvWrite(const RopeKvWriteArgs& args, cudaStream_t stream);

// K and V of positions [0, n) of one sequence, from caches laid out as in RopeKvWrite, through
// its page list pages[ceil(n / page_size)], into contiguous rows k_out, v_out [n, kv_dim]
// (kv_dim = KV * hd, a multiple of 8): the dense K/V cuDNN's attention reads. Twin: the page
// arithmetic of CpuKvCache.
struct GatherKvArgs {
  const bf16* k_cache = nullptr;
  const bf16* v_cache = nullptr;
  const int32_t* pages = nullptr;
  int n = 0, kv_dim = 0, page_size = 0;
  bf16* k_out = nullptr;
  bf16* v_out = nullptr;
};
cudaError_t GatherKv(const GatherKvArgs& args, cudaStream_t stream);

// ---- paged_attention.cu ----
// Causal attention of new query rows over paged K/V (decode and chunked prefill alike): row t
// (position p) of sequence s attends to positions [0, p] of s. Work is split into query tiles of
// up to AttentionTileRows(H / KV) consecutive rows of one sequence: tiles [num_tiles, 3] = (seq,
// first_row, num_rows); a block takes one tile and one KV head, rows x group <= 128 "M" rows.
// q, out: [T, H*hd] bf16; caches as in RopeKvWrite. H % KV == 0, H/KV <= 8, hd in {16, 32, 64,
// 128, 256}. Tensor cores (bf16 products, fp32 accumulation and online softmax; P rounded to
// bf16 before P*V; twin: CpuForward::Attention). With a workspace, few tiles and max_context
// (max over rows of position + 1) above two 64-key tiles, each tile's keys are split over
// several blocks of at least 128 keys and merged by a second kernel (flash-decoding): as many
// splits as keep the grid within one wave of resident blocks, capped by workspace_bytes /
// PagedAttentionSplitBytes(T, H, hd). Without one: no split. The merge writes all T rows, so
// with a workspace the tiles must cover every row.
inline constexpr int kMaxTileRows = 128;
// Rows per query tile for a GQA group: enough (row, query head) pairs to fill 8 warps of 16, so
// each K/V tile in shared memory serves 128 of them (16 rows at group 8, 32 at 4, 128 at 1).
inline int AttentionTileRows(int group) {
  return std::max(1, std::min(kMaxTileRows, 128 / std::max(1, group)));
}
struct PagedAttentionArgs {
  const bf16* q = nullptr;
  bf16* k_cache = nullptr;  // written only in the fused-RoPE form (rope below)
  bf16* v_cache = nullptr;
  const int32_t* positions = nullptr;
  const int32_t* tiles = nullptr;
  const int32_t* kv_page_indptr = nullptr;
  const int32_t* kv_page_indices = nullptr;
  int num_tiles = 0, max_tile_rows = 1;
  int T = 0;             // query rows
  int max_context = 0;   // host-known bound used only to pick the split count
  int H = 0, KV = 0, hd = 0, page_size = 0;
  float scale = 1.0f;
  bf16* out = nullptr;
  void* workspace = nullptr;  // device, 16-byte aligned, or null
  size_t workspace_bytes = 0;
  int splits = 0;  // > 0: exactly this many KV splits (a CUDA graph fixes it); must fit the workspace
  // Decode with RoPE fused in: with rope.qkv set, RopeKvWrite's work for these rows is done
  // here. Every tile must be one row of a sequence of its own (max_tile_rows 1, num_tiles ==
  // T). The kernel rotates row t's q itself (q is not read), writes its new K and V into the
  // row's page slot and attends to them from shared memory. Every other key is older, so its
  // K/V loads go out before the wait for the previous kernel (the QKV projection;
  // kernels/common.cuh's rule). Same rounding as RopeKvWrite + the plain form.
  RopeInputs rope;
};
// The split count PagedAttention uses for these arguments (host only).
int PagedAttentionSplitCount(const PagedAttentionArgs& args);
// Workspace bytes one KV split needs for T rows.
size_t PagedAttentionSplitBytes(int T, int H, int hd);
cudaError_t PagedAttention(const PagedAttentionArgs& args, cudaStream_t stream);

// ---- sampling.cu ----
// SampleUniform of models/sampler.cc on the device (bit-identical).
__host__ __device__ inline uint64_t SplitMix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}
__host__ __device__ inline double SampleUniformBits(uint64_t seed, uint64_t index) {
  const uint64_t bits = SplitMix64(SplitMix64(seed) ^ (index * 0xD1B54A32D192ED03ull));
  return static_cast<double>(bits >> 11) * 0x1.0p-53;
}

struct SampleParams {
  float temperature = 0.0f;  // 0: greedy
  int top_k = 0;
  float top_p = 1.0f;
  float min_p = 0.0f;
  uint64_t seed = 0;
  uint64_t index = 0;
};
__host__ __device__ inline bool NeedsSortedLogits(const SampleParams& p, int V) {
  return p.temperature != 0.0f && ((p.top_k > 0 && p.top_k < V) || p.top_p < 1.0f || p.min_p > 0.0f);
}

// Temp bytes for SortRowsDescending over up to max_rows rows of V.
size_t SortRowsTempBytes(int max_rows, int V);
// Stable descending sort of each row of logits [R, V] fp32 with ids: sorted_logits/sorted_ids
// [R, V]. row_offsets: [R + 1] = r * V (device).
cudaError_t SortRowsDescending(const float* logits, int R, int V, const int32_t* row_offsets,
                               float* sorted_logits, int32_t* sorted_ids, void* temp,
                               size_t temp_bytes, cudaStream_t stream);
// tokens[r] = the CPU SampleToken(params[r], logits[r]) rule: greedy = lowest id among maxima;
// otherwise temperature, then top-k, min-p (relative to the top), top-p over what is left, and
// the draw u = SampleUniform(seed, index) * total in sorted order (needs sorted_* when
// NeedsSortedLogits, else scans ids in order). Probabilities in double.
// With temp (SampleRowsTempBytes(R) bytes, device) and up to one row per SM, the rows that read
// their own logits (greedy, temperature without truncation) are cut into chunks over many
// blocks (the wide form: max and exp sums per chunk, then a walk of the chunk where the draw
// falls); otherwise one block per row. Same rules; the sums' order differs, so a draw within
// rounding of a boundary may differ between the forms.
size_t SampleRowsTempBytes(int max_rows);
cudaError_t SampleRows(const float* logits, const float* sorted_logits, const int32_t* sorted_ids,
                       const SampleParams* params, int R, int V, int32_t* tokens, void* temp,
                       size_t temp_bytes, cudaStream_t stream);

// ---- logit_edits.cu: the sampler's logit edits and logprobs (layout: logit_edits.h) ----
// A step with edits or logprobs runs RawLogprobs (on the raw logits), EditLogits (in place),
// the sampler, then ChosenLogprobs. Twins: models/logit_edits.h ApplyLogitEdits and
// models/sampler.h ComputeLogprob. No allocation or sync.
// For each of L rows: out[j].ids/logprobs = the top rows[j].top_n of log_softmax(logits row),
// most likely first, ties by lower id; lse[j] = the row's log-sum-exp (double, for
// ChosenLogprobs; fp32 exponentials summed in double). logits: [*, V] fp32. max_top_n: at least
// every row's top_n, at most kMaxTopLogprobs. With temp (RawLogprobsTempBytes(L) bytes, device)
// and fewer rows than the SMs hold blocks, each row is cut into chunks over many blocks and
// merged (the sums' order differs from one block's, within rounding); without, one block per row.
size_t RawLogprobsTempBytes(int L);
cudaError_t RawLogprobs(const float* logits, int V, const LogprobRow* rows, int L, int max_top_n,
                        LogprobOut* out, double* lse, void* temp, size_t temp_bytes,
                        cudaStream_t stream);
// Applies edits[0:num_edits] (raw[i] receives edit i's logit before it) and the masks of
// masked[0:num_masked] (mask_words as LogitEditPlan lays them out) to logits [*, V] in place.
cudaError_t EditLogits(float* logits, int V, const EditedRow* rows, const LogitEdit* edits,
                       int num_edits, float* raw, const MaskedRow* masked, int num_masked,
                       const uint64_t* mask_words, cudaStream_t stream);
// out[j].token = tokens[rows[j].logit_row] and its logprob in the raw row (lse from
// RawLogprobs; the raw value from EditLogits' raw where the row's edits touched the token).
cudaError_t ChosenLogprobs(const float* logits, int V, const LogprobRow* rows, int L,
                           const EditedRow* edited_rows, const LogitEdit* edits, const float* raw,
                           const int32_t* tokens, const double* lse, LogprobOut* out,
                           cudaStream_t stream);

// ---- gemv.cu: small-M GEMM for decode steps ----
// y[M, N] = x[M, K] . w[N, K]^T (torch Linear, row-major), bf16 in, fp32 accumulation (tensor
// cores; twin: MatMulWt), out bf16 [M, N] or fp32 [M, N] when out_f32. Reads w exactly once for
// all M rows, at close to HBM bandwidth. Preconditions (GemvSupports; otherwise Gemv returns
// cudaErrorInvalidValue without launching): 0 <= M <= kGemvMaxRows, K % 8 == 0, x and w 16-byte
// aligned; any N >= 0. No allocation or sync: capturable in CUDA graphs.
inline constexpr int kGemvMaxRows = 8;
// The small-M kernels' shared preconditions: 0 <= M <= max_rows, K % 8 == 0, 16-byte aligned x, w.
inline bool SmallMGemmSupports(const bf16* x, const bf16* w, int M, int K, int max_rows) {
  return M >= 0 && M <= max_rows && K >= 0 && K % 8 == 0 &&
         reinterpret_cast<uintptr_t>(x) % 16 == 0 && reinterpret_cast<uintptr_t>(w) % 16 == 0;
}
inline bool GemvSupports(const bf16* x, const bf16* w, int M, int K) {
  return SmallMGemmSupports(x, w, M, K, kGemvMaxRows);
}
cudaError_t Gemv(const bf16* x, const bf16* w, void* out, int M, int N, int K, bool out_f32,
                 cudaStream_t stream);
// The MLP's gate/up projection and SwiGLU in one pass: out[m, i] = silu(g) * u with g, u the
// bf16-rounded products of x[m] with rows i and f + i of w_gate_up [2f, K] (the fused layout
// SwiGlu reads). Bit-identical to Gemv into a [M, 2f] bf16 buffer followed by SwiGlu. out: [M, f]
// bf16. Same preconditions as Gemv (f for N).
cudaError_t GemvSwiGlu(const bf16* x, const bf16* w_gate_up, bf16* out, int M, int f, int K,
                       cudaStream_t stream);

// The attention's qkv projection with RopeKvWrite's work in its epilogue, for decode steps of
// models without q/k norms: each product of x [args.T, K] with w_qkv [(H + 2KV) hd, K] is
// rounded to bf16 as Gemv stores it, then q heads are rotated into args.q_out, k heads rotated
// and v heads copied into their page slots. Bit-identical to Gemv into a qkv buffer followed by
// RopeKvWrite (args.rope.qkv is not read). Gemv's preconditions (M = args.T) and
// GemvQkvRopeSupports: hd a multiple of 16 up to 256, no q/k norms, every pointer set.
bool GemvQkvRopeSupports(const RopeKvWriteArgs& args);
cudaError_t GemvQkvRope(const bf16* x, const bf16* w_qkv, int K, const RopeKvWriteArgs& args,
                        cudaStream_t stream);

// ---- gemv.cu: the residual boundary folded into the Gemvs around it (decode steps) ----
// A boundary between two sublayers (ResidualBoundary's standard add + RMSNorm, or its phase-2
// AttnRes mix) needs whole rows, which is why it is a kernel of its own. At decode sizes its
// bytes are few and its time is latency, paid twice per layer. Folded: the Gemv that produces
// the sublayer's output (o or down projection, GemvAddResidual) adds it to the stream in its
// epilogue and leaves per-tile partial sums of the row statistics the boundary needs; the Gemv
// that consumes the boundary's output (qkv, or gate/up + SwiGLU: GemvNormed, GemvSwiGluNormed)
// completes those sums in a fixed order and normalizes its input into shared memory while its
// first weights are in flight. Same results as GemvAddResidual's Gemv writing delta, then
// ResidualBoundary, then the plain Gemv, up to fp32 rounding: the row sums run in another order,
// and the mix's sum of h^2 is expanded as inv_l^2 (c^2 sum H^2 + 2 c p sum H x + p^2 sum x^2)
// (c = exp(m - m'), p = exp(s_x - m')), summed directly where the terms nearly cancel.
// The statistics of a row, per tile of kGemvTileCols columns: sum x^2, then for the mix sum u x,
// sum H x and sum H^2 (H: the phase-1 state of the mix, ResidualBoundaryArgs::summary_h).
inline constexpr int kBoundaryStats = 4;
inline constexpr int kGemvTileCols = 16;
inline int GemvTiles(int N) { return (N + kGemvTileCols - 1) / kGemvTileCols; }

// The producer's epilogue: for each row m < M and column n < N of y = x . w^T,
//   prefix[m, n] = prefix_empty ? bf16(y) : bf16(prefix[m, n] + bf16(y))  (ResidualBoundary's x)
// and stats[m, s, tile] the tile's partial sums of that x (s = 0; 1-3 only with u). y itself
// is not stored. prefix and summary_h must not be the previous kernel's outputs.
struct GemvResidual {
  bf16* prefix = nullptr;  // [M, N]
  bool prefix_empty = false;
  const float* u = nullptr;          // [N] the next mix's folded query, or null (standard)
  const float* summary_h = nullptr;  // [M, N] the next mix's phase-1 state (with u)
  float* stats = nullptr;            // [M, kBoundaryStats, GemvTiles(N)]
};
cudaError_t GemvAddResidual(const bf16* x, const bf16* w, int M, int N, int K,
                            const GemvResidual& residual, cudaStream_t stream);

// The consumer's prologue: its input row m is ResidualBoundary's out for the stream row x =
// prefix[m] (after GemvAddResidual), i.e. bf16(rmsnorm(h) * gamma) with h = x (summary_h null:
// the standard boundary) or the phase-2 merge of x into (summary_ml[m], summary_h[m]).
struct GemvNormIn {
  const bf16* prefix = nullptr;  // [M, K]
  const float* stats = nullptr;  // [M, kBoundaryStats, tiles]
  int tiles = 0;                 // GemvTiles(K)
  const float* gamma = nullptr;  // [K]
  float eps = 1e-6f;
  const float* summary_h = nullptr;    // [M, K] or null
  const float2* summary_ml = nullptr;  // [M] (max, sum), with summary_h
};
// Whether the normed forms take M rows of width K (their input rows live in shared memory).
bool GemvNormedSupports(int M, int K);
// out [M, N] bf16 = normed input . w^T; Gemv's preconditions on prefix and w, and
// GemvNormedSupports.
cudaError_t GemvNormed(const GemvNormIn& in, const bf16* w, bf16* out, int M, int N, int K,
                       cudaStream_t stream);
// GemvSwiGlu over the normed input.
cudaError_t GemvSwiGluNormed(const GemvNormIn& in, const bf16* w_gate_up, bf16* out, int M, int f,
                             int K, cudaStream_t stream);

// ---- skinny_gemm.cu: GEMM for decode steps of 9-64 rows ----
// y[M, N] = x[M, K] . w[N, K]^T as Gemv (same twin, outputs and preconditions, M up to
// kSkinnyGemmMaxRows), for steps too wide for Gemv: blocks of 128 w rows stage x through shared
// memory, and matrices of few such tiles split K over a thread-block cluster whose blocks sum
// their tiles through distributed shared memory (deterministic). Reads w once (measured: not yet
// faster than cuBLASLt; see skinny_gemm.cu). No allocation or sync: capturable in CUDA graphs.
inline constexpr int kSkinnyGemmMaxRows = 64;
inline bool SkinnyGemmSupports(const bf16* x, const bf16* w, int M, int K) {
  return SmallMGemmSupports(x, w, M, K, kSkinnyGemmMaxRows);
}
cudaError_t SkinnyGemm(const bf16* x, const bf16* w, void* out, int M, int N, int K,
                       bool out_f32, cudaStream_t stream);
// The MLP's gate/up projection and SwiGLU in one pass, as GemvSwiGlu for up to 64 rows:
// bit-identical to SkinnyGemm into a [M, 2f] bf16 buffer followed by SwiGlu. out: [M, f] bf16.
cudaError_t SkinnyGemmSwiGlu(const bf16* x, const bf16* w_gate_up, bf16* out, int M, int f,
                             int K, cudaStream_t stream);

}  // namespace attnres::kernels
