// Per-kernel benchmarks at Llama-3.1-8B shapes: the fused AttnRes boundary (8 bank slots; a few
// rows at Llama-3.2-1B width) against the standard add + RMSNorm boundary, the cuBLASLt GEMMs of
// one layer at decode and prefill row counts next to our Gemv at M = 1/4/8 and skinny GEMM at
// M = 16/32/64 (and the 1B shapes at 64), the boundary between two decode Gemvs unfolded or
// folded into them (ATTNRES_FUSED_BOUNDARY), paged decode
// attention (1/64/256 x 512 and 1 x 4096 contexts, split sweeps, 1B heads at 1/64/128 x 512, and
// with the step's RoPE + K/V write as its own kernel or fused in) and a 4096-token causal prefill
// attention, the sampler (greedy and temperature over a 128256-entry vocabulary). Bytes or FLOPs,
// median time over CUDA-event-timed repetitions, fraction of the measured H200 ceilings.
//
// Usage: attnres-kernel-bench [FILTER]. With FILTER, only the boundary and GEMM rows whose names
// contain it, each timed once after 3 warm-up calls (GEMM rows: 4 batches of 10 calls), for a
// profiler such as ncu.
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "bench/device_ceiling.h"
#include "kernels/env_switch.h"
#include "kernels/ops.h"
#include "models/cuda/cudnn_attention.h"
#include "models/cuda/gemm.h"

