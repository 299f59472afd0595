// Dense fp32 building blocks of the CPU forward pass: RMSNorm, matmul against a row-major
// weight, SwiGLU. Parallel over output rows with OpenMP; no model knowledge.
#pragma once

namespace attnres {

// y[t, :] = x[t, :] / rms(x[t, :]) * gamma, for t in [0, rows). x, y: [rows, d]; may alias.
void RmsNorm(const float* x, const float* gamma, int rows, int d, double eps, float* y);

// y[t, o] = sum_i x[t, i] * w[o, i]. x: [rows, in], w: [out, in] (torch Linear), y: [rows, out].
void MatMulWt(const float* x, const float* w, int rows, int in, int out, float* y);

// gate_up holds gate [rows, f] then up [rows, f] as separate arrays: y = silu(gate) * up.
void SwiGlu(const float* gate, const float* up, int n, float* y);

}  // namespace attnres
