// The staged form of the AttnRes residual boundary, for prefill-sized row counts (internal to
// kernels/; ResidualBoundary in attn_res.cu dispatches to it).
#pragma once

#include <cuda_runtime.h>

#include "kernels/ops.h"

namespace attnres::kernels {

// Whether the staged form serves these arguments: a boundary that mixes 0..8 bank slots (0: the
// add + norm alone), whose sources fit the shared-memory budget, with 16-byte aligned buffers;
// either a phase-1 boundary (summary_queries of 1..8, with or without phase1_only: always) or a
// one-phase AttnRes mix (ATTNRES_STAGED_BOUNDARY=0 turns these off; =1 adds the standard add +
// norm, which stays on the register forms by default: bench/BENCHMARKS.md runs 27, 44, 45).
// Never a phase-2 mix. The caller decides by row count.
bool StagedBoundaryServes(const ResidualBoundaryArgs& a);

// Whether a one-phase boundary that mixes `mixed` bank slots (0: the add + norm alone) takes the
// staged form under ATTNRES_STAGED_BOUNDARY = `setting` (null: unset): by default the mixes, at
// "1" the standard add + norm too, at "0" none. The mixes gain 1-5% a kernel and 150-225 us in
// the 8B Block prefill step (bench/BENCHMARKS.md run 45); the standard add + norm gains alone
// too, but the standard 8B prefill step ran slower behind its 64 staged boundaries each time it
// was measured (runs 27, 44).
bool StagedOnePhaseWanted(const char* setting, int mixed);

// The boundary of ops.h ResidualBoundary (same outputs, the mix's fp32 rounding aside) with each
// row's sources bulk-copied into shared memory. Precondition: StagedBoundaryServes(a).
cudaError_t StagedBoundary(const ResidualBoundaryArgs& a, cudaStream_t stream);

}  // namespace attnres::kernels