namespace {

using attnres::kernels::bf16;
constexpr double kPeakBytesPerS = 4.28e12, kPeakFlops = 785e12;

void* Buf(size_t bytes, uint64_t seed) {
  void* p = nullptr;
  if (cudaMalloc(&p, bytes) != cudaSuccess) std::exit(1);
  attnres::kernels::FillUniformBf16(static_cast<bf16*>(p), bytes / 2, seed, 0.0f, 0.5f, nullptr);
  return p;
}

// n fp32 values, uniform with this mean and spread.
float* FloatBuf(size_t n, uint64_t seed, float mean, float spread) {
  float* p = nullptr;
  if (cudaMalloc(&p, n * sizeof(float)) != cudaSuccess) std::exit(1);
  attnres::kernels::FillUniformF32(p, n, seed, mean, spread, nullptr);
  return p;
}

double MedianMs(const std::function<void()>& f, int reps = 30) {
  cudaEvent_t a, b;
  cudaEventCreate(&a);
  cudaEventCreate(&b);
  for (int i = 0; i < 3; ++i) f();
  std::vector<float> t;
  for (int i = 0; i < reps; ++i) {
    cudaEventRecord(a);
    f();
    cudaEventRecord(b);
    cudaEventSynchronize(b);
    float ms;
    cudaEventElapsedTime(&ms, a, b);
    t.push_back(ms);
  }
  if (cudaGetLastError() != cudaSuccess) {
    std::printf("kernel error\n");
    std::exit(1);
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

// This card's copy ceiling (bench/device_ceiling.h), measured once in main; 0 where unknown.
double g_card_bytes_per_s = 0;

void Row(const std::string& what, double ms, double bytes, double flops) {
  char vs[120];
  if (flops > 0) {
    std::snprintf(vs, sizeof(vs), "%d TFLOP/s, %d%% of peak", int(flops / ms / 1e9),
                  int(100 * flops / ms / 1e9 / (kPeakFlops / 1e12)));
  } else {
    const double rate = bytes / ms * 1e3;  // bytes per second
    std::snprintf(vs, sizeof(vs), "%d GB/s, %d%% of copy (%d%% of this card's)", int(rate / 1e9),
                  int(100 * rate / kPeakBytesPerS),
                  g_card_bytes_per_s > 0 ? int(100 * rate / g_card_bytes_per_s) : 0);
  }
  std::printf("| %-44s | %9.4f ms | %s |\n", what.c_str(), ms, vs);
}

// The boundary forms of a step: one-phase (nb bank slots; nb = 0: the standard add + norm), a
// phase-2 mix (the bank as one summary, kernels/ops.h), and a snapshot boundary whose extra
// blocks run phase 1 for the block's Q later mixes. 8B (d = 4096): 8 blocks of 4 layers, so
// Q = 7; 1B (d = 2048): 8 blocks of 2 layers, Q = 3.
enum class BoundaryForm { kOnePhase, kPhase2, kSnapshotPhase1 };

// From the command line (for profilers): only the boundary and GEMM rows whose names contain this,
// each timed once, or ATTNRES_BENCH_REPS times (to time a few rows alone).
const char* g_filter = nullptr;
bool Wanted(const std::string& name) {
  return !g_filter || name.find(g_filter) != std::string::npos;
}
// Timed repetitions of a row: `full` without a filter.
int Reps(int full) {
  static const int filtered = attnres::kernels::EnvInt("ATTNRES_BENCH_REPS", 1);
  return g_filter ? filtered : full;
}

// Returns the median ms, or 0 where the row filter skipped it.
double BenchBoundary(int T, int nb, BoundaryForm form, int d = 4096, int Q = 7) {
  bf16* prefix = static_cast<bf16*>(Buf(size_t(T) * d * 2, 1));
  bf16* delta = static_cast<bf16*>(Buf(size_t(T) * d * 2, 2));
  bf16* bank = static_cast<bf16*>(Buf(size_t(nb + 1) * T * d * 2, 3));
  bf16* out = static_cast<bf16*>(Buf(size_t(T) * d * 2, 4));
  float* inv = FloatBuf(size_t(nb + 1) * T, 5, 1.0f, 0.1f);
  float* u = FloatBuf(size_t(Q + 1) * d, 6, 0.0f, 0.02f);
  float* gamma = FloatBuf(d, 7, 1.0f, 0.1f);
  float* sum_h = FloatBuf(size_t(Q) * T * d, 8, 0.0f, 1.0f);
  float2* sum_ml = reinterpret_cast<float2*>(FloatBuf(size_t(Q) * T * 2, 9, 1.0f, 0.1f));
  attnres::kernels::ResidualBoundaryArgs a;
  a.num_rows = a.T = T;
  a.d = d;
  a.delta = delta;
  a.prefix = prefix;
  a.bank = bank;
  a.bank_inv_rms = inv;
  a.bank_count = nb;
  a.u = nb > 0 ? u : nullptr;
  a.gamma = gamma;
  a.out = out;
  a.summary_u = u + d;
  a.summary_h = sum_h;
  a.summary_ml = sum_ml;
  a.summary_stride = nb + 1;
  double bytes = double(T) * d * 2 * 4;  // prefix, delta reads; prefix (or snapshot), out writes
  std::string name = std::string(d == 4096 ? "" : "1B ") + "residual boundary T=" +
                     std::to_string(T) +
                     (nb ? " AttnRes nb=" + std::to_string(nb) : " standard");
  switch (form) {
    case BoundaryForm::kOnePhase:
      bytes += double(T) * d * 2 * nb;
      break;
    case BoundaryForm::kPhase2:
      a.summary_index = Q - 1;
      bytes += double(T) * d * 4;
      name += " phase 2";
      break;
    case BoundaryForm::kSnapshotPhase1:
      a.snapshot = true;
      a.summary_queries = Q;
      bytes += double(T) * d * 2 * nb + double(Q) * T * d * 4;
      name += " snap+phase 1 x" + std::to_string(Q);
      break;
  }
  double ms = 0;
  if (Wanted(name)) {
    ms = MedianMs([&] { attnres::kernels::ResidualBoundary(a, nullptr); }, Reps(30));
    Row(name, ms, bytes, 0);
  }
  cudaFree(prefix); cudaFree(delta); cudaFree(bank); cudaFree(out); cudaFree(inv); cudaFree(u);
  cudaFree(gamma); cudaFree(sum_h); cudaFree(sum_ml);
  return ms;
}

// What the AttnRes mixes add to a 4096-token 8B prefill, from the boundary alone: Block AttnRes
// with 8 blocks of 4 layers (models/model_config.cc MixLayout). Block b's snapshot boundary
// reads b slots, its 7 later mixes b + 1 each (the final mix, which mixes all 8, takes the logit
// rows only: one per sequence), 280 slot-row reads per token, so the one-phase cost is the sum
// over blocks of (t(b) - t(0)) + 7 (t(b + 1) - t(0)). Two-phase (CudaForward's prefill rule), a
// block's snapshot boundary also writes its later mixes' summaries (phase 1) and they merge
// them (phase 2): its cost is (p1(b) - t(0)) + 7 (p2 - t(0)); printed per block, and the sum
// with each block taking the faster way. Measured kernel by kernel, it does not move with the
// activations' effect on the power-capped clock that end-to-end prefill A/Bs carry
// (bench/BENCHMARKS.md run 23). (Up to run 41 the sum stopped at b + 1 = 7; run 41's counted 8
// mixes over all 8 slots, the final one as if it mixed every row.)
void BenchPrefillMixCost() {
  constexpr int kT = 4096, kSlots = 8, kLater = 7;
  double t[kSlots + 1], p1[kSlots];
  for (int n = 0; n <= kSlots; ++n) t[n] = BenchBoundary(kT, n, BoundaryForm::kOnePhase);
  for (int b = 0; b < kSlots; ++b) {
    p1[b] = BenchBoundary(kT, b, BoundaryForm::kSnapshotPhase1, 4096, kLater);
  }
  const double p2 = BenchBoundary(kT, kSlots, BoundaryForm::kPhase2, 4096, kLater);
  if (g_filter) return;
  double one = 0, best = 0;
  for (int b = 0; b < kSlots; ++b) {
    const double one_phase = (t[b] - t[0]) + kLater * (t[b + 1] - t[0]);
    const double two_phase = (p1[b] - t[0]) + kLater * (p2 - t[0]);
    std::printf("| prefill block %d (%d slots): one-phase / two-phase | %.3f / %.3f ms | %s |\n", b,
                b + 1, one_phase, two_phase, two_phase < one_phase ? "two-phase" : "one-phase");
    one += one_phase;
    best += std::min(one_phase, two_phase);
  }
  std::printf(
      "| AttnRes mixes of a 4096-token prefill (8B, 8 blocks), one-phase | %.3f ms | sum of the "
      "rows above |\n",
      one);
  std::printf("| ... each block the faster way | %.3f ms | |\n", best);
}

// Decode GEMMs are weight streams: each timed call reads its own copy of w (>= 200 MB of copies,
// 4x the 50 MB L2, as a real step never finds its weights in L2), and calls run back to back in
// batches of 10 between the events so one launch gap is spread over 10 kernels. Back to back, our
// PDL kernels (Gemv, SkinnyGemm) start streaming weights under the previous call's tail, which a
// step's different previous kernel may not allow: ATTNRES_PDL=0 times them without that overlap.
double GemmMedianMs(const std::function<void(const bf16* w)>& f, size_t w_bytes, uint64_t seed) {
  const size_t copies = std::max<size_t>(1, (200u << 20) / w_bytes + 1);
  std::vector<bf16*> w;
  for (size_t i = 0; i < copies; ++i) w.push_back(static_cast<bf16*>(Buf(w_bytes, seed + i)));
  size_t next = 0;
  auto ten_calls = [&] {
    for (int i = 0; i < 10; ++i) f(w[next++ % copies]);
  };
  const double ms = MedianMs(ten_calls, Reps(30)) / 10;
  for (bf16* p : w) cudaFree(p);
  return ms;
}

// cuBLASLt called directly (not through Gemm::Run's small-M dispatch), so these rows stay the
// honest baseline for the Gemv rows below.
// out_f32: fp32 outputs (the head's logits).
void BenchGemm(attnres::cuda::Gemm& g, const char* name, int M, int N, int K,
               bool out_f32 = false) {
  const std::string row = std::string("gemm ") + name + " M=" + std::to_string(M);
  if (!Wanted(row)) return;
  const int out_bytes = out_f32 ? 4 : 2;
  bf16* x = static_cast<bf16*>(Buf(size_t(M) * K * 2, 8));
  void* y = Buf(size_t(M) * N * out_bytes, 10);
  const double ms =
      GemmMedianMs([&](const bf16* w) { (void)g.RunCublasLt(x, w, y, M, N, K, out_f32, nullptr); },
                   size_t(N) * K * 2, 9);
  const double flops = 2.0 * M * N * K,
               bytes = 2.0 * (double(M) * K + double(N) * K) + double(out_bytes) * M * N;
  const double bw_ms = bytes / kPeakBytesPerS * 1e3, fl_ms = flops / kPeakFlops * 1e3;
  Row(row, ms, bytes, fl_ms > bw_ms ? flops : 0);
  cudaFree(x); cudaFree(y);
}

// Our small-M kernels, what Gemm::Run uses below cuBLASLt: kernels::Gemv (M <= kGemvMaxRows,
// rows "gemv") and kernels::SkinnyGemm (up to kSkinnyGemmMaxRows, rows "skinny"); both have the
// same signature. bytes = w once + x + y (bf16).
using SmallMGemm = decltype(&attnres::kernels::Gemv);
void BenchSmallM(const char* kind, SmallMGemm gemm, const char* name, int M, int N, int K) {
  const std::string row = std::string(kind) + " " + name + " M=" + std::to_string(M);
  if (!Wanted(row)) return;
  bf16* x = static_cast<bf16*>(Buf(size_t(M) * K * 2, 8));
  bf16* y = static_cast<bf16*>(Buf(size_t(M) * N * 2, 10));
  const double ms = GemmMedianMs([&](const bf16* w) { gemm(x, w, y, M, N, K, false, nullptr); },
                                 size_t(N) * K * 2, 9);
  Row(row, ms, 2.0 * (double(M) * K + double(N) * K + double(M) * N), 0);
  cudaFree(x); cudaFree(y);
}

// The fused gate/up + SwiGLU forms (GemvSwiGlu, SkinnyGemmSwiGlu), what Gemm::RunSwiGlu uses below
// cuBLASLt: the MLP's gate/up projection [2f, K] with SwiGLU in the epilogue; bytes = w once + x +
// act (bf16).
using SmallMSwiGlu = decltype(&attnres::kernels::GemvSwiGlu);
void BenchSmallMSwiGlu(const char* kind, SmallMSwiGlu gemm, int M, int f, int K) {
  const std::string row = std::string(kind) + " gate_up+swiglu M=" + std::to_string(M);
  if (!Wanted(row)) return;
  bf16* x = static_cast<bf16*>(Buf(size_t(M) * K * 2, 8));
  bf16* y = static_cast<bf16*>(Buf(size_t(M) * f * 2, 10));
  const double ms = GemmMedianMs([&](const bf16* w) { gemm(x, w, y, M, f, K, nullptr); },
                                 size_t(2) * f * K * 2, 9);
  Row(row, ms, 2.0 * (double(M) * K + 2.0 * f * K + double(M) * f), 0);
  cudaFree(x); cudaFree(y);
}

// A residual boundary between two decode GEMMs at the 8B width, M rows: the o projection then
// qkv, or down then gate/up + SwiGLU; the standard add + norm or a phase-2 AttnRes mix. Unfolded
// (Gemv into delta, ResidualBoundary, Gemv on its output, what a step runs by default) against
// folded into the two Gemvs (GemvAddResidual, then GemvNormed / GemvSwiGluNormed, what
// ATTNRES_FUSED_BOUNDARY=1 runs). Chains of 10 back to back, each on fresh weight copies; bytes =
// both matrices once.
void BenchBoundaryFold(const char* name, int M, int k1, int n2, bool swiglu, bool merge) {
  namespace k = attnres::kernels;
  constexpr int d = 4096;
  const std::string row =
      std::string("fold ") + name + (merge ? " mix" : " std") + " M=" + std::to_string(M);
  if (!Wanted(row)) return;
  const size_t w1_bytes = size_t(d) * k1 * 2, w2_bytes = size_t(swiglu ? 2 * n2 : n2) * d * 2;
  const size_t copies = std::max<size_t>(1, (200u << 20) / (w1_bytes + w2_bytes) + 1);
  std::vector<bf16*> w1, w2;
  for (size_t i = 0; i < copies; ++i) {
    w1.push_back(static_cast<bf16*>(Buf(w1_bytes, 40 + i)));
    w2.push_back(static_cast<bf16*>(Buf(w2_bytes, 80 + i)));
  }
  bf16* x1 = static_cast<bf16*>(Buf(size_t(M) * k1 * 2, 1));
  bf16* prefix = static_cast<bf16*>(Buf(size_t(M) * d * 2, 2));
  bf16* delta = static_cast<bf16*>(Buf(size_t(M) * d * 2, 3));
  bf16* xn = static_cast<bf16*>(Buf(size_t(M) * d * 2, 4));
  bf16* y = static_cast<bf16*>(Buf(size_t(M) * n2 * 2, 5));
  // fp32 inputs as BenchBoundary fills them (ml: max and sum both about 1).
  float* gamma = FloatBuf(d, 6, 1.0f, 0.1f);
  float* u = FloatBuf(d, 7, 0.0f, 0.02f);
  float* summary_h = FloatBuf(size_t(M) * d, 8, 0.0f, 1.0f);
  float2* ml = reinterpret_cast<float2*>(FloatBuf(size_t(M) * 2, 9, 1.0f, 0.1f));
  float* stats = FloatBuf(size_t(M) * k::kBoundaryStats * k::GemvTiles(d), 10, 0.0f, 0.0f);
  k::ResidualBoundaryArgs a;
  a.num_rows = a.T = M;
  a.d = d;
  a.delta = delta;
  a.prefix = prefix;
  a.gamma = gamma;
  a.out = xn;
  k::GemvResidual r;
  r.prefix = prefix;
  r.stats = stats;
  k::GemvNormIn in;
  in.prefix = prefix;
  in.stats = stats;
  in.tiles = k::GemvTiles(d);
  in.gamma = gamma;
  if (merge) {
    a.u = r.u = u;
    a.bank_count = 1;
    a.summary_index = 0;
    a.summary_h = summary_h;
    r.summary_h = in.summary_h = summary_h;
    a.summary_ml = ml;
    in.summary_ml = ml;
    a.summary_stride = 1;
  }
  size_t next = 0;
  auto unfolded_chain = [&] {
    for (int i = 0; i < 10; ++i, ++next) {
      k::Gemv(x1, w1[next % copies], delta, M, d, k1, false, nullptr);
      k::ResidualBoundary(a, nullptr);
      if (swiglu) {
        k::GemvSwiGlu(xn, w2[next % copies], y, M, n2, d, nullptr);
      } else {
        k::Gemv(xn, w2[next % copies], y, M, n2, d, false, nullptr);
      }
    }
  };
  auto folded_chain = [&] {
    for (int i = 0; i < 10; ++i, ++next) {
      k::GemvAddResidual(x1, w1[next % copies], M, d, k1, r, nullptr);
      if (swiglu) {
        k::GemvSwiGluNormed(in, w2[next % copies], y, M, n2, d, nullptr);
      } else {
        k::GemvNormed(in, w2[next % copies], y, M, n2, d, nullptr);
      }
    }
  };
  const int reps = Reps(30);
  const double unfolded = MedianMs(unfolded_chain, reps) / 10;
  const double folded = MedianMs(folded_chain, reps) / 10;
  const double bytes = double(w1_bytes) + double(w2_bytes);
  Row(row + " unfolded", unfolded, bytes, 0);
  Row(row + " folded", folded, bytes, 0);
  for (bf16* p : w1) cudaFree(p);
  for (bf16* p : w2) cudaFree(p);
  for (void* p : {static_cast<void*>(x1), static_cast<void*>(prefix), static_cast<void*>(delta),
                  static_cast<void*>(xn), static_cast<void*>(y), static_cast<void*>(gamma),
                  static_cast<void*>(u), static_cast<void*>(summary_h), static_cast<void*>(ml),
                  static_cast<void*>(stats)}) {
    cudaFree(p);
  }
}

// splits > 0 forces that many KV splits; 0 takes PagedAttentionSplitCount's choice. hd 128:
// Llama-3.1-8B heads; hd 64: Llama-3.2-1B heads (both 32 query heads over 8 KV heads). rope:
// with the step's RoPE + K/V write, as the separate kernel before the attention or fused into it;
// or the chain from the qkv projection (hidden 4096 at hd 128, 2048 at hd 64; Gemv sizes, its
// weights rotating over >= 200 MB of copies as in a step): the qkv Gemv, the RoPE kernel and the
// attention, against GemvQkvRope and the attention (what a decode step of up to 8 rows runs).
enum class DecodeRope { kNone, kSeparate, kFused, kQkvGemvThenKernel, kQkvGemvEpilogue };
void BenchDecodeAttention(int seqs, int ctx, int splits = 0, int hd = 128,
                          DecodeRope rope = DecodeRope::kNone) {
  const int H = 32, KV = 8, ps = 16, pages_per = (ctx + ps - 1) / ps;
  const size_t cache = size_t(seqs) * pages_per * ps * KV * hd;
  bf16* k = static_cast<bf16*>(Buf(cache * 2, 11));
  bf16* v = static_cast<bf16*>(Buf(cache * 2, 12));
  bf16* q = static_cast<bf16*>(Buf(size_t(seqs) * H * hd * 2, 13));
  bf16* out = static_cast<bf16*>(Buf(size_t(seqs) * H * hd * 2, 14));
  std::vector<int32_t> pos(seqs, ctx - 1), indptr(seqs + 1), pages(size_t(seqs) * pages_per), tiles;
  for (int s = 0; s <= seqs; ++s) indptr[s] = s * pages_per;
  for (size_t i = 0; i < pages.size(); ++i) pages[i] = int32_t(i);
  for (int s = 0; s < seqs; ++s) tiles.insert(tiles.end(), {s, s, 1});
  int32_t *d_pos, *d_indptr, *d_pages, *d_tiles;
  for (auto [dst, src] : {std::pair{&d_pos, &pos}, {&d_indptr, &indptr}, {&d_pages, &pages}, {&d_tiles, &tiles}}) {
    cudaMalloc(dst, src->size() * 4);
    cudaMemcpy(*dst, src->data(), src->size() * 4, cudaMemcpyHostToDevice);
  }
  attnres::kernels::PagedAttentionArgs a;
  a.q = q; a.k_cache = k; a.v_cache = v; a.positions = d_pos; a.tiles = d_tiles;
  a.kv_page_indptr = d_indptr; a.kv_page_indices = d_pages; a.num_tiles = seqs; a.max_tile_rows = 1;
  a.H = H; a.KV = KV; a.hd = hd; a.page_size = ps; a.scale = 0.088f; a.out = out;
  a.T = seqs; a.max_context = ctx;
  const size_t ws_bytes = 32u << 20;  // as CudaForward
  a.workspace = Buf(ws_bytes, 15); a.workspace_bytes = ws_bytes;
  a.splits = splits;
  const size_t width = size_t(H + 2 * KV) * hd;
  bf16* qkv = static_cast<bf16*>(Buf(size_t(seqs) * width * 2, 16));
  float2* table = static_cast<float2*>(Buf(size_t(seqs) * hd / 2 * sizeof(float2), 17));
  std::vector<int32_t> row_seq(seqs);
  for (int s = 0; s < seqs; ++s) row_seq[s] = s;
  int32_t* d_row_seq = nullptr;
  cudaMalloc(&d_row_seq, seqs * 4);
  cudaMemcpy(d_row_seq, row_seq.data(), seqs * 4, cudaMemcpyHostToDevice);
  attnres::kernels::RopeKvWriteArgs r;
  r.rope.qkv = qkv; r.rope.table = table; r.positions = d_pos; r.row_seq = d_row_seq;
  r.kv_page_indptr = d_indptr; r.kv_page_indices = d_pages; r.T = seqs; r.H = H; r.KV = KV;
  r.hd = hd; r.page_size = ps; r.q_out = q; r.k_cache = k; r.v_cache = v;
  if (rope == DecodeRope::kFused) a.rope = r.rope;
  const bool with_qkv =
      rope == DecodeRope::kQkvGemvThenKernel || rope == DecodeRope::kQkvGemvEpilogue;
  const int hidden = hd == 128 ? 4096 : 2048;
  const size_t w_bytes = with_qkv ? width * hidden * 2 : 0;
  std::vector<bf16*> w;
  for (size_t i = 0; with_qkv && i < (200u << 20) / w_bytes + 1; ++i) {
    w.push_back(static_cast<bf16*>(Buf(w_bytes, 18 + i)));
  }
  bf16* x = with_qkv ? static_cast<bf16*>(Buf(size_t(seqs) * hidden * 2, 40)) : nullptr;
  size_t next = 0;
  const double ms = MedianMs([&] {
    if (rope == DecodeRope::kQkvGemvThenKernel) {
      attnres::kernels::Gemv(x, w[next++ % w.size()], qkv, seqs, int(width), hidden, false,
                             nullptr);
    } else if (rope == DecodeRope::kQkvGemvEpilogue) {
      attnres::kernels::GemvQkvRope(x, w[next++ % w.size()], hidden, r, nullptr);
    }
    if (rope == DecodeRope::kSeparate || rope == DecodeRope::kQkvGemvThenKernel) {
      attnres::kernels::RopeKvWrite(r, nullptr);
    }
    attnres::kernels::PagedAttention(a, nullptr);
  });
  const char* label = rope == DecodeRope::kNone       ? ""
                      : rope == DecodeRope::kSeparate ? ", RoPE kernel before"
                      : rope == DecodeRope::kFused    ? ", RoPE fused"
                      : rope == DecodeRope::kQkvGemvThenKernel
                          ? ", after the qkv Gemv + RoPE kernel"
                          : ", after the qkv Gemv with RoPE";
  Row("paged decode attention " + std::to_string(seqs) + "x" + std::to_string(ctx) +
          (hd == 128 ? "" : " hd" + std::to_string(hd)) + " (" +
          std::to_string(attnres::kernels::PagedAttentionSplitCount(a)) + " splits" + label + ")",
      ms, 2.0 * cache * 2 + double(w_bytes), 0);
  for (bf16* p : w) cudaFree(p);
  cudaFree(x);
  cudaFree(k); cudaFree(v); cudaFree(q); cudaFree(out); cudaFree(a.workspace); cudaFree(qkv);
  cudaFree(table); cudaFree(d_row_seq);
  for (int32_t* p : {d_pos, d_indptr, d_pages, d_tiles}) cudaFree(p);
}

// One causal prefill chunk of T tokens over an empty cache (FLOPs counted causally).
void BenchPrefillAttention(int T) {
  const int H = 32, KV = 8, hd = 128, ps = 16, pages_n = (T + ps - 1) / ps;
  const size_t cache = size_t(pages_n) * ps * KV * hd;
  bf16* k = static_cast<bf16*>(Buf(cache * 2, 21));
  bf16* v = static_cast<bf16*>(Buf(cache * 2, 22));
  bf16* q = static_cast<bf16*>(Buf(size_t(T) * H * hd * 2, 23));
  bf16* out = static_cast<bf16*>(Buf(size_t(T) * H * hd * 2, 24));
  std::vector<int32_t> pos(T), indptr = {0, pages_n}, pages(pages_n), tiles;
  for (int t = 0; t < T; ++t) pos[t] = t;
  for (int i = 0; i < pages_n; ++i) pages[i] = i;
  const int tile_rows = attnres::kernels::AttentionTileRows(H / KV);
  for (int r = 0; r < T; r += tile_rows) tiles.insert(tiles.end(), {0, r, std::min(tile_rows, T - r)});
  int32_t *d_pos, *d_indptr, *d_pages, *d_tiles;
  for (auto [dst, src] : {std::pair{&d_pos, &pos}, {&d_indptr, &indptr}, {&d_pages, &pages}, {&d_tiles, &tiles}}) {
    cudaMalloc(dst, src->size() * 4);
    cudaMemcpy(*dst, src->data(), src->size() * 4, cudaMemcpyHostToDevice);
  }
  attnres::kernels::PagedAttentionArgs a;
  a.q = q; a.k_cache = k; a.v_cache = v; a.positions = d_pos; a.tiles = d_tiles;
  a.kv_page_indptr = d_indptr; a.kv_page_indices = d_pages;
  a.num_tiles = int(tiles.size() / 3); a.max_tile_rows = std::min(tile_rows, T);
  a.H = H; a.KV = KV; a.hd = hd; a.page_size = ps; a.scale = 0.088f; a.out = out;
  a.T = T; a.max_context = T;
  const double ms = MedianMs([&] { attnres::kernels::PagedAttention(a, nullptr); });
  const double flops = 4.0 * H * hd * (double(T) * (T + 1) / 2);
  Row("paged prefill attention " + std::to_string(T) + " causal", ms, 0, flops);
  // The same chunk as CudaForward runs it from kDenseMinRows rows: K/V gathered out of the
  // pages, then cuDNN's fused attention (q and out padded to a bucket).
  auto cudnn = attnres::cuda::CudnnAttention::Create(H, KV, hd, 0.088f);
  if (cudnn.ok()) {
    const int rows = attnres::cuda::CudnnAttention::KeyBucket(T);
    bf16* qp = static_cast<bf16*>(Buf(size_t(rows) * H * hd * 2, 25));
    bf16* op = static_cast<bf16*>(Buf(size_t(rows) * H * hd * 2, 26));
    bf16* dk = static_cast<bf16*>(Buf(size_t(rows) * KV * hd * 2, 27));
    bf16* dv = static_cast<bf16*>(Buf(size_t(rows) * KV * hd * 2, 28));
    int32_t* lens = nullptr;
    const int32_t host_lens[8] = {T, 0, 0, 0, T, 0, 0, 0};
    cudaMalloc(&lens, sizeof(host_lens));
    cudaMemcpy(lens, host_lens, sizeof(host_lens), cudaMemcpyHostToDevice);
    attnres::kernels::GatherKvArgs g;
    g.k_cache = k; g.v_cache = v; g.pages = d_pages; g.n = T; g.kv_dim = KV * hd;
    g.page_size = ps; g.k_out = dk; g.v_out = dv;
    attnres::cuda::CudnnAttention::Chunk c;
    c.q = qp; c.k = dk; c.v = dv; c.out = op; c.lens = lens; c.s_q = T; c.s_kv = T;
    if (const absl::Status st = (*cudnn)->Run(c, nullptr); !st.ok()) {  // builds the plan
      std::printf("cuDNN prefill attention: %s\n", std::string(st.message()).c_str());
    }
    const double gather = MedianMs([&] { attnres::kernels::GatherKv(g, nullptr); });
    Row("gather K/V of " + std::to_string(T) + " positions", gather, 2.0 * 2 * 2 * cache, 0);
    const double dense = MedianMs([&] { (void)(*cudnn)->Run(c, nullptr); });
    Row("cuDNN prefill attention " + std::to_string(T) + " causal", dense, 0, flops);
    cudaFree(qp); cudaFree(op); cudaFree(dk); cudaFree(dv); cudaFree(lens);
  } else {
    std::printf("cuDNN prefill attention: %s\n", std::string(cudnn.status().message()).c_str());
  }
  cudaFree(k); cudaFree(v); cudaFree(q); cudaFree(out);
  for (int32_t* p : {d_pos, d_indptr, d_pages, d_tiles}) cudaFree(p);
}

// The GPU sampler over R rows of a Llama-3 vocabulary (fp32 logits): greedy, and plain
// temperature (no truncation, no sort: the argmax pass, then one pass of probabilities and a
// partial walk), in the wide form (chunks over many blocks, as the runner calls it) or one block
// per row. Bytes: one read of the logits per full pass.
void BenchSample(int R, float temperature, bool wide) {
  constexpr int V = 128256;
  float* logits = nullptr;
  attnres::kernels::SampleParams* params = nullptr;
  int32_t* tokens = nullptr;
  cudaMalloc(&logits, size_t(R) * V * 4);
  cudaMalloc(&params, R * sizeof(attnres::kernels::SampleParams));
  cudaMalloc(&tokens, R * 4);
  std::vector<float> host(size_t(R) * V);
  for (size_t i = 0; i < host.size(); ++i) host[i] = float((i * 2654435761u) % 1000) * 0.01f;
  cudaMemcpy(logits, host.data(), host.size() * 4, cudaMemcpyHostToDevice);
  std::vector<attnres::kernels::SampleParams> p(R);
  for (int r = 0; r < R; ++r) {
    p[r].temperature = temperature;
    p[r].seed = 1234 + r;
  }
  cudaMemcpy(params, p.data(), R * sizeof(p[0]), cudaMemcpyHostToDevice);
  const size_t temp_bytes = attnres::kernels::SampleRowsTempBytes(R);
  void* temp = nullptr;
  if (wide) cudaMalloc(&temp, temp_bytes);
  const double ms = MedianMs([&] {
    attnres::kernels::SampleRows(logits, nullptr, nullptr, params, R, V, tokens, temp,
                                 wide ? temp_bytes : 0, nullptr);
  });
  const int passes = temperature == 0.0f ? 1 : 2;
  Row("sample " + std::string(temperature == 0.0f ? "greedy " : "temperature ") +
          std::to_string(R) + "x" + std::to_string(V) + (wide ? "" : " one block per row"),
      ms, double(passes) * R * V * 4, 0);
  cudaFree(logits); cudaFree(params); cudaFree(tokens); cudaFree(temp);
}

// The sampler's logit edits and logprobs over R rows of a Llama-3 vocabulary: the top 20 and
// log-sum-exp of each row (two reads of the row), a structured output's mask on every row (the
// mask read, about 80% of the row written), and 512 penalised ids per row (launch-bound).
void BenchLogitEdits(int R) {
  namespace k = attnres::kernels;
  constexpr int V = 128256, kEditsPerRow = 512;
  const int words = (V + 63) / 64;
  float* logits = FloatBuf(size_t(R) * V, 40, 0.0f, 3.0f);
  std::vector<k::LogprobRow> lp(R);
  std::vector<k::MaskedRow> masked(R);
  std::vector<k::EditedRow> rows(R);
  std::vector<k::LogitEdit> edits;
  std::vector<uint64_t> mask(size_t(R) * words);
  for (int r = 0; r < R; ++r) {
    lp[r] = {r, k::kMaxTopLogprobs, -1};
    masked[r] = {r, r * words};
    rows[r] = {r, r * kEditsPerRow, (r + 1) * kEditsPerRow, 1.1f, 0.5f, 0.25f};
    for (int e = 0; e < kEditsPerRow; ++e) {
      edits.push_back({r, (e * 251) % V, 1 + e % 3, k::kEditSeen | k::kEditCounted, 0.0f});
    }
  }
  for (size_t i = 0; i < mask.size(); ++i) mask[i] = 0x1111111111111111ull * (i % 3 == 0);
  auto upload = [](const auto& v) {
    void* d = nullptr;
    cudaMalloc(&d, std::max<size_t>(1, v.size() * sizeof(v[0])));
    cudaMemcpy(d, v.data(), v.size() * sizeof(v[0]), cudaMemcpyHostToDevice);
    return d;
  };
  auto* d_lp = static_cast<k::LogprobRow*>(upload(lp));
  auto* d_masked = static_cast<k::MaskedRow*>(upload(masked));
  auto* d_rows = static_cast<k::EditedRow*>(upload(rows));
  auto* d_edits = static_cast<k::LogitEdit*>(upload(edits));
  auto* d_mask = static_cast<uint64_t*>(upload(mask));
  k::LogprobOut* out = nullptr;
  double* lse = nullptr;
  float* raw = nullptr;
  cudaMalloc(&out, R * sizeof(k::LogprobOut));
  cudaMalloc(&lse, R * sizeof(double));
  cudaMalloc(&raw, edits.size() * sizeof(float));
  const std::string shape = std::to_string(R) + "x" + std::to_string(V);
  void* temp = nullptr;
  const size_t temp_bytes = k::RawLogprobsTempBytes(R);
  cudaMalloc(&temp, temp_bytes);
  const double top = MedianMs([&] {
    k::RawLogprobs(logits, V, d_lp, R, k::kMaxTopLogprobs, out, lse, temp, temp_bytes, nullptr);
  });
  cudaFree(temp);
  Row("logprobs top-20 + lse " + shape, top, 2.0 * R * V * 4, 0);
  const double m = MedianMs([&] {
    k::EditLogits(logits, V, nullptr, nullptr, 0, nullptr, d_masked, R, d_mask, nullptr);
  });
  Row("token mask " + shape, m, R * (V / 8.0 + 0.8 * V * 4), 0);
  const double e = MedianMs([&] {
    k::EditLogits(logits, V, d_rows, d_edits, static_cast<int>(edits.size()), raw, nullptr, 0,
                  nullptr, nullptr);
  });
  Row("penalties " + std::to_string(kEditsPerRow) + " ids x " + std::to_string(R) + " rows", e,
      edits.size() * (sizeof(k::LogitEdit) + 12.0), 0);
  for (void* p :
       {static_cast<void*>(logits), static_cast<void*>(d_lp), static_cast<void*>(d_masked),
        static_cast<void*>(d_rows), static_cast<void*>(d_edits), static_cast<void*>(d_mask),
        static_cast<void*>(out), static_cast<void*>(lse), static_cast<void*>(raw)}) {
    cudaFree(p);
  }
}

// Prompt logprobs of R rows of a Llama-3 vocabulary, each asking for its top n (the runner's
// scoring path, models/cuda/prompt_logprobs.h): the rows' top n and log-sum-exp, then each row's
// target token's logprob. bytes: the rows read once.
void BenchPromptLogprobs(int R, int n) {
  namespace k = attnres::kernels;
  constexpr int V = 128256;
  const std::string row = "prompt logprobs top-" + std::to_string(n) + " " + std::to_string(R) +
                          "x" + std::to_string(V);
  if (!Wanted(row)) return;
  float* logits = FloatBuf(size_t(R) * V, 41, 0.0f, 3.0f);
  std::vector<k::LogprobRow> lp(R);
  std::vector<int32_t> targets(R);
  for (int r = 0; r < R; ++r) {
    lp[r] = {r, n, -1};
    targets[r] = (r * 7919) % V;
  }
  k::LogprobRow* d_lp = nullptr;
  int32_t* d_targets = nullptr;
  k::LogprobOut* out = nullptr;
  double* lse = nullptr;
  void* temp = nullptr;
  const size_t temp_bytes = k::RawLogprobsTempBytes(R);
  cudaMalloc(&d_lp, R * sizeof(k::LogprobRow));
  cudaMalloc(&d_targets, R * sizeof(int32_t));
  cudaMalloc(&out, R * sizeof(k::LogprobOut));
  cudaMalloc(&lse, R * sizeof(double));
  cudaMalloc(&temp, temp_bytes);
  cudaMemcpy(d_lp, lp.data(), R * sizeof(k::LogprobRow), cudaMemcpyHostToDevice);
  cudaMemcpy(d_targets, targets.data(), R * sizeof(int32_t), cudaMemcpyHostToDevice);
  const double ms = MedianMs(
      [&] {
        k::RawLogprobs(logits, V, d_lp, R, n, out, lse, temp, temp_bytes, nullptr);
        k::ChosenLogprobs(logits, V, d_lp, R, nullptr, nullptr, nullptr, d_targets, lse, out,
                          nullptr);
      },
      std::max(5, Reps(30)));
  Row(row, ms, double(R) * V * 4, 0);
  for (void* p :
       {static_cast<void*>(logits), static_cast<void*>(d_lp), static_cast<void*>(d_targets),
        static_cast<void*>(out), static_cast<void*>(lse), temp}) {
    cudaFree(p);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1) g_filter = argv[1];
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess || n == 0) {
    std::printf("no CUDA device: skipped\n");
    return 0;
  }
  cudaDeviceProp prop;
  cudaGetDeviceProperties(&prop, 0);
  g_card_bytes_per_s = attnres::MeasuredCopyBytesPerS();
  std::printf("%s: copy %.2f TB/s measured (read + write); rows are against the H200's %.2f TB/s\n",
              prop.name, g_card_bytes_per_s / 1e12, kPeakBytesPerS / 1e12);
  std::printf("| kernel (Llama-3.1-8B shapes)                 | median     | vs ceiling |\n|---|---|---|\n");
  for (int T : {1, 16, 64, 128, 256}) {
    BenchBoundary(T, 0, BoundaryForm::kOnePhase);
    BenchBoundary(T, 8, BoundaryForm::kOnePhase);
    if (T >= 256) continue;  // two-phase mixing serves decode steps (under 256 rows)
    BenchBoundary(T, 8, BoundaryForm::kPhase2);
    BenchBoundary(T, 7, BoundaryForm::kSnapshotPhase1);
  }
  BenchPrefillMixCost();  // T = 4096, nb = 0 .. 8
  for (int T : {1, 64}) {
    BenchBoundary(T, 0, BoundaryForm::kOnePhase, 2048, 3);
    BenchBoundary(T, 7, BoundaryForm::kOnePhase, 2048, 3);
    BenchBoundary(T, 8, BoundaryForm::kPhase2, 2048, 3);
    BenchBoundary(T, 7, BoundaryForm::kSnapshotPhase1, 2048, 3);
  }
  auto g = attnres::cuda::Gemm::Create();
  if (!g.ok()) return 1;
  struct Shape { const char* name; int N, K; };
  const Shape shapes[] = {{"qkv", 6144, 4096}, {"o", 4096, 4096}, {"gate_up", 28672, 4096},
                          {"down", 4096, 14336}};
  using attnres::kernels::Gemv;
  using attnres::kernels::GemvSwiGlu;
  using attnres::kernels::SkinnyGemm;
  using attnres::kernels::SkinnyGemmSwiGlu;
  for (int M : {1, 4, 8}) {  // decode sizes: cuBLASLt (M = 1, 8) next to Gemv
    for (const Shape& s : shapes) {
      if (M != 4) BenchGemm(**g, s.name, M, s.N, s.K);
      BenchSmallM("gemv", Gemv, s.name, M, s.N, s.K);
    }
    if (M != 4) BenchSmallMSwiGlu("gemv", GemvSwiGlu, M, 14336, 4096);
  }
  for (int M : {1, 8}) {  // the boundary between them folded into the Gemvs, or not
    for (bool merge : {false, true}) {
      BenchBoundaryFold("o>qkv", M, 4096, 6144, false, merge);
      BenchBoundaryFold("down>gate_up", M, 14336, 14336, true, merge);
    }
  }
  for (int M : {16, 32, 64}) {  // cuBLASLt next to the skinny GEMM
    for (const Shape& s : shapes) {
      BenchGemm(**g, s.name, M, s.N, s.K);
      BenchSmallM("skinny", SkinnyGemm, s.name, M, s.N, s.K);
    }
    BenchSmallMSwiGlu("skinny", SkinnyGemmSwiGlu, M, 14336, 4096);
  }
  for (const Shape& s : {Shape{"1B qkv", 3072, 2048}, Shape{"1B o", 2048, 2048},
                         Shape{"1B down", 2048, 8192}}) {
    BenchGemm(**g, s.name, 64, s.N, s.K);
    BenchSmallM("skinny", SkinnyGemm, s.name, 64, s.N, s.K);
  }
  BenchSmallMSwiGlu("skinny 1B", SkinnyGemmSwiGlu, 64, 8192, 2048);
  for (int M : {256, 4096}) {
    for (const Shape& s : shapes) BenchGemm(**g, s.name, M, s.N, s.K);
  }
  BenchGemm(**g, "lm_head", 1, 128256, 4096);
  BenchSmallM("gemv", Gemv, "lm_head", 1, 128256, 4096);
  BenchGemm(**g, "lm_head", 64, 128256, 4096);
  BenchSmallM("skinny", SkinnyGemm, "lm_head", 64, 128256, 4096);
  // A scored prompt (prompt logprobs): the head over chunks of its rows, fp32 logits, and each
  // row's top n and log-sum-exp.
  for (int M : {64, 256, 1024, 4096}) BenchGemm(**g, "lm_head f32", M, 128256, 4096, true);
  for (int R : {64, 256, 1024, 4096}) {
    for (int n : {1, 5, 20}) BenchPromptLogprobs(R, n);
  }
  if (g_filter) return 0;
  BenchDecodeAttention(1, 512);
  for (DecodeRope rope : {DecodeRope::kSeparate, DecodeRope::kFused}) {
    for (int seqs : {1, 64}) BenchDecodeAttention(seqs, 512, 0, 128, rope);
    BenchDecodeAttention(1, 512, 0, 64, rope);
  }
  for (DecodeRope rope : {DecodeRope::kQkvGemvThenKernel, DecodeRope::kQkvGemvEpilogue}) {
    for (int seqs : {1, 8}) BenchDecodeAttention(seqs, 512, 0, 128, rope);
    BenchDecodeAttention(1, 512, 0, 64, rope);
  }
  BenchDecodeAttention(64, 512);
  BenchDecodeAttention(256, 512);
  BenchDecodeAttention(1, 4096);
  for (int seqs : {16, 32}) {
    for (int splits : {1, 2, 3, 4}) BenchDecodeAttention(seqs, 512, splits);
  }
  for (int splits : {1, 3, 4, 6, 8}) BenchDecodeAttention(64, 512, splits);  // the split choice
  for (int splits : {2, 3, 4}) BenchDecodeAttention(256, 512, splits);
  for (int splits : {2, 8}) BenchDecodeAttention(1, 512, splits);
  for (int seqs : {1, 64, 128}) {  // 1B heads
    for (int splits : {0, 1, 2}) BenchDecodeAttention(seqs, 512, splits, 64);
  }
  BenchPrefillAttention(4096);
  for (int R : {1, 64}) {
    for (bool wide : {true, false}) {
      BenchSample(R, 0.0f, wide);
      BenchSample(R, 0.8f, wide);
    }
    BenchLogitEdits(R);
  }
  return 0;
}
