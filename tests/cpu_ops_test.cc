// MatMulWt against a scalar twin of its summation order, bit for bit, over odd shapes (every tile
// edge), and its batch invariance: a row's result does not depend on the rows beside it.
#include "models/cpu_ops.h"

#include <cmath>
#include <cstring>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace attnres {
namespace {

// The documented order: 8 lanes over the 8-aligned part, the rest into lane 0, a fixed tree.
float DotTwin(const float* a, const float* b, int n) {
  float l[8] = {};
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int k = 0; k < 8; ++k) l[k] += a[i + k] * b[i + k];
  }
  for (; i < n; ++i) l[0] += a[i] * b[i];
  return ((l[0] + l[1]) + (l[2] + l[3])) + ((l[4] + l[5]) + (l[6] + l[7]));
}

std::vector<float> Random(size_t n, std::mt19937& rng) {
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (float& x : v) x = u(rng);
  return v;
}

TEST(MatMulWt, EqualsItsScalarTwinBitForBit) {
  std::mt19937 rng(11);
  for (int rows : {1, 2, 3, 4, 5, 7, 13}) {
    for (int in : {1, 3, 7, 8, 9, 16, 63, 385}) {
      for (int out : {1, 2, 3, 4, 5, 25, 49}) {
        const std::vector<float> x = Random(static_cast<size_t>(rows) * in, rng);
        const std::vector<float> w = Random(static_cast<size_t>(out) * in, rng);
        std::vector<float> y(static_cast<size_t>(rows) * out, std::nanf(""));
        MatMulWt(x.data(), w.data(), rows, in, out, y.data());
        for (int t = 0; t < rows; ++t) {
          for (int o = 0; o < out; ++o) {
            const float want =
                DotTwin(&x[static_cast<size_t>(t) * in], &w[static_cast<size_t>(o) * in], in);
            const float got = y[static_cast<size_t>(t) * out + o];
            ASSERT_EQ(std::memcmp(&want, &got, sizeof(float)), 0)
                << "rows " << rows << " in " << in << " out " << out << " at " << t << "," << o
                << ": " << got << " vs " << want;
          }
        }
      }
    }
  }
}

TEST(MatMulWt, ARowsResultDoesNotDependOnItsBatch) {
  std::mt19937 rng(12);
  const int rows = 11, in = 200, out = 70;  // big enough for the OpenMP path
  const std::vector<float> x = Random(static_cast<size_t>(rows) * in, rng);
  const std::vector<float> w = Random(static_cast<size_t>(out) * in, rng);
  std::vector<float> all(static_cast<size_t>(rows) * out);
  MatMulWt(x.data(), w.data(), rows, in, out, all.data());
  for (int t = 0; t < rows; ++t) {
    std::vector<float> one(out);
    MatMulWt(&x[static_cast<size_t>(t) * in], w.data(), 1, in, out, one.data());
    EXPECT_EQ(std::memcmp(one.data(), &all[static_cast<size_t>(t) * out], out * sizeof(float)), 0)
        << "row " << t;
  }
}

}  // namespace
}  // namespace attnres
