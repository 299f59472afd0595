// The residual boundary folded into the decode Gemvs around it (kernels::GemvAddResidual, then
// GemvNormed / GemvSwiGluNormed) against the unfolded kernels (Gemv writing delta,
// ResidualBoundary, Gemv on its output) and a double-precision twin, over odd sizes: the standard
// add + RMSNorm and the phase-2 AttnRes merge, with and without an empty prefix, partial column
// tiles and K steps, 1-8 rows (8 rows of 4096 take more than 48 KiB of shared memory), both Gemv
// forms (8 and 4 K slices per warp), a merge whose terms nearly cancel (summed directly), and the
// refusal of unsupported arguments.
#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/ops.h"
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
using kernels::bf16;

constexpr float kEps = 1e-5f;

std::vector<float> RandomFloats(size_t n, uint32_t seed, float lo, float hi) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(lo, hi);
  std::vector<float> v(n);
  for (float& x : v) x = u(rng);
  return v;
}

bf16* Bf16(DeviceArray<uint16_t>& a) { return reinterpret_cast<bf16*>(a.get()); }

// One boundary between a producer GEMM y = x1 . w1^T ([M, d]) and a consumer GEMM on the
// boundary's output (w2: [n2, d], or [2 f, d] gate/up with SwiGLU).
struct Case {
  int M, d, k1, n2;
  bool swiglu, merge, prefix_empty;
};

// Host inputs of a case, and their device copies.
struct Inputs {
  std::vector<float> x1, w1, w2, prefix, gamma, u, summary_h;
  std::vector<float2> ml;
};

Inputs MakeInputs(const Case& c, uint32_t seed) {
  Inputs in;
  const int rows2 = c.swiglu ? 2 * c.n2 : c.n2;
  in.x1 = RandomBf16Values(size_t(c.M) * c.k1, seed + 1, 1.0f);
  in.w1 = RandomBf16Values(size_t(c.d) * c.k1, seed + 2, 0.1f);
  in.w2 = RandomBf16Values(size_t(rows2) * c.d, seed + 3, 0.1f);
  in.prefix = RandomBf16Values(size_t(c.M) * c.d, seed + 4, 2.0f);
  in.gamma = RandomFloats(c.d, seed + 5, 0.5f, 1.5f);
  if (c.merge) {
    in.u = RandomFloats(c.d, seed + 6, -0.3f, 0.3f);
    in.summary_h = RandomFloats(size_t(c.M) * c.d, seed + 7, -3.0f, 3.0f);
    const auto m = RandomFloats(c.M, seed + 8, -2.0f, 2.0f);
    const auto l = RandomFloats(c.M, seed + 9, 0.5f, 4.0f);
    for (int i = 0; i < c.M; ++i) in.ml.push_back(make_float2(m[i], l[i]));
  }
  return in;
}

// ResidualBoundary's out for stream rows x (host floats, the producer's new prefix), in double:
// the standard RMSNorm, or the phase-2 merge of x into (ml, summary_h) then the RMSNorm.
std::vector<float> NormedTwin(const Case& c, const Inputs& in, const std::vector<float>& x) {
  std::vector<float> out(size_t(c.M) * c.d);
  for (int m = 0; m < c.M; ++m) {
    const float* xr = &x[size_t(m) * c.d];
    std::vector<double> h(xr, xr + c.d);
    double sq = 0;
    for (int k = 0; k < c.d; ++k) sq += double(xr[k]) * xr[k];
    if (c.merge) {
      double ux = 0;
      for (int k = 0; k < c.d; ++k) ux += double(in.u[k]) * xr[k];
      const double s_x = ux / std::sqrt(sq / c.d + kEps);
      const double mx = in.ml[m].x, mfin = std::max(mx, s_x);
      const double cs = std::exp(mx - mfin), px = std::exp(s_x - mfin);
      const double l = in.ml[m].y * cs + px;
      for (int k = 0; k < c.d; ++k) {
        h[k] = (in.summary_h[size_t(m) * c.d + k] * cs + px * xr[k]) / l;
      }
    }
    double hs = 0;
    for (double v : h) hs += v * v;
    const double r = 1.0 / std::sqrt(hs / c.d + kEps);
    for (int k = 0; k < c.d; ++k) out[size_t(m) * c.d + k] = float(h[k] * r * in.gamma[k]);
  }
  return out;
}

