// CPU dense ops. Accumulation in double for norms, float with 4 partial sums for dot products.
#include "models/cpu_ops.h"

#include <cmath>

namespace attnres {

void RmsNorm(const float* x, const float* gamma, int rows, int d, double eps, float* y) {
  for (int t = 0; t < rows; ++t) {
    const float* xr = x + static_cast<long>(t) * d;
    float* yr = y + static_cast<long>(t) * d;
    double sq = 0.0;
    for (int i = 0; i < d; ++i) sq += static_cast<double>(xr[i]) * xr[i];
    const double r = 1.0 / std::sqrt(sq / d + eps);
    for (int i = 0; i < d; ++i) yr[i] = static_cast<float>(xr[i] * r) * gamma[i];
  }
}

namespace {

inline float Dot(const float* a, const float* b, int n) {
  float s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
  int i = 0;
  for (; i + 8 <= n; i += 8) {
    s0 += a[i] * b[i];
    s1 += a[i + 1] * b[i + 1];
    s2 += a[i + 2] * b[i + 2];
    s3 += a[i + 3] * b[i + 3];
    s4 += a[i + 4] * b[i + 4];
    s5 += a[i + 5] * b[i + 5];
    s6 += a[i + 6] * b[i + 6];
    s7 += a[i + 7] * b[i + 7];
  }
  for (; i < n; ++i) s0 += a[i] * b[i];
  return ((s0 + s1) + (s2 + s3)) + ((s4 + s5) + (s6 + s7));
}

}  // namespace

void MatMulWt(const float* x, const float* w, int rows, int in, int out, float* y) {
  // Weight-row outer loop: each weight row is read once and reused for every input row.
#pragma omp parallel for schedule(static) if (static_cast<long>(out) * in * rows > 200000)
  for (int o = 0; o < out; ++o) {
    const float* wr = w + static_cast<long>(o) * in;
    for (int t = 0; t < rows; ++t) {
      y[static_cast<long>(t) * out + o] = Dot(x + static_cast<long>(t) * in, wr, in);
    }
  }
}

void SwiGlu(const float* gate, const float* up, int n, float* y) {
  for (int i = 0; i < n; ++i) {
    const float g = gate[i];
    y[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

}  // namespace attnres
