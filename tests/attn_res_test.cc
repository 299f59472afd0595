// The AttnRes mix against ATTNRES.md §6 and a direct double-precision evaluation.
#include <cmath>
#include <random>

#include "gtest/gtest.h"
#include "models/attn_res_mix.h"

namespace attnres {
namespace {

TEST(AttnResMix, ScaleProbeHasNoSqrtD) {
  const float v0[] = {1, 0, 0, 0}, v1[] = {0, 1, 0, 0}, u[] = {2, 0, 0, 0};
  const float* src[] = {v0, v1};
  float out[4], alpha[2];
  // eps -> 0: r_j = 1/sqrt(1/4) = 2, scores 4 and 0.
  AttnResMix(src, 2, u, 4, 1e-12, out, alpha);
  EXPECT_NEAR(out[0], 0.9820138f, 1e-6);
  EXPECT_NEAR(out[1], 0.0179862f, 1e-6);
  EXPECT_EQ(out[2], 0.0f);
  EXPECT_EQ(out[3], 0.0f);
  EXPECT_NEAR(alpha[0] + alpha[1], 1.0f, 1e-6);
}

TEST(AttnResMix, SingleSourceIsExactIdentity) {
  std::mt19937 rng(7);
  std::normal_distribution<float> n(0, 3);
  for (int d : {1, 7, 19, 733}) {
    std::vector<float> v(d), u(d), out(d, NAN);
    for (auto& x : v) x = n(rng);
    for (auto& x : u) x = n(rng);
    const float* src[] = {v.data()};
    float alpha = NAN;
    AttnResMix(src, 1, u.data(), d, 1e-6, out.data(), &alpha);
    EXPECT_EQ(out, v);
    EXPECT_EQ(alpha, 1.0f);
  }
}

TEST(AttnResMix, ZeroQueryIsMeanOfSources) {
  std::mt19937 rng(8);
  std::normal_distribution<float> n(0, 1);
  const int d = 19, k = 5;
  std::vector<std::vector<float>> v(k, std::vector<float>(d));
  std::vector<const float*> src;
  for (auto& row : v) {
    for (auto& x : row) x = n(rng);
    src.push_back(row.data());
  }
  std::vector<float> u(d, 0.0f), out(d);
  AttnResMix(src.data(), k, u.data(), d, 1e-6, out.data(), nullptr);
  for (int i = 0; i < d; ++i) {
    double mean = 0;
    for (int j = 0; j < k; ++j) mean += v[j][i];
    EXPECT_NEAR(out[i], mean / k, 1e-6);
  }
}

TEST(AttnResMix, MatchesDirectFormulaOnOddSizes) {
  std::mt19937 rng(9);
  std::normal_distribution<float> n(0, 1);
  for (int d : {1, 7, 19, 733}) {
    for (int k : {2, 3, 9}) {
      std::vector<std::vector<float>> v(k, std::vector<float>(d));
      std::vector<const float*> src;
      for (auto& row : v) {
        for (auto& x : row) x = n(rng) * 2.0f;
        src.push_back(row.data());
      }
      std::vector<float> u(d), out(d, NAN), alpha(k, NAN);
      for (auto& x : u) x = n(rng) * 0.3f;
      const double eps = 1e-5;
      AttnResMix(src.data(), k, u.data(), d, eps, out.data(), alpha.data());
      std::vector<double> s(k);
      double mx = -1e300, sum = 0;
      for (int j = 0; j < k; ++j) {
        double ms = 0, dot = 0;
        for (int i = 0; i < d; ++i) {
          ms += double(v[j][i]) * v[j][i] / d;
          dot += double(u[i]) * v[j][i];
        }
        s[j] = dot / std::sqrt(ms + eps);
        mx = std::max(mx, s[j]);
      }
      for (auto& x : s) sum += (x = std::exp(x - mx));
      for (int j = 0; j < k; ++j) EXPECT_NEAR(alpha[j], s[j] / sum, 1e-6);
      for (int i = 0; i < d; ++i) {
        double h = 0;
        for (int j = 0; j < k; ++j) h += s[j] / sum * v[j][i];
        ASSERT_NEAR(out[i], h, 1e-5 * (1 + std::abs(h))) << "d=" << d << " k=" << k;
      }
    }
  }
}

}  // namespace
}  // namespace attnres