struct Device {
  DeviceArray<uint16_t> x1, w1, w2, prefix;
  DeviceArray<float> gamma, u, summary_h, stats;
  DeviceArray<float2> ml;
  explicit Device(const Case& c, const Inputs& in)
      : x1(in.x1.size()),
        w1(in.w1.size()),
        w2(in.w2.size()),
        prefix(in.prefix.size()),
        gamma(c.d),
        u(std::max<size_t>(1, in.u.size())),
        summary_h(std::max<size_t>(1, in.summary_h.size())),
        stats(size_t(c.M) * kernels::kBoundaryStats * kernels::GemvTiles(c.d)),
        ml(std::max<size_t>(1, in.ml.size())) {
    x1.Upload(ToBf16(in.x1));
    w1.Upload(ToBf16(in.w1));
    w2.Upload(ToBf16(in.w2));
    prefix.Upload(ToBf16(in.prefix));
    gamma.Upload(in.gamma);
    if (c.merge) {
      u.Upload(in.u);
      summary_h.Upload(in.summary_h);
      ml.Upload(in.ml);
    }
  }
};

struct Outputs {
  std::vector<float> prefix, y;
};

// Gemv into delta, ResidualBoundary, then the consumer Gemv on its output.
Outputs RunUnfolded(const Case& c, const Inputs& in) {
  Device dev(c, in);
  DeviceArray<uint16_t> delta(size_t(c.M) * c.d), xn(size_t(c.M) * c.d), y(size_t(c.M) * c.n2);
  EXPECT_EQ(kernels::Gemv(Bf16(dev.x1), Bf16(dev.w1), delta.get(), c.M, c.d, c.k1, false, nullptr),
            cudaSuccess);
  kernels::ResidualBoundaryArgs a;
  a.num_rows = c.M;
  a.T = c.M;
  a.d = c.d;
  a.delta = Bf16(delta);
  a.prefix_empty = c.prefix_empty;
  a.prefix = Bf16(dev.prefix);
  a.gamma = dev.gamma.get();
  a.eps = kEps;
  a.out = Bf16(xn);
  if (c.merge) {
    a.u = dev.u.get();
    a.bank_count = 1;  // the slots the summary covers (not read in phase 2)
    a.summary_index = 0;
    a.summary_h = dev.summary_h.get();
    a.summary_ml = dev.ml.get();
    a.summary_stride = 1;
  }
  EXPECT_EQ(kernels::ResidualBoundary(a, nullptr), cudaSuccess);
  EXPECT_EQ(c.swiglu
                ? kernels::GemvSwiGlu(Bf16(xn), Bf16(dev.w2), Bf16(y), c.M, c.n2, c.d, nullptr)
                : kernels::Gemv(Bf16(xn), Bf16(dev.w2), y.get(), c.M, c.n2, c.d, false, nullptr),
            cudaSuccess);
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  return {FromBf16(dev.prefix.Download()), FromBf16(y.Download())};
}

// GemvAddResidual, then GemvNormed / GemvSwiGluNormed. stats_out: the producer's statistics.
Outputs RunFolded(const Case& c, const Inputs& in, std::vector<float>* stats_out = nullptr) {
  Device dev(c, in);
  DeviceArray<uint16_t> y(size_t(c.M) * c.n2);
  kernels::GemvResidual r;
  r.prefix = Bf16(dev.prefix);
  r.prefix_empty = c.prefix_empty;
  r.stats = dev.stats.get();
  kernels::GemvNormIn n;
  n.prefix = Bf16(dev.prefix);
  n.stats = dev.stats.get();
  n.tiles = kernels::GemvTiles(c.d);
  n.gamma = dev.gamma.get();
  n.eps = kEps;
  if (c.merge) {
    r.u = dev.u.get();
    r.summary_h = n.summary_h = dev.summary_h.get();
    n.summary_ml = dev.ml.get();
  }
  EXPECT_EQ(kernels::GemvAddResidual(Bf16(dev.x1), Bf16(dev.w1), c.M, c.d, c.k1, r, nullptr),
            cudaSuccess);
  EXPECT_EQ(c.swiglu ? kernels::GemvSwiGluNormed(n, Bf16(dev.w2), Bf16(y), c.M, c.n2, c.d, nullptr)
                     : kernels::GemvNormed(n, Bf16(dev.w2), Bf16(y), c.M, c.n2, c.d, nullptr),
            cudaSuccess);
  EXPECT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  if (stats_out) *stats_out = dev.stats.Download();
  return {FromBf16(dev.prefix.Download()), FromBf16(y.Download())};
}

