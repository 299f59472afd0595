// Forward-pass kernels against their CPU twins over odd sizes: the fused residual boundary
// (AttnResMix + RmsNorm), SwiGLU, embedding gather, RoPE + KV page write + paged attention.
#include <algorithm>
#include <cstdlib>
#include <numeric>

#include "kernels/attn_res_staged.h"
#include "kernels/ops.h"
#include "models/attn_res_mix.h"
#include "models/cpu_ops.h"
#include "models/rope.h"
#include "tests/gpu/gpu_test_util.h"

namespace attnres {
namespace {

// The staged boundary serves the one-phase AttnRes mixes by default and the standard add + norm
// only with ATTNRES_STAGED_BOUNDARY=1; these tests run it wherever it can serve (set before
// anything reads the switch).
const bool kStagedOn = [] { return setenv("ATTNRES_STAGED_BOUNDARY", "1", 0) == 0; }();

using gpu_testing::Cosine;
using gpu_testing::DeviceArray;
using gpu_testing::FromBf16;
using gpu_testing::RandomBf16Values;
using gpu_testing::RelL2;
using gpu_testing::ToBf16;
using kernels::bf16;

// rsqrt(mean(v^2) + eps) of each d-wide row of `rows`, in double (the cached bank RMS).
std::vector<float> InvRms(const std::vector<float>& rows, int d, double eps) {
  std::vector<float> out(rows.size() / d);
  for (size_t r = 0; r < out.size(); ++r) {
    double sq = 0;
    for (int i = 0; i < d; ++i) sq += double(rows[r * d + i]) * rows[r * d + i];
    out[r] = float(1.0 / std::sqrt(sq / d + eps));
  }
  return out;
}

struct BoundaryCase {
  int T, d, bank_count;
  bool snapshot, prefix_empty, delta, subset, use_u;
};

void RunBoundaryCase(const BoundaryCase& k, uint32_t seed) {
  SCOPED_TRACE(testing::Message() << "T=" << k.T << " d=" << k.d << " nb=" << k.bank_count
                                  << " snap=" << k.snapshot << " empty=" << k.prefix_empty
                                  << " delta=" << k.delta << " subset=" << k.subset);
  const int T = k.T, d = k.d, slots = k.bank_count + 1;
  const double eps = 1e-5;
  auto prefix = RandomBf16Values(size_t(T) * d, seed, 2.0f);
  auto delta = RandomBf16Values(size_t(T) * d, seed + 1, 1.0f);
  auto bank = RandomBf16Values(size_t(slots) * T * d, seed + 2, 3.0f);
  auto u = RandomBf16Values(d, seed + 3, 3.0f / std::sqrt(float(d)));
  auto gamma = RandomBf16Values(d, seed + 4, 1.0f);
  const auto inv_rms = InvRms(bank, d, eps);
  std::vector<int32_t> rows(T);
  std::iota(rows.begin(), rows.end(), 0);
  if (k.subset) {  // every third row, reversed
    std::vector<int32_t> r;
    for (int t = T - 1; t >= 0; t -= 3) r.push_back(t);
    rows = r;
  }
  const int R = static_cast<int>(rows.size()), W = k.bank_count + 1;
  std::vector<int32_t> record(T, -1);
  for (int i = 0; i < R; ++i) record[rows[i]] = i;

  DeviceArray<uint16_t> d_prefix(prefix.size()), d_delta(delta.size()), d_bank(bank.size()),
      d_out(size_t(R) * d);
  DeviceArray<float> d_inv(inv_rms.size()), d_u(d), d_gamma(d), d_mix(size_t(R) * W);
  DeviceArray<int32_t> d_rows(R), d_record(T);
  d_prefix.Upload(ToBf16(prefix));
  d_delta.Upload(ToBf16(delta));
  d_bank.Upload(ToBf16(bank));
  d_inv.Upload(inv_rms);
  d_u.Upload(u);
  d_gamma.Upload(gamma);
  d_rows.Upload(rows);
  d_record.Upload(record);
  kernels::ResidualBoundaryArgs a;
  a.num_rows = R;
  a.rows = k.subset ? d_rows.get() : nullptr;
  a.T = T;
  a.d = d;
  a.delta = k.delta ? reinterpret_cast<bf16*>(d_delta.get()) : nullptr;
  a.prefix_empty = k.prefix_empty;
  a.prefix = reinterpret_cast<bf16*>(d_prefix.get());
  a.bank = reinterpret_cast<bf16*>(d_bank.get());
  a.bank_inv_rms = d_inv.get();
  a.bank_count = k.bank_count;
  a.snapshot = k.snapshot;
  a.u = k.use_u ? d_u.get() : nullptr;
  a.gamma = d_gamma.get();
  a.eps = float(eps);
  a.out = reinterpret_cast<bf16*>(d_out.get());
  a.mix_weights = k.use_u ? d_mix.get() : nullptr;
  a.record_row = d_record.get();
  a.mix_stride = W;
  ASSERT_CUDA(kernels::ResidualBoundary(a, nullptr));
  ASSERT_CUDA(cudaDeviceSynchronize());
  const auto out = FromBf16(d_out.Download());
  const auto new_prefix = FromBf16(d_prefix.Download());
  const auto new_bank = FromBf16(d_bank.Download());
  const auto new_inv = d_inv.Download();
  const auto mix = d_mix.Download();

  std::vector<float> x(d), h(d), y(d), alpha(W);
  std::vector<const float*> src(W);
  for (int i = 0; i < R; ++i) {
    const int t = rows[i];
    for (int c = 0; c < d; ++c) {
      const float p = prefix[size_t(t) * d + c], dl = delta[size_t(t) * d + c];
      x[c] = !k.delta ? p : (k.prefix_empty ? dl : RoundBf16(p + dl));
    }
    for (int j = 0; j < k.bank_count; ++j) src[j] = &bank[(size_t(j) * T + t) * d];
    src[k.bank_count] = x.data();
    if (k.use_u && k.bank_count > 0) {
      AttnResMix(src.data(), W, u.data(), d, eps, h.data(), alpha.data());
    } else {
      h = x;
      alpha.assign(W, 0.0f);
      alpha[0] = 1.0f;
    }
    RmsNorm(h.data(), gamma.data(), 1, d, eps, y.data());
    const float* got = &out[size_t(i) * d];
    ASSERT_LT(RelL2(got, y.data(), d), 1e-2) << "row " << t;
    ASSERT_GT(Cosine(got, y.data(), d), 0.9999) << "row " << t;
    // The new prefix lands bit-exactly in the snapshot slot or the prefix.
    const float* stored = k.snapshot ? &new_bank[(size_t(k.bank_count) * T + t) * d]
                                     : &new_prefix[size_t(t) * d];
    if (k.delta || k.snapshot) {
      ASSERT_EQ(0, std::memcmp(stored, x.data(), 4 * d)) << "row " << t;
    }
    if (k.snapshot) {
      const float want = InvRms(x, d, eps)[0];
      EXPECT_NEAR(new_inv[size_t(k.bank_count) * T + t], want, 1e-4 * want);
    }
    if (k.use_u) {
      for (int j = 0; j < (k.bank_count > 0 ? W : 1); ++j) {
        EXPECT_NEAR(mix[size_t(i) * W + j], alpha[j], 2e-4) << "row " << t << " j " << j;
      }
    }
  }
  // Live bank slots are never written.
  EXPECT_EQ(0, std::memcmp(new_bank.data(), bank.data(), 4 * size_t(k.bank_count) * T * d));
}

TEST(ResidualBoundaryKernel, MatchesCpuTwinOverOddSizes) {
  ATTNRES_REQUIRE_GPU();
  uint32_t seed = 1;
  for (int T : {1, 7, 19, 733}) {
    for (int d : {64, 384, 2048, 4096}) {
      if (T == 733 && d > 2048) continue;  // keep the CPU twin quick
      for (int nb : {0, 1, 3, 9}) {
        RunBoundaryCase({T, d, nb, nb % 2 == 1, false, true, false, true}, seed++);
      }
    }
  }
  // Every bank size that the decode form compiles an instance for (0 to 8 slots), with and
  // without a snapshot.
  for (int nb = 0; nb <= 8; ++nb) {
    RunBoundaryCase({5, 1000, nb, nb % 2 == 0, false, true, false, true}, 120 + nb);
  }
  // Edge flags: empty prefix after a snapshot, no delta, a row subset (the final mix), the
  // standard residual path (no query), a bank of 17 slots (three online-softmax groups), d=8192.
  RunBoundaryCase({19, 384, 2, false, true, true, false, true}, 101);
  RunBoundaryCase({7, 384, 0, true, false, false, false, true}, 102);
  RunBoundaryCase({19, 2048, 8, false, false, true, true, true}, 103);
  RunBoundaryCase({19, 2048, 0, false, false, true, false, false}, 104);
  RunBoundaryCase({7, 64, 17, false, false, true, false, true}, 105);
  RunBoundaryCase({3, 8192, 9, true, false, true, false, true}, 106);
  // Prefill-sized row counts (>= 1024: the 4-chunk form with bank groups of 2, and 9 slots =
  // five online-softmax groups), odd d, the standard path, and a row subset.
  RunBoundaryCase({1100, 4096, 9, true, false, true, false, true}, 107);
  RunBoundaryCase({1031, 640, 3, false, false, true, false, true}, 108);
  RunBoundaryCase({1029, 2048, 0, false, false, true, false, false}, 109);
  RunBoundaryCase({1500, 1024, 5, false, false, true, true, true}, 110);
  // The staged form (attn_res_staged.cu) at prefill-sized row counts: every bank size it
  // compiles (0 to 8 mixed slots), both chunk counts per thread (d = 8192: 4), an empty prefix,
  // no delta, the embedding's snapshot, a row subset of over 1024 rows, and a row narrower than
  // a warp's chunks. (Case 109 above is its standard add + norm.)
  for (int nb = 0; nb <= 8; ++nb) {
    RunBoundaryCase({1024, 1000, nb, nb % 2 == 0, false, true, false, true}, 130 + nb);
  }
  RunBoundaryCase({1024, 4096, 8, true, false, true, false, true}, 140);
  RunBoundaryCase({1024, 8192, 5, false, false, true, false, true}, 141);
  RunBoundaryCase({1030, 384, 2, false, true, true, false, true}, 142);
  RunBoundaryCase({1030, 384, 3, true, false, false, false, true}, 143);
  RunBoundaryCase({1030, 384, 0, true, false, false, false, true}, 144);
  RunBoundaryCase({3100, 64, 4, false, false, true, true, true}, 145);
}

// Which boundaries take the staged form: one-phase boundaries mixing 0-8 slots whose sources
// fit its shared-memory budget, from 16-byte aligned buffers; the rest keep the register forms.
TEST(ResidualBoundaryKernel, StagedFormServesOnePhaseBoundariesThatFit) {
  alignas(16) static bf16 buf[64];
  alignas(16) static float f32[8];
  kernels::ResidualBoundaryArgs a;
  a.num_rows = a.T = 4096;
  a.d = 4096;
  a.prefix = a.bank = a.out = buf;
  a.delta = buf;
  a.u = a.gamma = f32;
  for (int nb = 0; nb <= 8; ++nb) {
    a.bank_count = nb;
    EXPECT_TRUE(kernels::StagedBoundaryServes(a)) << "nb=" << nb;
  }
  kernels::ResidualBoundaryArgs b = a;
  b.bank_count = 9;
  EXPECT_FALSE(kernels::StagedBoundaryServes(b));
  EXPECT_EQ(cudaErrorInvalidValue, kernels::StagedBoundary(b, nullptr));  // without launching
  b.u = nullptr;  // no mix: only x is staged
  EXPECT_TRUE(kernels::StagedBoundaryServes(b));
  b = a;
  b.summary_index = 0;
  EXPECT_FALSE(kernels::StagedBoundaryServes(b));
  // Phase 1 (prefill's two-phase mixing) takes the staged form whatever the opt-in: up to 8
  // queries, rows of up to 4096, alone or beside the snapshot.
  b = a;
  b.summary_queries = 3;
  b.snapshot = true;
  EXPECT_TRUE(kernels::StagedBoundaryServes(b));
  EXPECT_TRUE(kernels::StagedPhase1Fits(4096, 8, 8));
  b.phase1_only = true;
  b.snapshot = false;
  EXPECT_TRUE(kernels::StagedBoundaryServes(b));
  b.summary_queries = 9;
  EXPECT_FALSE(kernels::StagedBoundaryServes(b));
  EXPECT_FALSE(kernels::StagedPhase1Fits(4096, 8, 9));
  b.summary_queries = 3;
  b.d = 4104;
  b.bank_count = 1;
  EXPECT_FALSE(kernels::StagedBoundaryServes(b));
  EXPECT_FALSE(kernels::StagedPhase1Fits(4104, 1, 3));
  EXPECT_FALSE(kernels::StagedPhase1Fits(4096, 9, 3));
  EXPECT_FALSE(kernels::StagedPhase1Fits(4096, 8, 0));
  b = a;
  b.delta = buf + 1;  // 2 bytes past alignment
  EXPECT_FALSE(kernels::StagedBoundaryServes(b));
  b = a;
  b.d = 8192;  // 8 slots + prefix + delta of 16 KiB: over the budget; 5 fit
  EXPECT_FALSE(kernels::StagedBoundaryServes(b));
  b.bank_count = 5;
  EXPECT_TRUE(kernels::StagedBoundaryServes(b));
  b.d = 8200;  // past 8192
  EXPECT_FALSE(kernels::StagedBoundaryServes(b));
}

// ATTNRES_STAGED_BOUNDARY: unset (or any other value), the mixes; "1", the add + norm too; "0",
// neither.
TEST(ResidualBoundaryKernel, StagedSettingPicksTheOnePhaseBoundaries) {
  for (const char* setting : {static_cast<const char*>(nullptr), "", "2"}) {
    EXPECT_FALSE(kernels::StagedOnePhaseWanted(setting, 0));
    EXPECT_TRUE(kernels::StagedOnePhaseWanted(setting, 1));
    EXPECT_TRUE(kernels::StagedOnePhaseWanted(setting, 8));
  }
  EXPECT_TRUE(kernels::StagedOnePhaseWanted("1", 0));
  EXPECT_TRUE(kernels::StagedOnePhaseWanted("1", 3));
  EXPECT_FALSE(kernels::StagedOnePhaseWanted("0", 0));
  EXPECT_FALSE(kernels::StagedOnePhaseWanted("0", 3));
}

// Phase 1's summaries (online-softmax state of later mix q over slots 0..nb, the last being x,
// which the snapshot wrote to slot nb) against a double-precision twin. They must hold fp32
// accuracy (here: within 2e-5, fp32 rounding with room to spare): the prefill form sums on the
// tensor cores with each fp32 weight split into three bf16 terms, and one term alone would be
// off by ~1e-3.
void CheckSummaries(const std::vector<float>& sum_h, const std::vector<float2>& sum_ml,
                    const std::vector<float>& bank, const std::vector<float>& inv_rms,
                    const std::vector<float>& u, int T, int d, int nb, int Q, double eps) {
  const int slots = nb + 1;
  std::vector<double> s(slots), h(d);
  std::vector<float> got_h(d), want_h(d);
  for (int q = 0; q < Q; ++q) {
    const float* uq = &u[size_t(1 + q) * d];
    for (int t = 0; t < T; ++t) {
      double m = -INFINITY;
      for (int j = 0; j < slots; ++j) {
        const float* v = &bank[(size_t(j) * T + t) * d];
        double dot = 0, ss = 0;
        for (int c = 0; c < d; ++c) {
          dot += double(uq[c]) * v[c];
          ss += double(v[c]) * v[c];
        }
        const double r = j < nb ? inv_rms[size_t(j) * T + t] : 1.0 / std::sqrt(ss / d + eps);
        s[j] = r * dot;
        m = std::max(m, s[j]);
      }
      double l = 0;
      std::fill(h.begin(), h.end(), 0.0);
      for (int j = 0; j < slots; ++j) {
        const double w = std::exp(s[j] - m);
        l += w;
        const float* v = &bank[(size_t(j) * T + t) * d];
        for (int c = 0; c < d; ++c) h[c] += w * v[c];
      }
      const float2 ml = sum_ml[size_t(q) * T + t];
      ASSERT_NEAR(ml.x, m, 1e-5 * std::max(1.0, std::abs(m))) << "q " << q << " row " << t;
      ASSERT_NEAR(ml.y, l, 1e-5 * l) << "q " << q << " row " << t;
      for (int c = 0; c < d; ++c) {
        got_h[c] = sum_h[(size_t(q) * T + t) * d + c];
        want_h[c] = float(h[c]);
      }
      ASSERT_LT(RelL2(got_h.data(), want_h.data(), d), 2e-5) << "q " << q << " row " << t;
    }
  }
}

// Two-phase mixing (kernels/ops.h): a snapshot boundary whose extra blocks summarize the
// completed bank for Q later mixes, then each later mix in phase 2. The snapshot boundary's own
// results must not change (bit for bit), and every phase-2 mix must match the CPU twin of the
// one-phase mix and the one-phase kernel on the same inputs (up to fp32 rounding). nb = 0 is the
// embedding snapshot (no delta, a lone source).
void RunTwoPhaseCase(int T, int d, int nb, int Q, uint32_t seed) {
  SCOPED_TRACE(testing::Message() << "T=" << T << " d=" << d << " nb=" << nb << " Q=" << Q);
  const int slots = nb + 1, W = slots + 1;  // phase-2 mixes read slots + x
  const double eps = 1e-5;
  const auto prefix = RandomBf16Values(size_t(T) * d, seed, 2.0f);
  const auto delta = RandomBf16Values(size_t(T) * d, seed + 1, 1.0f);
  // One spare slot: the last later mix also runs as the next block's snapshot mix.
  auto bank = RandomBf16Values(size_t(slots + 1) * T * d, seed + 2, 3.0f);
  const auto u = RandomBf16Values(size_t(Q + 1) * d, seed + 3, 3.0f / std::sqrt(float(d)));
  const auto gamma = RandomBf16Values(d, seed + 4, 1.0f);
  auto inv_rms = InvRms(bank, d, eps);
  std::vector<int32_t> record(T);
  std::iota(record.begin(), record.end(), 0);  // every row recorded

  DeviceArray<uint16_t> d_prefix(prefix.size()), d_delta(delta.size()), d_bank(bank.size()),
      d_out(size_t(T) * d);
  DeviceArray<float> d_inv(inv_rms.size()), d_u(u.size()), d_gamma(d), d_mix(size_t(T) * W),
      d_sum_h(size_t(Q) * T * d), d_scores(size_t(Q) * T * slots);
  DeviceArray<float2> d_sum_ml(size_t(Q) * T);
  DeviceArray<int32_t> d_record(T);
  d_prefix.Upload(ToBf16(prefix));
  d_delta.Upload(ToBf16(delta));
  d_bank.Upload(ToBf16(bank));
  d_inv.Upload(inv_rms);
  d_u.Upload(u);
  d_gamma.Upload(gamma);
  d_record.Upload(record);
  kernels::ResidualBoundaryArgs a;
  a.num_rows = a.T = T;
  a.d = d;
  a.delta = nb > 0 ? reinterpret_cast<bf16*>(d_delta.get()) : nullptr;
  a.prefix = reinterpret_cast<bf16*>(d_prefix.get());
  a.bank = reinterpret_cast<bf16*>(d_bank.get());
  a.bank_inv_rms = d_inv.get();
  a.bank_count = nb;
  a.snapshot = true;
  a.u = d_u.get();
  a.gamma = d_gamma.get();
  a.eps = float(eps);
  a.out = reinterpret_cast<bf16*>(d_out.get());
  a.mix_weights = d_mix.get();
  a.record_row = d_record.get();
  a.mix_stride = W;
  a.summary_u = d_u.get() + d;
  a.summary_h = d_sum_h.get();
  a.summary_ml = d_sum_ml.get();
  a.summary_scores = d_scores.get();
  a.summary_stride = slots;
  // The snapshot boundary alone, then with phase 1: the same outputs and weights, bit for bit
  // where both take the same kernel form (under 256 rows; two-phase boundaries always take the
  // one-chunk-per-thread form), else up to rounding.
  ASSERT_CUDA(kernels::ResidualBoundary(a, nullptr));
  const auto out_alone = FromBf16(d_out.Download());
  const auto mix_alone = d_mix.Download();
  d_out.Poison();
  d_mix.Poison();
  a.summary_queries = Q;
  ASSERT_CUDA(kernels::ResidualBoundary(a, nullptr));
  ASSERT_CUDA(cudaDeviceSynchronize());
  const auto out_phase1 = FromBf16(d_out.Download());
  const auto mix_phase1 = d_mix.Download();
  if (T < 256) {
    EXPECT_EQ(0, std::memcmp(out_alone.data(), out_phase1.data(), 4 * out_alone.size()));
    EXPECT_EQ(0, std::memcmp(mix_alone.data(), mix_phase1.data(), 4 * mix_alone.size()));
  } else {
    for (int t = 0; t < T; ++t) {
      ASSERT_LT(RelL2(&out_phase1[size_t(t) * d], &out_alone[size_t(t) * d], d), 2e-3);
    }
    for (size_t i = 0; i < size_t(T) * slots; ++i) {
      ASSERT_NEAR(mix_phase1[(i / slots) * W + i % slots], mix_alone[(i / slots) * W + i % slots],
                  2e-6);
    }
  }
  // Phase 1 forked off the boundary (CudaForward::ForkPhase1): run alone after the boundary,
  // reading x from the slot it wrote, it leaves the same summaries, bit for bit.
  {
    const auto sum_h = d_sum_h.Download();
    const auto sum_ml = d_sum_ml.Download();
    const auto scores = d_scores.Download();
    d_sum_h.Poison();
    d_sum_ml.Poison();
    d_scores.Poison();
    kernels::ResidualBoundaryArgs f = a;
    f.phase1_only = true;
    f.snapshot = false;
    f.delta = nullptr;
    f.prefix = a.bank + size_t(nb) * T * d;
    ASSERT_CUDA(kernels::ResidualBoundary(f, nullptr));
    ASSERT_CUDA(cudaDeviceSynchronize());
    EXPECT_EQ(0, std::memcmp(sum_h.data(), d_sum_h.Download().data(), 4 * sum_h.size()));
    EXPECT_EQ(0, std::memcmp(sum_ml.data(), d_sum_ml.Download().data(), 8 * sum_ml.size()));
    EXPECT_EQ(0, std::memcmp(scores.data(), d_scores.Download().data(), 4 * scores.size()));
    f.snapshot = true;  // phase 1 alone must not also snapshot
    EXPECT_EQ(cudaErrorInvalidValue, kernels::ResidualBoundary(f, nullptr));
  }
  bank = FromBf16(d_bank.Download());  // slot nb now holds x
  inv_rms = d_inv.Download();
  CheckSummaries(d_sum_h.Download(), d_sum_ml.Download(), bank, inv_rms, u, T, d, nb, Q, eps);

  std::vector<float> x2(d), h(d), y(d), alpha(W);
  std::vector<const float*> src(W);
  for (int q = 0; q < Q; ++q) {
    SCOPED_TRACE(testing::Message() << "later mix " << q);
    // The first later mix reads an empty prefix (delta alone), the others prefix + delta. The
    // last one snapshots, as the next block's first mix does when a forked phase 1 scored it:
    // x then lands in slot `slots` instead of the prefix.
    const bool empty = q == 0, snap = q == Q - 1;
    const auto prefix2 = RandomBf16Values(size_t(T) * d, seed + 10 + q, 2.0f);
    const auto delta2 = RandomBf16Values(size_t(T) * d, seed + 50 + q, 1.0f);
    d_delta.Upload(ToBf16(delta2));
    kernels::ResidualBoundaryArgs b = a;
    b.delta = reinterpret_cast<bf16*>(d_delta.get());
    b.prefix_empty = empty;
    b.bank_count = slots;
    b.snapshot = snap;
    b.u = d_u.get() + size_t(1 + q) * d;
    b.summary_queries = 0;
    std::vector<float> got[2], weights[2], slot_x[2], slot_inv[2];
    for (int phase2 = 0; phase2 < 2; ++phase2) {  // one-phase, then phase 2
      d_prefix.Upload(ToBf16(prefix2));
      d_out.Poison();
      d_mix.Poison();
      b.summary_index = phase2 ? q : -1;
      ASSERT_CUDA(kernels::ResidualBoundary(b, nullptr));
      got[phase2] = FromBf16(d_out.Download());
      weights[phase2] = d_mix.Download();
      const auto all = FromBf16(d_bank.Download());
      slot_x[phase2].assign(all.begin() + size_t(slots) * T * d, all.end());
      const auto inv = d_inv.Download();
      slot_inv[phase2].assign(inv.begin() + size_t(slots) * T, inv.end());
      if (snap) {  // the next run must write the slot again
        ASSERT_CUDA(cudaMemset(d_bank.get() + size_t(slots) * T * d, 0xFF, 2ull * T * d));
        ASSERT_CUDA(cudaMemset(d_inv.get() + size_t(slots) * T, 0xFF, 4ull * T));
      }
    }
    const auto new_prefix = snap ? slot_x[1] : FromBf16(d_prefix.Download());
    if (snap) {  // the same slot; its inverse RMS bit for bit where both take the same form
      EXPECT_EQ(0, std::memcmp(slot_x[0].data(), slot_x[1].data(), 4 * slot_x[0].size()));
      for (int t = 0; t < T; ++t) {
        if (T < 256) {
          ASSERT_EQ(slot_inv[0][t], slot_inv[1][t]) << "row " << t;
        } else {
          ASSERT_NEAR(slot_inv[0][t], slot_inv[1][t], 1e-6 * slot_inv[0][t]) << "row " << t;
        }
      }
    }
    for (int t = 0; t < T; ++t) {
      for (int c = 0; c < d; ++c) {
        const size_t i = size_t(t) * d + c;
        x2[c] = empty ? delta2[i] : RoundBf16(prefix2[i] + delta2[i]);
      }
      for (int j = 0; j < slots; ++j) src[j] = &bank[(size_t(j) * T + t) * d];
      src[slots] = x2.data();
      AttnResMix(src.data(), W, &u[size_t(1 + q) * d], d, eps, h.data(), alpha.data());
      RmsNorm(h.data(), gamma.data(), 1, d, eps, y.data());
      const float* two = &got[1][size_t(t) * d];
      ASSERT_LT(RelL2(two, y.data(), d), 1e-2) << "row " << t;
      ASSERT_GT(Cosine(two, y.data(), d), 0.9999) << "row " << t;
      ASSERT_LT(RelL2(two, &got[0][size_t(t) * d], d), 2e-3) << "row " << t;
      ASSERT_EQ(0, std::memcmp(&new_prefix[size_t(t) * d], x2.data(), 4 * d)) << "row " << t;
      if (snap) {
        double ss = 0;
        for (int c = 0; c < d; ++c) ss += double(x2[c]) * x2[c];
        ASSERT_NEAR(slot_inv[1][t], 1.0 / std::sqrt(ss / d + eps), 1e-5 / std::sqrt(ss / d + eps))
            << "row " << t;
      }
      for (int j = 0; j < W; ++j) {
        const float w = weights[1][size_t(t) * W + j];
        EXPECT_NEAR(w, alpha[j], 2e-4) << "row " << t << " j " << j;
        EXPECT_NEAR(w, weights[0][size_t(t) * W + j], 2e-6) << "row " << t << " j " << j;
      }
    }
  }
}

TEST(ResidualBoundaryKernel, TwoPhaseMatchesOnePhase) {
  ATTNRES_REQUIRE_GPU();
  RunTwoPhaseCase(1, 4096, 3, 7, 201);     // decode at 8B width: one query per block
  RunTwoPhaseCase(7, 2048, 0, 3, 202);     // the embedding snapshot: a lone source
  RunTwoPhaseCase(19, 384, 9, 5, 203);     // two online-softmax groups: a query at a time
  RunTwoPhaseCase(3, 8192, 7, 4, 204);     // d > 4096: two chunks per thread, groups of 4
  RunTwoPhaseCase(2, 8192, 3, 11, 205);    // ... one group: the batched phase 1
  // Phase-1 blocks take the resident slots the rows' own blocks leave (H200: 132 SMs, 16 warps
  // of these blocks per SM).
  RunTwoPhaseCase(64, 4096, 4, 7, 210);    // one spare slot per row: every query in one block
  RunTwoPhaseCase(64, 2048, 4, 7, 211);    // three: queries 3 + 3 + 1
  RunTwoPhaseCase(200, 1024, 2, 7, 206);   // many rows: several queries per phase-1 block
  RunTwoPhaseCase(150, 1024, 12, 4, 207);  // ... with two groups, reloaded per query
  RunTwoPhaseCase(300, 640, 5, 19, 208);   // past the many-row threshold: 19 queries, 3 rounds
  RunTwoPhaseCase(1030, 1024, 8, 3, 209);  // past the very-many-row threshold, a full group
  // Prefill (from 256 rows, up to 8 queries): phase 1 in the staged snapshot boundary, phase 2
  // in the many-row register forms.
  RunTwoPhaseCase(1031, 4096, 7, 7, 214);  // the 8B shape's last block
  RunTwoPhaseCase(257, 2048, 4, 3, 215);   // the 1B shape's fifth block, 2 chunks per thread
  RunTwoPhaseCase(513, 384, 8, 8, 216);    // a full bank, 8 queries: two scoring rounds
  RunTwoPhaseCase(300, 1000, 0, 2, 217);   // the embedding snapshot: x alone
  RunTwoPhaseCase(260, 72, 3, 5, 218);     // a row narrower than a warp's chunks
  RunTwoPhaseCase(5, 1000, 1, 6, 212);     // bank sizes no case above has: one slot ...
  RunTwoPhaseCase(6, 1000, 6, 2, 213);     // ... and six
}

// Phase 1 fits beside a snapshot boundary while every later mix gets a block of its own: one
// row always leaves room for a few; a row per SM of one-block-per-SM rows (d = 4096: 512
// threads at the register cap) leaves none; more rows never fit better.
TEST(ResidualBoundaryKernel, Phase1FitsBeside) {
  ATTNRES_REQUIRE_GPU();
  int sms = 0;
  ASSERT_CUDA(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0));
  EXPECT_TRUE(kernels::Phase1FitsBeside(1, 4096, 7));
  EXPECT_TRUE(kernels::Phase1FitsBeside(1, 8192, 3));
  EXPECT_FALSE(kernels::Phase1FitsBeside(sms, 4096, 1));
  for (int d : {512, 2048, 4096, 8192}) {
    bool fit = true;
    for (int rows = 1; rows <= 2 * sms; ++rows) {
      const bool now = kernels::Phase1FitsBeside(rows, d, 3);
      EXPECT_TRUE(fit || !now) << "d=" << d << " rows=" << rows;
      fit = now;
    }
  }
  EXPECT_FALSE(kernels::Phase1FitsBeside(0, 4096, 3));
  EXPECT_FALSE(kernels::Phase1FitsBeside(1, 4100, 3));
}

TEST(ResidualBoundaryKernel, ScaleProbeHasNoSqrtD) {
  ATTNRES_REQUIRE_GPU();
  // ATTNRES.md §6 at d = 8: one-hot sources have r = sqrt(8); u0 = 2/sqrt(2) gives scores 4, 0.
  const int d = 8;
  std::vector<float> bank(d, 0.0f), prefix(d, 0.0f), u(d, 0.0f), gamma(d, 1.0f);
  bank[0] = 1.0f;
  prefix[1] = 1.0f;
  u[0] = std::sqrt(2.0f);  // r * u0 = sqrt(8) * sqrt(2) = 4
  DeviceArray<uint16_t> d_bank(d), d_prefix(d), d_out(d);
  DeviceArray<float> d_inv(1), d_u(d), d_gamma(d), d_mix(2);
  DeviceArray<int32_t> d_record(1);
  d_bank.Upload(ToBf16(bank));
  d_prefix.Upload(ToBf16(prefix));
  d_inv.Upload({std::sqrt(8.0f)});
  d_u.Upload(u);
  d_gamma.Upload(gamma);
  d_record.Upload({0});
  kernels::ResidualBoundaryArgs a;
  a.num_rows = a.T = 1;
  a.d = d;
  a.prefix = reinterpret_cast<bf16*>(d_prefix.get());
  a.bank = reinterpret_cast<bf16*>(d_bank.get());
  a.bank_inv_rms = d_inv.get();
  a.bank_count = 1;
  a.u = d_u.get();
  a.gamma = d_gamma.get();
  a.eps = 1e-12f;
  a.out = reinterpret_cast<bf16*>(d_out.get());
  a.mix_weights = d_mix.get();
  a.record_row = d_record.get();
  a.mix_stride = 2;
  ASSERT_CUDA(kernels::ResidualBoundary(a, nullptr));
  const auto alpha = d_mix.Download();
  EXPECT_NEAR(alpha[0], 0.9820138, 1e-5);
  EXPECT_NEAR(alpha[1], 0.0179862, 1e-5);
}

TEST(ElementwiseKernels, SwiGluAndEmbeddingGather) {
  ATTNRES_REQUIRE_GPU();
  for (int T : {1, 7, 19, 733}) {
    for (int f : {160, 1024, 8192}) {
      auto gu = RandomBf16Values(size_t(T) * 2 * f, T * 31 + f, 4.0f);
      DeviceArray<uint16_t> d_gu(gu.size()), d_out(size_t(T) * f);
      d_gu.Upload(ToBf16(gu));
      ASSERT_CUDA(kernels::SwiGlu(reinterpret_cast<bf16*>(d_gu.get()), T, f,
                                  reinterpret_cast<bf16*>(d_out.get()), nullptr));
      const auto out = FromBf16(d_out.Download());
      std::vector<float> g(f), u(f), y(f);
      for (int t = 0; t < T; ++t) {
        std::copy_n(&gu[size_t(t) * 2 * f], f, g.begin());
        std::copy_n(&gu[size_t(t) * 2 * f + f], f, u.begin());
        SwiGlu(g.data(), u.data(), f, y.data());
        ASSERT_LT(RelL2(&out[size_t(t) * f], y.data(), f), 5e-3) << "T=" << T << " f=" << f;
      }
    }
    const int V = 300, d = 384;
    auto table = RandomBf16Values(size_t(V) * d, T, 1.0f);
    std::vector<int32_t> ids(T);
    for (int t = 0; t < T; ++t) ids[t] = (t * 7919 + 13) % V;
    DeviceArray<uint16_t> d_table(table.size()), d_out(size_t(T) * d);
    DeviceArray<int32_t> d_ids(T);
    d_table.Upload(ToBf16(table));
    d_ids.Upload(ids);
    ASSERT_CUDA(kernels::EmbeddingGather(d_ids.get(), reinterpret_cast<bf16*>(d_table.get()), T, d,
                                         reinterpret_cast<bf16*>(d_out.get()), nullptr));
    const auto out = FromBf16(d_out.Download());
    for (int t = 0; t < T; ++t) {
      ASSERT_EQ(0, std::memcmp(&out[size_t(t) * d], &table[size_t(ids[t]) * d], 4 * d));
    }
  }
}

}  // namespace
}  // namespace attnres
