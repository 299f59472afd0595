// CPU dense ops. Accumulation in double for norms; dot products in float over 8 lanes (MatMulWt).
#include "models/cpu_ops.h"

#include <algorithm>
#include <cmath>
#include <cstring>

// The 32-byte vectors below live only in this file's inline helpers, so the ABI note GCC gives
// for passing them by value without AVX (-Wpsabi) concerns no call that crosses it.
#pragma GCC diagnostic ignored "-Wpsabi"

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

// Register tiles of R rows x C weight rows: each weight row is loaded once per R input rows and
// each input row once per C weight rows. Every y[t, o] is still its own dot product, summed the
// same way whatever tile it lands in: 8 lanes (lane k takes the elements i = k mod 8 of the
// 8-aligned part), the rest added to lane 0 one by one, then ((l0 + l1) + (l2 + l3)) +
// ((l4 + l5) + (l6 + l7)). So a row's result does not depend on which rows share its batch
// (chunked prefill and preemption recompute bit-identical K/V), and the AVX2 clone computes the
// same floats as the baseline one (no FMA: a multiply, then an add, per lane).
using V8 = float __attribute__((vector_size(32)));
constexpr int kTileRows = 4, kTileCols = 3;
constexpr int kColumnBlock = 8 * kTileCols;  // weight rows per task, reused across all x rows

// Everything below inlines into MatMulColumns, so that its AVX2 clone compiles all of it for
// AVX2, and its vectors stay in registers (loaded by value, lanes read by subscript).
#define ATTNRES_INLINE inline __attribute__((always_inline))

// memcpy, not a cast to an under-aligned vector type (clang keeps such a type's 32-byte
// alignment, which UBSan reports); it compiles to one unaligned load.
ATTNRES_INLINE V8 Load8(const float* p) {
  V8 v;
  std::memcpy(&v, p, sizeof(v));
  return v;
}

ATTNRES_INLINE float Finish(const V8& lanes, const float* a, const float* b, int from, int n) {
  float l0 = lanes[0];
  for (int i = from; i < n; ++i) l0 += a[i] * b[i];
  return ((l0 + lanes[1]) + (lanes[2] + lanes[3])) +
         ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
}

// x: [R rows at stride in], w: [C rows at stride in], y: [R rows at stride out].
template <int R, int C>
ATTNRES_INLINE void Tile(const float* x, const float* w, int in, int out, float* y) {
  V8 acc[R][C] = {};
  const int n8 = in & ~7;
  for (int i = 0; i < n8; i += 8) {
    V8 wv[C];
    for (int c = 0; c < C; ++c) wv[c] = Load8(w + static_cast<long>(c) * in + i);
    for (int r = 0; r < R; ++r) {
      const V8 xv = Load8(x + static_cast<long>(r) * in + i);
      for (int c = 0; c < C; ++c) acc[r][c] += xv * wv[c];
    }
  }
  for (int r = 0; r < R; ++r) {
    for (int c = 0; c < C; ++c) {
      y[static_cast<long>(r) * out + c] =
          Finish(acc[r][c], x + static_cast<long>(r) * in, w + static_cast<long>(c) * in, n8, in);
    }
  }
}

template <int R>
ATTNRES_INLINE void TileRows(int cols, const float* x, const float* w, int in, int out, float* y) {
  static_assert(kTileCols == 3);
  if (cols == 3) return Tile<R, 3>(x, w, in, out, y);
  if (cols == 2) return Tile<R, 2>(x, w, in, out, y);
  Tile<R, 1>(x, w, in, out, y);
}

// y[:, o0:o1] for every row. Compiled for AVX2 and for the baseline, chosen at load time.
__attribute__((target_clones("avx2", "default"))) void MatMulColumns(const float* x, const float* w,
                                                                     int rows, int in, int out,
                                                                     int o0, int o1, float* y) {
  static_assert(kTileRows == 4);
  for (int t = 0; t < rows; t += kTileRows) {
    const int r = std::min(kTileRows, rows - t);
    for (int o = o0; o < o1; o += kTileCols) {
      const int c = std::min(kTileCols, o1 - o);
      const float* xt = x + static_cast<long>(t) * in;
      const float* wo = w + static_cast<long>(o) * in;
      float* yt = y + static_cast<long>(t) * out + o;
      switch (r) {
        case 4:
          TileRows<4>(c, xt, wo, in, out, yt);
          break;
        case 3:
          TileRows<3>(c, xt, wo, in, out, yt);
          break;
        case 2:
          TileRows<2>(c, xt, wo, in, out, yt);
          break;
        default:
          TileRows<1>(c, xt, wo, in, out, yt);
          break;
      }
    }
  }
}

#undef ATTNRES_INLINE

}  // namespace

void MatMulWt(const float* x, const float* w, int rows, int in, int out, float* y) {
  const int blocks = (out + kColumnBlock - 1) / kColumnBlock;
#pragma omp parallel for schedule(static) if (static_cast <long>(out) * in * rows > 200000)
  for (int b = 0; b < blocks; ++b) {
    const int o0 = b * kColumnBlock;
    MatMulColumns(x, w, rows, in, out, o0, std::min(out, o0 + kColumnBlock), y);
  }
}

void SwiGlu(const float* gate, const float* up, int n, float* y) {
  for (int i = 0; i < n; ++i) {
    const float g = gate[i];
    y[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

}  // namespace attnres