// The producer's statistics, summed over tiles, against double sums over the new stream rows.
testing::AssertionResult StatsMatch(const Case& c, const Inputs& in, const std::vector<float>& x,
                                    const std::vector<float>& stats) {
  const int tiles = kernels::GemvTiles(c.d), n = c.merge ? kernels::kBoundaryStats : 1;
  for (int m = 0; m < c.M; ++m) {
    double want[kernels::kBoundaryStats] = {}, mag[kernels::kBoundaryStats] = {};
    for (int k = 0; k < c.d; ++k) {
      const double xv = x[size_t(m) * c.d + k];
      const double h = c.merge ? in.summary_h[size_t(m) * c.d + k] : 0.0;
      const double terms[] = {xv * xv, c.merge ? in.u[k] * xv : 0.0, h * xv, h * h};
      for (int s = 0; s < kernels::kBoundaryStats; ++s) {
        want[s] += terms[s];
        mag[s] += std::fabs(terms[s]);
      }
    }
    for (int s = 0; s < n; ++s) {
      double got = 0;
      for (int t = 0; t < tiles; ++t) {
        got += stats[(size_t(m) * kernels::kBoundaryStats + s) * tiles + t];
      }
      if (!(std::fabs(got - want[s]) <= 1e-5 * mag[s] + 1e-30)) {
        return testing::AssertionFailure()
               << "row " << m << " statistic " << s << ": " << got << ", want " << want[s];
      }
    }
  }
  return testing::AssertionSuccess();
}

// The folded pair against the unfolded kernels: the same stream bits (the producer's x is
// ResidualBoundary's formula), correct statistics, and the consumer's output against the twin of
// the normed input (which the folded forms round to bf16 from fp32 sums in another order: 2^-8
// of the input) and, for SwiGLU, against the unfolded output.
void ExpectFoldMatches(const Case& c, uint32_t seed) {
  SCOPED_TRACE(testing::Message() << "M=" << c.M << " d=" << c.d << " k1=" << c.k1 << " n2=" << c.n2
                                  << (c.swiglu ? " swiglu" : "")
                                  << (c.merge ? " merge" : " standard")
                                  << (c.prefix_empty ? " empty prefix" : ""));
  const Inputs in = MakeInputs(c, seed);
  std::vector<float> stats;
  const Outputs unfolded = RunUnfolded(c, in);
  const Outputs folded = RunFolded(c, in, &stats);
  ASSERT_EQ(std::memcmp(folded.prefix.data(), unfolded.prefix.data(), 4 * folded.prefix.size()), 0)
      << "the stream differs from ResidualBoundary's";
  ASSERT_TRUE(StatsMatch(c, in, folded.prefix, stats));
  if (c.swiglu) {
    const double rel = RelL2(folded.y.data(), unfolded.y.data(), folded.y.size());
    EXPECT_LT(rel, 1e-2) << "against the unfolded kernels";
    for (float v : folded.y) ASSERT_FALSE(std::isnan(v));
  } else {
    const std::vector<float> xn = NormedTwin(c, in, folded.prefix);
    const auto twin = GemvTwin(xn, in.w2, c.M, c.n2, c.d);
    EXPECT_TRUE(MatchesTwin(folded.y, twin, true, std::ldexp(1.0, -7)));
    EXPECT_TRUE(MatchesTwin(unfolded.y, twin, true, std::ldexp(1.0, -7))) << "(unfolded)";
  }
}

TEST(BoundaryFold, MatchesUnfoldedKernelsAndTwinOverOddSizes) {
  ATTNRES_REQUIRE_GPU();
  uint32_t seed = 500;
  for (int d : {64, 200, 2056, 4096}) {  // 200: a partial tile of 8 columns
    for (int M : {1, 3, 8}) {
      for (bool merge : {false, true}) {
        for (bool empty : {false, true}) {
          const int k1 = (d + M) % 2 ? 1000 : 56;  // partial K steps either way
          ExpectFoldMatches({M, d, k1, 19, false, merge, empty}, seed += 10);
          ExpectFoldMatches({M, d, k1, 733, false, merge, !empty}, seed += 10);
          ExpectFoldMatches({M, d, k1, d == 4096 ? 7 : 200, true, merge, empty}, seed += 10);
        }
      }
    }
  }
  // 385 column tiles: the form with 4 K slices per warp (3 blocks per SM on a 132-SM H200).
  ExpectFoldMatches({3, 4096, 56, 6151, false, true, false}, 991);
}

