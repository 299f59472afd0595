// One AttnRes mix on the CPU (ATTNRES.md §2): softmax over sources of r_j * (u . v_j), output
// the weighted sum of the RAW sources. fp32 in and out, double accumulation. This is the
// reference the fused GPU kernel is tested against.
#pragma once

namespace attnres {

// sources: n pointers to rows [d]; u: folded query gamma*w [d]; out: [d] (may alias nothing in
// sources); alpha: [n] softmax weights, or nullptr.
void AttnResMix(const float* const* sources, int n, const float* u, int d, double eps, float* out,
                float* alpha);

}  // namespace attnres
