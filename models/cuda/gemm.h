// bf16 GEMMs for the forward pass: y[M, N] = x[M, K] . w[N, K]^T (torch Linear, row-major), fp32
// accumulation, bf16 or fp32 output, and the MLP's gate/up projection with SwiGLU. Decode-sized M
// goes to our bandwidth-bound kernels::Gemv (up to 8 rows on weights up to ~128 MB; gate/up +
// SwiGLU: ~256 MB), where it measured faster, and on larger weights where Tune timed it faster on
// this card; with ATTNRES_SKINNY_GEMM=1, 9-64 rows go to
// kernels::SkinnyGemm (opt-in: it measured slower than cuBLASLt, bench/BENCHMARKS.md run 25); the
// rest to cuBLASLt, whose descriptors and heuristic algorithm are cached per shape; one fixed
// workspace keeps calls capturable in CUDA graphs.
#pragma once

#include <cublasLt.h>

#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "absl/status/statusor.h"
#include "kernels/ops.h"
#include "models/cuda/device_memory.h"

namespace attnres::cuda {

class Gemm {
 public:
  static absl::StatusOr<std::unique_ptr<Gemm>> Create();
  ~Gemm();

  // out is bf16 [M, N] unless out_f32, then fp32 [M, N]. With K % 8 == 0 and 16-byte aligned x,
  // w: M <= kernels::kGemvMaxRows on N * K bf16 weights <= 128 MB runs kernels::Gemv, M from
  // kGemvMaxRows + 1 to kernels::kSkinnyGemmMaxRows kernels::SkinnyGemm where enabled; the rest
  // cuBLASLt.
  absl::Status Run(const kernels::bf16* x, const kernels::bf16* w, void* out, int M, int N, int K,
                   bool out_f32, cudaStream_t stream);
  // The MLP's gate/up projection and SwiGLU: act[M, f] = silu(g) * u, with g, u = x . w_gate_up
  // [2f, K]^T's halves rounded to bf16. For Gemv's rows and alignment on weights up to 256 MB,
  // one kernels::GemvSwiGlu; for the skinny GEMM's rows where enabled, one
  // kernels::SkinnyGemmSwiGlu; otherwise
  // Run into gate_up [M, 2f] bf16 (scratch), then kernels::SwiGlu.
  absl::Status RunSwiGlu(const kernels::bf16* x, const kernels::bf16* w_gate_up,
                         kernels::bf16* gate_up, kernels::bf16* act, int M, int f, int K,
                         cudaStream_t stream);
  // Whether Run / RunSwiGlu take Gemv for these arguments: the decode step's folded residual
  // boundary (kernels::GemvAddResidual, GemvNormed, GemvSwiGluNormed) runs only where they do.
  bool TakesGemv(const kernels::bf16* x, const kernels::bf16* w, int M, int N, int K) const;
  bool TakesGemvSwiGlu(const kernels::bf16* x, const kernels::bf16* w_gate_up, int M, int f,
                       int K) const;
  // Weights above Gemv's 128 MB limit stream faster through Gemv on some cards (the H100: 8B
  // lm_head 106% of copy against cuBLASLt's 96%) and slower on others (the H200: 97% against
  // 102%; bench/BENCHMARKS.md). Tune times both paths on w [N, K] for M = 1..kGemvMaxRows (cold
  // weights, the median of kTuneReps launches each) and from then on Run takes Gemv at the M
  // where it took at most kTuneMargin of cuBLASLt's time (a near tie keeps cuBLASLt, so a
  // card's choice does not flip between starts on noise). Call it before capturing graphs, on
  // an idle device; shapes within the limit or outside Gemv's alignment are left as they are.
  // scratch: device memory Tune may overwrite with its input and output (TuneScratchBytes), so
  // that it allocates nothing; null or smaller: it allocates (and frees) its own.
  struct Tuning {
    int N = 0, K = 0;
    bool out_f32 = false;
    std::vector<double> gemv_ms, cublaslt_ms;  // [kGemvMaxRows]: M = 1 at index 0
    bool GemvAt(int M) const;
    std::string Describe() const;  // one line for the start-up report
  };
  // 15: with 5, the LM heads' choice flipped between starts on an H200, where the two paths are
  // within 0-7% of each other (bench/BENCHMARKS.md run 51); 5 took 0.05-0.09 s a shape there.
  static constexpr int kTuneReps = 15;
  static constexpr double kTuneMargin = 0.97;
  absl::StatusOr<const Tuning*> Tune(const kernels::bf16* w, int N, int K, bool out_f32,
                                     cudaStream_t stream, void* scratch = nullptr,
                                     size_t scratch_bytes = 0);
  static size_t TuneScratchBytes(int N, int K, bool out_f32);
  // The same product, always through cuBLASLt (benchmarks and tests compare the two paths).
  absl::Status RunCublasLt(const kernels::bf16* x, const kernels::bf16* w, void* out, int M, int N,
                           int K, bool out_f32, cudaStream_t stream);

 private:
  struct Plan {
    cublasLtMatmulDesc_t op = nullptr;
    cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
    cublasLtMatmulAlgo_t algo;
  };
  absl::StatusOr<const Plan*> PlanFor(int M, int N, int K, bool out_f32);
  // Steps of kGemvMaxRows + 1 to kSkinnyGemmMaxRows rows with Gemv's alignment.
  bool TakesSkinny(const kernels::bf16* x, const kernels::bf16* w, int M, int K) const;

  // Gemv for these arguments: within the static limit, or tuned so.
  bool UsesGemv(const kernels::bf16* x, const kernels::bf16* w, int M, int N, int K,
                bool out_f32) const;

  bool skinny_ = false;  // ATTNRES_SKINNY_GEMM=1 at Create (opt-in until it beats cuBLASLt)
  // (N, K, out_f32) of the tuned shapes, with what Tune measured
  std::map<std::tuple<int, int, bool>, Tuning> tuned_;

  cublasLtHandle_t handle_ = nullptr;
  DevicePtr workspace_;
  size_t workspace_bytes_ = 0;
  std::map<std::tuple<int, int, int, bool>, Plan> plans_;
};

}  // namespace attnres::cuda