// A merge whose expanded sum of h^2 nearly cancels (H = -x + small noise with c = p = 1) takes
// the direct sum: the result still matches the twin, which sums h^2 directly in double.
TEST(BoundaryFold, NearlyCancellingMergeIsSummedDirectly) {
  ATTNRES_REQUIRE_GPU();
  const Case c{2, 2056, 56, 133, false, true, false};
  Inputs in = MakeInputs(c, 77);
  std::fill(in.u.begin(), in.u.end(), 0.0f);              // s_x = 0
  for (float2& ml : in.ml) ml = make_float2(0.0f, 1.0f);  // m' = 0: c = p = 1, l' = 2
  in.summary_h.assign(in.summary_h.size(), 0.0f);
  const std::vector<float> x = RunFolded(c, in).prefix;  // the stream the producer makes
  const auto noise = RandomFloats(x.size(), 78, -1e-3f, 1e-3f);
  for (size_t i = 0; i < x.size(); ++i) in.summary_h[i] = -x[i] + noise[i];
  const Outputs folded = RunFolded(c, in);
  const auto twin = GemvTwin(NormedTwin(c, in, folded.prefix), in.w2, c.M, c.n2, c.d);
  EXPECT_TRUE(MatchesTwin(folded.y, twin, true, std::ldexp(1.0, -7)));
}

TEST(BoundaryFold, RefusesUnsupportedArgumentsWithoutLaunching) {
  ATTNRES_REQUIRE_GPU();
  EXPECT_TRUE(kernels::GemvNormedSupports(8, 4096));
  EXPECT_FALSE(kernels::GemvNormedSupports(8, 8192));  // 128 KiB of input rows
  EXPECT_FALSE(kernels::GemvNormedSupports(9, 64));
  EXPECT_FALSE(kernels::GemvNormedSupports(0, 64));
  DeviceArray<uint16_t> x(8 * 64), w(16 * 64), out(8 * 16);
  DeviceArray<float> gamma(64), stats(8 * kernels::kBoundaryStats * 4), h(8 * 64);
  kernels::GemvNormIn n;
  n.prefix = Bf16(x);
  n.stats = stats.get();
  n.tiles = 4;
  n.gamma = gamma.get();
  EXPECT_EQ(kernels::GemvNormed(n, Bf16(w), Bf16(out), 9, 16, 64, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(kernels::GemvNormed(n, Bf16(w), Bf16(out), 2, 16, 60, nullptr), cudaErrorInvalidValue);
  EXPECT_EQ(kernels::GemvNormed(n, Bf16(w) + 1, Bf16(out), 2, 16, 64, nullptr),
            cudaErrorInvalidValue);
  kernels::GemvNormIn no_stats = n;
  no_stats.stats = nullptr;
  EXPECT_EQ(kernels::GemvNormed(no_stats, Bf16(w), Bf16(out), 2, 16, 64, nullptr),
            cudaErrorInvalidValue);
  kernels::GemvNormIn half_merge = n;
  half_merge.summary_h = h.get();  // without summary_ml
  EXPECT_EQ(kernels::GemvSwiGluNormed(half_merge, Bf16(w), Bf16(out), 2, 8, 64, nullptr),
            cudaErrorInvalidValue);
  kernels::GemvResidual r;
  r.prefix = Bf16(x);
  r.stats = stats.get();
  r.u = gamma.get();  // a query without its summary
  EXPECT_EQ(kernels::GemvAddResidual(Bf16(x), Bf16(w), 2, 16, 64, r, nullptr),
            cudaErrorInvalidValue);
  kernels::GemvResidual no_prefix;
  no_prefix.stats = stats.get();
  EXPECT_EQ(kernels::GemvAddResidual(Bf16(x), Bf16(w), 2, 16, 64, no_prefix, nullptr),
            cudaErrorInvalidValue);
  ASSERT_CUDA(cudaDeviceSynchronize());
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
  for (float v : FromBf16(out.Download())) ASSERT_TRUE(std::isnan(v)) << "an output was written";
  for (float v : stats.Download()) ASSERT_TRUE(std::isnan(v)) << "a statistic was written";
}

}  // namespace
}  // namespace attnres
