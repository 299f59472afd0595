// The small-M decode GEMMs against a double-precision twin of MatMulWt over odd sizes, bf16 and
// fp32 outputs: kernels::Gemv (M <= 8) and kernels::SkinnyGemm (9-64 rows, K split over clusters
// of 1-8 blocks); their refusal of unsupported arguments; CUDA-graph replays; Gemm::Run's
// dispatch (Gemv at M = 1, SkinnyGemm at 64, cuBLASLt at 65) against the same twin, and above
// Gemv's static weight limit the choice Gemm::Tune timed; and the fused
// gate/up + SwiGLU forms (GemvSwiGlu, SkinnyGemmSwiGlu, Gemm::RunSwiGlu) against the twin and, bit
// for bit, against the plain kernel followed by the SwiGLU kernel; and the qkv projection with
// RoPE and the K/V write in its epilogue (GemvQkvRope), bit for bit against Gemv + RopeKvWrite.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "kernels/ops.h"
#include "models/cuda/gemm.h"
#include "tests/gpu/gemm_twin.h"
#include "tests/gpu/gpu_test_util.h"

namespace attnres {
namespace {

using gpu_testing::DeviceArray;
using gpu_testing::FromBf16;
using gpu_testing::GemvTwin;
using gpu_testing::MatchesTwin;
using gpu_testing::RandomBf16Values;
using gpu_testing::RelL2;
using gpu_testing::ToBf16;
using gpu_testing::Twin;
using kernels::bf16;

// Runs f(out) into a poisoned [M, N] buffer of the chosen dtype and returns it as floats.
template <typename F>
std::vector<float> RunInto(int M, int N, bool out_f32, const F& f) {
  if (out_f32) {
    DeviceArray<float> out(size_t(M) * N);
    f(static_cast<void*>(out.get()));
    EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
    return out.Download();
  }
  DeviceArray<uint16_t> out(size_t(M) * N);
  f(static_cast<void*>(out.get()));
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  return FromBf16(out.Download());
}

const bf16* AsBf16(const DeviceArray<uint16_t>& a) {
  return reinterpret_cast<const bf16*>(a.get());
}

TEST(GemvKernel, MatchesDoubleTwinOverOddSizes) {
  ATTNRES_REQUIRE_GPU();
  uint32_t seed = 100;
  for (int K : {8, 24, 1000, 3000, 4096, 14336}) {  // 1000, 3000: full K steps, then partial ones
    // 6151: 385 tiles, the 4-slice form on a 132-SM H200; the others take the 8-slice form.
    for (int N : {1, 7, 19, 733, 4096 + 3, 6144 + 7}) {
      if (N > 5000 && K > 4096) continue;
      const auto w = RandomBf16Values(size_t(N) * K, ++seed, 1.0f);
      DeviceArray<uint16_t> d_w(w.size());
      d_w.Upload(ToBf16(w));
      for (int M : {1, 2, 3, 5, 8}) {
        SCOPED_TRACE(testing::Message() << "M=" << M << " N=" << N << " K=" << K);
        const auto x = RandomBf16Values(size_t(M) * K, ++seed, 2.0f);
        DeviceArray<uint16_t> d_x(x.size());
        d_x.Upload(ToBf16(x));
        const Twin twin = GemvTwin(x, w, M, N, K);
        for (bool out_f32 : {false, true}) {
          const auto got = RunInto(M, N, out_f32, [&](void* out) {
            ASSERT_CUDA(kernels::Gemv(reinterpret_cast<const bf16*>(d_x.get()),
                                      reinterpret_cast<const bf16*>(d_w.get()), out, M, N, K,
                                      out_f32, nullptr));
          });
          ASSERT_TRUE(MatchesTwin(got, twin, !out_f32)) << (out_f32 ? "fp32" : "bf16") << " out";
        }
      }
    }
  }
}

// Gemv and SkinnyGemm share a signature and preconditions (up to their row limits).
using SmallMGemm = decltype(&kernels::Gemv);

// Refuses K % 8 != 0, M above max_rows, misaligned x or w, and N < 0 without launching; M = 0
// and N = 0 are no-ops.
void ExpectRefusalsWithoutLaunching(SmallMGemm gemm, int max_rows) {
  const int m = max_rows;
  DeviceArray<uint16_t> x((max_rows + 1) * 16), w(4 * 16);
  DeviceArray<float> out((max_rows + 1) * 4);
  const bf16* xp = reinterpret_cast<const bf16*>(x.get());
  const bf16* wp = reinterpret_cast<const bf16*>(w.get());
  EXPECT_EQ(gemm(xp, wp, out.get(), m, 4, 12, true, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(gemm(xp, wp, out.get(), m + 1, 4, 16, true, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(gemm(xp + 1, wp, out.get(), m, 4, 8, true, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(gemm(xp, wp + 4, out.get(), m, 4, 8, true, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(gemm(xp, wp, out.get(), m, -1, 8, true, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(gemm(xp, wp, out.get(), 0, 4, 16, true, nullptr), cudaSuccess);
  EXPECT_EQ(gemm(xp, wp, out.get(), m, 0, 16, true, nullptr), cudaSuccess);
  ASSERT_CUDA(cudaDeviceSynchronize());
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);  // nothing sticky left behind
  for (float v : out.Download()) ASSERT_TRUE(std::isnan(v)) << "an output was written";
}

// Eager twice and replayed from a CUDA graph: the same bits every time, and the twin's values.
void ExpectEagerAndGraphBitwise(SmallMGemm gemm, int M, int N, int K) {
  const auto x = RandomBf16Values(size_t(M) * K, 7, 2.0f);
  const auto w = RandomBf16Values(size_t(N) * K, 8, 1.0f);
  DeviceArray<uint16_t> d_x(x.size()), d_w(w.size());
  d_x.Upload(ToBf16(x));
  d_w.Upload(ToBf16(w));
  DeviceArray<float> eager(size_t(M) * N), again(size_t(M) * N), graph(size_t(M) * N);
  const bf16* xp = reinterpret_cast<const bf16*>(d_x.get());
  const bf16* wp = reinterpret_cast<const bf16*>(d_w.get());
  cudaStream_t stream;
  ASSERT_CUDA(cudaStreamCreate(&stream));
  ASSERT_CUDA(gemm(xp, wp, eager.get(), M, N, K, true, stream));
  ASSERT_CUDA(gemm(xp, wp, again.get(), M, N, K, true, stream));
  cudaGraph_t g;
  cudaGraphExec_t exec;
  ASSERT_CUDA(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
  ASSERT_CUDA(gemm(xp, wp, graph.get(), M, N, K, true, stream));
  ASSERT_CUDA(cudaStreamEndCapture(stream, &g));
  ASSERT_CUDA(cudaGraphInstantiate(&exec, g, 0));
  ASSERT_CUDA(cudaGraphLaunch(exec, stream));
  ASSERT_CUDA(cudaStreamSynchronize(stream));
  const auto a = eager.Download(), b = again.Download(), c = graph.Download();
  EXPECT_EQ(std::memcmp(a.data(), b.data(), 4 * a.size()), 0);
  EXPECT_EQ(std::memcmp(a.data(), c.data(), 4 * a.size()), 0);
  EXPECT_TRUE(MatchesTwin(c, GemvTwin(x, w, M, N, K), false));
  cudaGraphExecDestroy(exec);
  cudaGraphDestroy(g);
  cudaStreamDestroy(stream);
}

TEST(GemvKernel, RefusesUnsupportedArgumentsWithoutLaunching) {
  ATTNRES_REQUIRE_GPU();
  ExpectRefusalsWithoutLaunching(kernels::Gemv, kernels::kGemvMaxRows);
}

TEST(GemvKernel, IsDeterministicAndReplaysBitwiseInACudaGraph) {
  ATTNRES_REQUIRE_GPU();
  ExpectEagerAndGraphBitwise(kernels::Gemv, 3, 733, 4096);
}

// A Gemm made with ATTNRES_SKINNY_GEMM set to `skinny` (read at Create).
std::unique_ptr<cuda::Gemm> MakeGemm(bool skinny) {
  setenv("ATTNRES_SKINNY_GEMM", skinny ? "1" : "0", 1);
  auto gemm = cuda::Gemm::Create();
  unsetenv("ATTNRES_SKINNY_GEMM");
  EXPECT_TRUE(gemm.ok()) << gemm.status();
  return gemm.ok() ? std::move(*gemm) : nullptr;
}

// Runs body(gemm, skinny) for a Gemm with the skinny GEMM off (the default), then on.
template <typename F>
void ForBothSkinnySettings(const F& body) {
  for (bool skinny : {false, true}) {
    SCOPED_TRACE(skinny ? "ATTNRES_SKINNY_GEMM=1" : "default");
    const auto gemm = MakeGemm(skinny);
    ASSERT_NE(gemm, nullptr);
    body(gemm.get(), skinny);
  }
}

// Gemm::Run takes Gemv at M = 1, SkinnyGemm at M = 64 where enabled (cuBLASLt by default) and
// cuBLASLt at M = 65; all must agree with the twin (as must RunCublasLt at each M), and each bit
// for bit with the kernel it dispatched to.
TEST(GemmDispatch, SmallAndLargeMAgreeWithDoubleTwin) {
  ATTNRES_REQUIRE_GPU();
  ForBothSkinnySettings([&](cuda::Gemm* gemm, bool skinny) {
    const int N = 733, K = 4096;
    const auto w = RandomBf16Values(size_t(N) * K, 21, 1.0f);
    DeviceArray<uint16_t> d_w(w.size());
    d_w.Upload(ToBf16(w));
    const bf16* wp = reinterpret_cast<const bf16*>(d_w.get());
    for (int M : {1, 64, 65}) {
      const auto x = RandomBf16Values(size_t(M) * K, 22 + M, 2.0f);
      DeviceArray<uint16_t> d_x(x.size());
      d_x.Upload(ToBf16(x));
      const bf16* xp = reinterpret_cast<const bf16*>(d_x.get());
      const Twin twin = GemvTwin(x, w, M, N, K);
      for (bool out_f32 : {false, true}) {
        SCOPED_TRACE(testing::Message() << "M=" << M << (out_f32 ? " fp32" : " bf16") << " out");
        const auto got = RunInto(M, N, out_f32, [&](void* out) {
          const absl::Status st = gemm->Run(xp, wp, out, M, N, K, out_f32, nullptr);
          ASSERT_TRUE(st.ok()) << st;
        });
        EXPECT_TRUE(MatchesTwin(got, twin, !out_f32));
        const auto lt = RunInto(M, N, out_f32, [&](void* out) {
          const absl::Status st = gemm->RunCublasLt(xp, wp, out, M, N, K, out_f32, nullptr);
          ASSERT_TRUE(st.ok()) << st;
        });
        EXPECT_TRUE(MatchesTwin(lt, twin, !out_f32));
        if (M == 65 || (M == 64 && !skinny)) {
          EXPECT_EQ(got, lt);  // Run is cuBLASLt here
        } else {
          const auto direct = RunInto(M, N, out_f32, [&](void* out) {
            ASSERT_CUDA(M == 1 ? kernels::Gemv(xp, wp, out, M, N, K, out_f32, nullptr)
                               : kernels::SkinnyGemm(xp, wp, out, M, N, K, out_f32, nullptr));
          });
          EXPECT_EQ(got, direct);
        }
      }
    }
  });
}

// Gemm::Tune on a weight above Gemv's static limit (2 * 16411 * 4096 bytes = 134 MB): it times
// both paths at every M, caches the result, and Run and TakesGemv then follow its choice at each
// M, bit for bit against the path it names (which one wins depends on the card). Shapes within
// the limit are not timed, and outputs it did not time keep the static choice (cuBLASLt).
TEST(GemmDispatch, RunFollowsTuneAboveTheStaticLimit) {
  ATTNRES_REQUIRE_GPU();
  const auto gemm = MakeGemm(false);
  ASSERT_NE(gemm, nullptr);
  const int N = 16411, K = 4096;
  DeviceArray<uint16_t> d_w(size_t(N) * K);
  bf16* wp = reinterpret_cast<bf16*>(d_w.get());
  ASSERT_CUDA(kernels::FillUniformBf16(wp, size_t(N) * K, 31, 0.0f, 0.02f, nullptr));
  DeviceArray<uint16_t> d_small(size_t(733) * K);
  EXPECT_TRUE(gemm->TakesGemv(AsBf16(d_small), AsBf16(d_small), 1, 733, K));
  auto none = gemm->Tune(AsBf16(d_small), 733, K, false, nullptr);
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_EQ(*none, nullptr);

  auto tuned = gemm->Tune(wp, N, K, false, nullptr);
  ASSERT_TRUE(tuned.ok()) << tuned.status();
  ASSERT_NE(*tuned, nullptr);
  const cuda::Gemm::Tuning& t = **tuned;
  ASSERT_EQ(t.gemv_ms.size(), size_t(kernels::kGemvMaxRows));
  ASSERT_EQ(t.cublaslt_ms.size(), size_t(kernels::kGemvMaxRows));
  for (int m = 0; m < kernels::kGemvMaxRows; ++m) {
    EXPECT_GT(t.gemv_ms[m], 0.0);
    EXPECT_GT(t.cublaslt_ms[m], 0.0);
  }
  std::fprintf(stderr, "tuned %s\n", t.Describe().c_str());
  auto again = gemm->Tune(wp, N, K, false, nullptr);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, &t);  // timed once

  for (int M : {1, 3, kernels::kGemvMaxRows}) {
    const auto x = RandomBf16Values(size_t(M) * K, 40 + M, 2.0f);
    DeviceArray<uint16_t> d_x(x.size());
    d_x.Upload(ToBf16(x));
    const bf16* xp = AsBf16(d_x);
    EXPECT_EQ(gemm->TakesGemv(xp, wp, M, N, K), t.GemvAt(M)) << "M=" << M;
    for (bool out_f32 : {false, true}) {
      SCOPED_TRACE(testing::Message() << "M=" << M << (out_f32 ? " fp32" : " bf16") << " out");
      const auto got = RunInto(M, N, out_f32, [&](void* out) {
        const absl::Status st = gemm->Run(xp, wp, out, M, N, K, out_f32, nullptr);
        ASSERT_TRUE(st.ok()) << st;
      });
      const bool gemv = !out_f32 && t.GemvAt(M);  // fp32 out was not tuned
      const auto want = RunInto(M, N, out_f32, [&](void* out) {
        if (gemv) {
          ASSERT_CUDA(kernels::Gemv(xp, wp, out, M, N, K, out_f32, nullptr));
        } else {
          const absl::Status st = gemm->RunCublasLt(xp, wp, out, M, N, K, out_f32, nullptr);
          ASSERT_TRUE(st.ok()) << st;
        }
      });
      EXPECT_EQ(got, want) << (gemv ? "Gemv" : "cuBLASLt") << " expected";
    }
  }
}

// Tune times in the caller's scratch when it is large enough (x zeroed, then every output row
// written: the whole scratch ends zero, as x is zeros) and leaves a smaller one untouched,
// timing in memory of its own instead; both tune.
TEST(GemmDispatch, TuneTimesInTheCallersScratchWhenItFits) {
  ATTNRES_REQUIRE_GPU();
  const int N = 16411, K = 4096;
  DeviceArray<uint16_t> d_w(size_t(N) * K);
  bf16* wp = reinterpret_cast<bf16*>(d_w.get());
  ASSERT_CUDA(kernels::FillUniformBf16(wp, size_t(N) * K, 32, 0.0f, 0.02f, nullptr));
  const size_t bytes = cuda::Gemm::TuneScratchBytes(N, K, true);
  EXPECT_GE(bytes, size_t(kernels::kGemvMaxRows) * (2 * K + 4 * N));
  for (const bool fits : {false, true}) {
    SCOPED_TRACE(fits ? "scratch fits" : "scratch 16 bytes short");
    const auto gemm = MakeGemm(false);
    ASSERT_NE(gemm, nullptr);
    DeviceArray<uint8_t> scratch(fits ? bytes : bytes - 16);  // poisoned: 0xFF
    auto tuned = gemm->Tune(wp, N, K, true, nullptr, scratch.get(), fits ? bytes : bytes - 16);
    ASSERT_TRUE(tuned.ok()) << tuned.status();
    ASSERT_NE(*tuned, nullptr);
    ASSERT_CUDA(cudaDeviceSynchronize());
    const std::vector<uint8_t> after = scratch.Download();
    const uint8_t want = fits ? 0x00 : 0xFF;
    const size_t wrong =
        std::count_if(after.begin(), after.end(), [&](uint8_t b) { return b != want; });
    EXPECT_EQ(wrong, 0u) << "of " << after.size() << " scratch bytes";
  }
}

// Gemv is taken only where it took at most kTuneMargin of cuBLASLt's time.
TEST(GemmDispatch, TuningTakesGemvOnlyBeyondTheMargin) {
  cuda::Gemm::Tuning t;
  t.N = 128256, t.K = 4096, t.out_f32 = true;
  t.cublaslt_ms = {0.362, 0.362, 0.362, 0.362};
  t.gemv_ms = {0.328, 0.3511, 0.3512, 0.40};  // 0.97 * 0.362 = 0.35114
  EXPECT_TRUE(t.GemvAt(1));
  EXPECT_TRUE(t.GemvAt(2));
  EXPECT_FALSE(t.GemvAt(3));
  EXPECT_FALSE(t.GemvAt(4));
  EXPECT_FALSE(t.GemvAt(0));
  EXPECT_FALSE(t.GemvAt(5));
  EXPECT_EQ(t.Describe(),
            "[128256, 4096] (1051 MB, fp32 out): Gemv at M = {1,2}, cuBLASLt at {3,4} (M = 1: "
            "0.328 against 0.362 ms)");
}

// act[m, i] = silu(g) * u from the twin's gate (row i) and up (row f + i) sums of x . w_gate_up^T,
// within the error that the fp32 sums and three bf16 roundings (g, u, the output) allow.
testing::AssertionResult MatchesSwiGluTwin(const std::vector<float>& got, const Twin& t, int M,
                                           int f) {
  for (int m = 0; m < M; ++m) {
    for (int i = 0; i < f; ++i) {
      const size_t gi = size_t(m) * 2 * f + i, ui = gi + f;
      const double g = t.ref[gi], u = t.ref[ui];
      const double sig = 1.0 / (1.0 + std::exp(-g)), silu = g * sig;
      const double dg = 1e-4 * t.mag[gi] + std::ldexp(std::fabs(g), -8);
      const double du = 1e-4 * t.mag[ui] + std::ldexp(std::fabs(u), -8);
      const double want = silu * u;
      // |d silu / dg| = |sig (1 + g (1 - sig))| <= 1.1
      const double tol = 1.1 * dg * (std::fabs(u) + du) + std::fabs(silu) * du +
                         std::ldexp(std::fabs(want), -8) + 1e-6;
      const float v = got[size_t(m) * f + i];
      if (!(std::fabs(v - want) <= tol)) {
        return testing::AssertionFailure() << "m=" << m << " i=" << i << ": got " << v << ", want "
                                           << want << " (tolerance " << tol << ")";
      }
    }
  }
  return testing::AssertionSuccess();
}

// One case of a fused gate/up + SwiGLU kernel (GemvSwiGlu, SkinnyGemmSwiGlu) over w [2f, K] (d_w
// on the device) and random x [M, K]: against the twin, and where the SwiGLU kernel takes f (f % 8
// == 0) bit for bit against the plain kernel into [M, 2f] bf16 followed by it.
using SmallMSwiGlu = decltype(&kernels::GemvSwiGlu);
void ExpectSwiGluForm(SmallMSwiGlu fused, SmallMGemm plain, const std::vector<float>& w,
                      const DeviceArray<uint16_t>& d_w, int M, int f, int K, uint32_t seed) {
  SCOPED_TRACE(testing::Message() << "M=" << M << " f=" << f << " K=" << K);
  const auto x = RandomBf16Values(size_t(M) * K, seed, 2.0f);
  DeviceArray<uint16_t> d_x(x.size()), d_act(size_t(M) * f);
  d_x.Upload(ToBf16(x));
  ASSERT_CUDA(fused(AsBf16(d_x), AsBf16(d_w), reinterpret_cast<bf16*>(d_act.get()), M, f, K,
                    nullptr));
  ASSERT_CUDA(cudaDeviceSynchronize());
  const auto act = d_act.Download();
  ASSERT_TRUE(MatchesSwiGluTwin(FromBf16(act), GemvTwin(x, w, M, 2 * f, K), M, f));
  if (f % 8 != 0) return;  // the SwiGLU kernel's precondition
  DeviceArray<uint16_t> d_gu(size_t(M) * 2 * f), d_ref(size_t(M) * f);
  ASSERT_CUDA(plain(AsBf16(d_x), AsBf16(d_w), d_gu.get(), M, 2 * f, K, false, nullptr));
  ASSERT_CUDA(kernels::SwiGlu(AsBf16(d_gu), M, f, reinterpret_cast<bf16*>(d_ref.get()), nullptr));
  ASSERT_CUDA(cudaDeviceSynchronize());
  EXPECT_EQ(act, d_ref.Download());
}

TEST(GemvKernel, SwiGluFormMatchesTwinAndTheUnfusedKernelsBitwise) {
  ATTNRES_REQUIRE_GPU();
  uint32_t seed = 300;
  for (int K : {8, 1000, 4096}) {
    // 2403: 301 tiles of 8 columns, the 4-slice form on a 132-SM H200; 8192: the 1B MLP.
    for (int f : {1, 7, 19, 733, 2403, 8192}) {
      const auto w = RandomBf16Values(size_t(2) * f * K, ++seed, 1.0f);
      DeviceArray<uint16_t> d_w(w.size());
      d_w.Upload(ToBf16(w));
      for (int M : {1, 3, 8}) {
        ExpectSwiGluForm(kernels::GemvSwiGlu, kernels::Gemv, w, d_w, M, f, K, ++seed);
      }
    }
  }
  DeviceArray<uint16_t> x(16), w(32), out(8);
  const bf16* xp = reinterpret_cast<const bf16*>(x.get());
  bf16* op = reinterpret_cast<bf16*>(out.get());
  EXPECT_EQ(kernels::GemvSwiGlu(xp, reinterpret_cast<const bf16*>(w.get()), op, 9, 1, 16, nullptr),
            cudaErrorInvalidValue);
  EXPECT_EQ(kernels::GemvSwiGlu(xp, reinterpret_cast<const bf16*>(w.get()), op, 1, 1, 12, nullptr),
            cudaErrorInvalidValue);
}

// What one qkv projection + RoPE run leaves on the device: q and both caches (bf16 bits).
struct QkvRopeResult {
  std::vector<uint16_t> q, k_cache, v_cache;
};

// The qkv projection of M decode rows (row m its own sequence, at a position whose page is
// shuffled into a shared pool) and RopeKvWrite's work on it: fused (GemvQkvRope) or as Gemv into
// a qkv buffer followed by RopeKvWrite. Both runs start from the same caches.
QkvRopeResult RunQkvRope(bool fused, int H, int KV, int hd, int K, int M, int ps, uint32_t seed) {
  const int width = (H + 2 * KV) * hd, half = hd / 2, kvd = KV * hd;
  const auto x = RandomBf16Values(size_t(M) * K, seed, 1.0f);
  const auto w = RandomBf16Values(size_t(width) * K, seed + 1, 1.0f);
  std::vector<float2> table(size_t(M) * half);
  std::mt19937 rng(seed + 2);
  std::uniform_real_distribution<float> angle(-3.1f, 3.1f);
  for (float2& cs : table) {
    const float a = angle(rng);
    cs = make_float2(std::cos(a), std::sin(a));
  }
  std::vector<int32_t> positions(M), row_seq(M), indptr = {0}, pages;
  for (int m = 0; m < M; ++m) {
    positions[m] = (m * 37 + 5) % 200 + m;
    row_seq[m] = m;
    for (int p = 0; p <= positions[m] / ps; ++p) pages.push_back(int32_t(pages.size()));
    indptr.push_back(int32_t(pages.size()));
  }
  std::shuffle(pages.begin(), pages.end(), std::mt19937(seed + 3));
  const size_t cache_elems = pages.size() * ps * kvd;
  DeviceArray<uint16_t> d_x(x.size()), d_w(w.size()), d_qkv(size_t(M) * width),
      d_q(size_t(M) * H * hd), d_k(cache_elems), d_v(cache_elems);
  d_x.Upload(ToBf16(x));
  d_w.Upload(ToBf16(w));
  d_k.Upload(ToBf16(RandomBf16Values(cache_elems, seed + 4, 1.0f)));
  d_v.Upload(ToBf16(RandomBf16Values(cache_elems, seed + 5, 1.0f)));
  DeviceArray<float2> d_table(table.size());
  d_table.Upload(table);
  DeviceArray<int32_t> d_pos(M), d_seq(M), d_indptr(indptr.size()), d_pages(pages.size());
  d_pos.Upload(positions);
  d_seq.Upload(row_seq);
  d_indptr.Upload(indptr);
  d_pages.Upload(pages);
  kernels::RopeKvWriteArgs a;
  a.rope.qkv = reinterpret_cast<const bf16*>(d_qkv.get());
  a.rope.table = d_table.get();
  a.positions = d_pos.get();
  a.row_seq = d_seq.get();
  a.kv_page_indptr = d_indptr.get();
  a.kv_page_indices = d_pages.get();
  a.T = M;
  a.H = H;
  a.KV = KV;
  a.hd = hd;
  a.page_size = ps;
  a.q_out = reinterpret_cast<bf16*>(d_q.get());
  a.k_cache = reinterpret_cast<bf16*>(d_k.get());
  a.v_cache = reinterpret_cast<bf16*>(d_v.get());
  if (fused) {
    EXPECT_EQ(kernels::GemvQkvRope(AsBf16(d_x), AsBf16(d_w), K, a, nullptr), cudaSuccess);
  } else {
    EXPECT_EQ(kernels::Gemv(AsBf16(d_x), AsBf16(d_w), d_qkv.get(), M, width, K, false, nullptr),
              cudaSuccess);
    EXPECT_EQ(kernels::RopeKvWrite(a, nullptr), cudaSuccess);
  }
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  return {d_q.Download(), d_k.Download(), d_v.Download()};
}

// GemvQkvRope against Gemv followed by RopeKvWrite on identical inputs: q and both caches the same
// bits (each of the two is checked against its own twin elsewhere). Head shapes of the tiny,
// Llama-3.2-1B and Llama-3.1-8B models and hd 256 (the 8B's 384 tiles take the 4-slice form on a
// 132-SM card); 1, 3 and 8 rows; page sizes 3 and 16. Then its refusals.
TEST(GemvKernel, RopeFormMatchesGemvThenRopeKvWriteBitwise) {
  ATTNRES_REQUIRE_GPU();
  struct Shape {
    int H, KV, hd, K;
  };
  uint32_t seed = 900;
  for (const Shape& sh : {Shape{4, 2, 16, 24}, Shape{6, 2, 64, 200}, Shape{32, 8, 64, 2048},
                          Shape{32, 8, 128, 4096}, Shape{16, 8, 256, 1000}}) {
    for (int M : {1, 3, 8}) {
      for (int ps : {3, 16}) {
        SCOPED_TRACE(testing::Message() << "H=" << sh.H << " KV=" << sh.KV << " hd=" << sh.hd
                                        << " K=" << sh.K << " M=" << M << " ps=" << ps);
        seed += 10;
        const QkvRopeResult plain = RunQkvRope(false, sh.H, sh.KV, sh.hd, sh.K, M, ps, seed);
        const QkvRopeResult fused = RunQkvRope(true, sh.H, sh.KV, sh.hd, sh.K, M, ps, seed);
        EXPECT_TRUE(plain.q == fused.q) << "q differs";
        EXPECT_TRUE(plain.k_cache == fused.k_cache) << "K caches differ";
        EXPECT_TRUE(plain.v_cache == fused.v_cache) << "V caches differ";
      }
    }
  }
  // Refused without launching: q/k norms, hd not a multiple of 16, more than 8 rows.
  DeviceArray<uint16_t> x(64), w(6 * 16 * 64), q(64), k(64), v(64);
  DeviceArray<float2> table(8);
  DeviceArray<float> norm(16);
  DeviceArray<int32_t> idx(16);
  kernels::RopeKvWriteArgs a;
  a.rope.table = table.get();
  a.positions = a.row_seq = a.kv_page_indptr = a.kv_page_indices = idx.get();
  a.T = 1;
  a.H = 4;
  a.KV = 1;
  a.hd = 16;
  a.page_size = 16;
  a.q_out = reinterpret_cast<bf16*>(q.get());
  a.k_cache = reinterpret_cast<bf16*>(k.get());
  a.v_cache = reinterpret_cast<bf16*>(v.get());
  EXPECT_TRUE(kernels::GemvQkvRopeSupports(a));
  auto refused = [&](kernels::RopeKvWriteArgs b) {
    return kernels::GemvQkvRope(AsBf16(x), AsBf16(w), 64, b, nullptr) == cudaErrorInvalidValue;
  };
  kernels::RopeKvWriteArgs b = a;
  b.rope.q_norm = norm.get();
  EXPECT_TRUE(refused(b));
  b = a;
  b.rope.k_norm = norm.get();
  EXPECT_TRUE(refused(b));
  b = a;
  b.hd = 8;
  EXPECT_TRUE(refused(b));
  b = a;
  b.T = 9;
  EXPECT_TRUE(refused(b));
  b = a;
  b.q_out = nullptr;
  EXPECT_TRUE(refused(b));
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
}

// Gemm::RunSwiGlu: the fused Gemv form at M = 1, the fused skinny form at M = 64 where enabled
// (else cuBLASLt + the SwiGLU kernel, as at M = 65); all against the twin.
TEST(GemmDispatch, SwiGluAtSmallAndLargeMAgreesWithTwin) {
  ATTNRES_REQUIRE_GPU();
  ForBothSkinnySettings([&](cuda::Gemm* gemm, bool /*skinny*/) {
    const int f = 736, K = 2048;
    const auto w = RandomBf16Values(size_t(2) * f * K, 41, 1.0f);
    DeviceArray<uint16_t> d_w(w.size());
    d_w.Upload(ToBf16(w));
    for (int M : {1, 64, 65}) {
      SCOPED_TRACE(testing::Message() << "M=" << M);
      const auto x = RandomBf16Values(size_t(M) * K, 42 + M, 2.0f);
      DeviceArray<uint16_t> d_x(x.size()), d_gu(size_t(M) * 2 * f), d_act(size_t(M) * f);
      d_x.Upload(ToBf16(x));
      const absl::Status st = gemm->RunSwiGlu(
          reinterpret_cast<const bf16*>(d_x.get()), reinterpret_cast<const bf16*>(d_w.get()),
          reinterpret_cast<bf16*>(d_gu.get()), reinterpret_cast<bf16*>(d_act.get()), M, f, K,
          nullptr);
      ASSERT_TRUE(st.ok()) << st;
      ASSERT_CUDA(cudaDeviceSynchronize());
      EXPECT_TRUE(MatchesSwiGluTwin(FromBf16(d_act.Download()), GemvTwin(x, w, M, 2 * f, K), M, f));
    }
  });
}

// Sizes that cover the kernel's cases: x rows in each of its 2, 4 and 8 n-tile forms and their
// tails (9, 13, 17, 33, 64); w rows past the last 128-row tile; K in one partial stage (8), two
// stages (72: one block per tile), 16 stages over 8 blocks of 2, 64 over 5 blocks of 13 (the last
// 12: 49 tiles), 224 over 8 blocks of 28 (the 8B down); 133 tiles (one block each); and N % 4 == 0
// (4 outputs per store) next to the rest (one per store).
TEST(SkinnyGemmKernel, MatchesDoubleTwinOverOddSizes) {
  ATTNRES_REQUIRE_GPU();
  struct Case {
    int N, K;
    std::vector<int> Ms;
  };
  const std::vector<Case> cases = {{1, 8, {9, 13, 17, 33, 64}},
                                   {7, 72, {9, 13, 17, 33, 64}},
                                   {19, 1000, {9, 17, 64}},
                                   {733, 1000, {9, 13, 16, 17, 32, 33, 64}},
                                   {733, 72, {64}},
                                   {4096 + 3, 4096, {9, 64}},
                                   {6144 + 7, 4096, {33}},
                                   {733, 14336, {17, 64}},
                                   {133 * 128 - 5, 72, {64}},
                                   {1, 14336, {9}},
                                   {736, 1000, {9, 33, 64}},
                                   {2048, 2048, {64}}};  // N % 4 == 0: vector stores
  uint32_t seed = 500;
  for (const Case& c : cases) {
    const auto w = RandomBf16Values(size_t(c.N) * c.K, ++seed, 1.0f);
    DeviceArray<uint16_t> d_w(w.size());
    d_w.Upload(ToBf16(w));
    for (int M : c.Ms) {
      SCOPED_TRACE(testing::Message() << "M=" << M << " N=" << c.N << " K=" << c.K);
      const auto x = RandomBf16Values(size_t(M) * c.K, ++seed, 2.0f);
      DeviceArray<uint16_t> d_x(x.size());
      d_x.Upload(ToBf16(x));
      const Twin twin = GemvTwin(x, w, M, c.N, c.K);
      for (bool out_f32 : {false, true}) {
        const auto got = RunInto(M, c.N, out_f32, [&](void* out) {
          ASSERT_CUDA(
              kernels::SkinnyGemm(AsBf16(d_x), AsBf16(d_w), out, M, c.N, c.K, out_f32, nullptr));
        });
        ASSERT_TRUE(MatchesTwin(got, twin, !out_f32)) << (out_f32 ? "fp32" : "bf16") << " out";
      }
    }
  }
}

TEST(SkinnyGemmKernel, RefusesUnsupportedArgumentsWithoutLaunching) {
  ATTNRES_REQUIRE_GPU();
  ExpectRefusalsWithoutLaunching(kernels::SkinnyGemm, kernels::kSkinnyGemmMaxRows);
  DeviceArray<uint16_t> x(65 * 16), w(4 * 16), out(65 * 2);
  EXPECT_EQ(kernels::SkinnyGemmSwiGlu(AsBf16(x), AsBf16(w), reinterpret_cast<bf16*>(out.get()), 65,
                                      2, 16, nullptr),
            cudaErrorInvalidValue);
}

// The cluster's rank-order sums make every run the same bits.
TEST(SkinnyGemmKernel, IsDeterministicAndReplaysBitwiseInACudaGraph) {
  ATTNRES_REQUIRE_GPU();
  ExpectEagerAndGraphBitwise(kernels::SkinnyGemm, 37, 733, 4096);  // 6 tiles, clusters of 8
}

TEST(SkinnyGemmKernel, SwiGluFormMatchesTwinAndTheUnfusedKernelsBitwise) {
  ATTNRES_REQUIRE_GPU();
  uint32_t seed = 700;
  for (int K : {8, 1000, 4096}) {
    // 733: 12 tiles of 64 columns over clusters of 8; 8192: the 1B MLP (128 tiles, 2 blocks each).
    for (int f : {1, 7, 733, 736, 8192}) {
      if (f == 8192 && K != 4096) continue;
      const auto w = RandomBf16Values(size_t(2) * f * K, ++seed, 1.0f);
      DeviceArray<uint16_t> d_w(w.size());
      d_w.Upload(ToBf16(w));
      for (int M : {9, 33, 64}) {
        if (f == 8192 && M != 64) continue;
        ExpectSwiGluForm(kernels::SkinnyGemmSwiGlu, kernels::SkinnyGemm, w, d_w, M, f, K, ++seed);
      }
    }
  }
}

}  // namespace
}  // namespace attnres
