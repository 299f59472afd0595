// A double-precision twin of the small-M GEMMs (MatMulWt: y[m, n] = sum_k x[m, k] w[n, k]) and
// the per-element check against it, shared by the GEMM kernel tests.
#pragma once

#include <cmath>
#include <vector>

#include "gtest/gtest.h"
#include "tests/gpu/gpu_test_util.h"

namespace attnres::gpu_testing {

// ref[m, n] = sum_k x[m, k] w[n, k] in double; mag[m, n] = sum_k |x[m, k] w[n, k]| scales the
// fp32 accumulation error.
struct Twin {
  std::vector<double> ref, mag;
};
inline Twin GemvTwin(const std::vector<float>& x, const std::vector<float>& w, int M, int N,
                     int K) {
  Twin t{std::vector<double>(size_t(M) * N), std::vector<double>(size_t(M) * N)};
  for (int m = 0; m < M; ++m) {
    const float* xr = &x[size_t(m) * K];
    for (int n = 0; n < N; ++n) {
      const float* wr = &w[size_t(n) * K];
      double s = 0, a = 0;
      for (int k = 0; k < K; ++k) {
        const double p = double(xr[k]) * wr[k];
        s += p;
        a += std::fabs(p);
      }
      t.ref[size_t(m) * N + n] = s;
      t.mag[size_t(m) * N + n] = a;
    }
  }
  return t;
}

// Per element: |got - ref| <= 1e-4 * mag (fp32 accumulation in any order, with margin) plus, for
// bf16 outputs, 2^-8 |ref| (one bf16 rounding). NaN (the poison) never passes.
// input_rel: a relative error of the inputs x themselves (an input rounded to bf16 on the way:
// 2^-8), scaling mag too.
inline testing::AssertionResult MatchesTwin(const std::vector<float>& got, const Twin& t,
                                            bool bf16_out, double input_rel = 0.0) {
  std::vector<float> ref(t.ref.begin(), t.ref.end());
  for (size_t i = 0; i < got.size(); ++i) {
    const double err = std::fabs(double(got[i]) - t.ref[i]);
    const double tol =
        (1e-4 + input_rel) * t.mag[i] + (bf16_out ? std::ldexp(std::fabs(t.ref[i]), -8) : 0.0);
    if (!(err <= tol)) {
      return testing::AssertionFailure() << "element " << i << ": got " << got[i] << ", want "
                                         << t.ref[i] << " (tolerance " << tol << ")";
    }
  }
  // Over many elements the errors average: bf16 rounding ~1e-3, fp32 accumulation ~1e-6.
  const double rel = RelL2(got.data(), ref.data(), got.size());
  if (got.size() >= 256 && !(rel < (bf16_out ? 4e-3 : 1e-5) + 2 * input_rel)) {
    return testing::AssertionFailure() << "rel L2 " << rel;
  }
  return testing::AssertionSuccess();
}

}  // namespace attnres::gpu_testing
