// The staged form of the AttnRes residual boundary, for prefill-sized row counts (internal to
// kernels/; ResidualBoundary in attn_res.cu dispatches to it).
#pragma once

#include <cuda_runtime.h>

#include "kernels/ops.h"

namespace attnres::kernels {

// Whether the staged form serves these arguments: a boundary that mixes 0..8 bank slots (0: the
// add + norm alone), whose sources fit the shared-memory budget, with 16-byte aligned buffers;
// either a phase-1 boundary (summary_queries of 1..8, with or without phase1_only: always) or a
// one-phase one with ATTNRES_STAGED_BOUNDARY=1 (opt-in: its kernels are faster under ncu, but the
// 8B Block prefill step measured 1.5-2% slower with them, bench/BENCHMARKS.md runs 26-27). Never
// a phase-2 mix. The caller decides by row count.
bool StagedBoundaryServes(const ResidualBoundaryArgs& a);

// The boundary of ops.h ResidualBoundary (same outputs, the mix's fp32 rounding aside) with each
// row's sources bulk-copied into shared memory. Precondition: StagedBoundaryServes(a).
cudaError_t StagedBoundary(const ResidualBoundaryArgs& a, cudaStream_t stream);

}  // namespace attnres::kernels
