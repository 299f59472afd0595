// Small-M dispatch to kernels::Gemv, and cuBLASLt plans: A = w (K x N column-major, transposed),
// B = x (K x M), D = y (N x M).
#include "models/cuda/gemm.h"

#include <cstdlib>
#include <cstring>

namespace attnres::cuda {

namespace {
constexpr size_t kWorkspaceBytes = 64ull << 20;
}

absl::StatusOr<std::unique_ptr<Gemm>> Gemm::Create() {
  std::unique_ptr<Gemm> g(new Gemm());
  const char* skinny = std::getenv("ATTNRES_SKINNY_GEMM");
  g->skinny_ = skinny != nullptr && std::strcmp(skinny, "1") == 0;
  ATTNRES_CUBLAS_RETURN(cublasLtCreate(&g->handle_));
  auto ws = DeviceAlloc(kWorkspaceBytes);
  if (!ws.ok()) return ws.status();
  g->workspace_ = std::move(*ws);
  g->workspace_bytes_ = kWorkspaceBytes;
  return g;
}

Gemm::~Gemm() {
  for (auto& [key, p] : plans_) {
    cublasLtMatrixLayoutDestroy(p.a);
    cublasLtMatrixLayoutDestroy(p.b);
    cublasLtMatrixLayoutDestroy(p.c);
    cublasLtMatmulDescDestroy(p.op);
  }
  if (handle_) cublasLtDestroy(handle_);
}

absl::StatusOr<const Gemm::Plan*> Gemm::PlanFor(int M, int N, int K, bool out_f32) {
  const auto key = std::make_tuple(M, N, K, out_f32);
  if (auto it = plans_.find(key); it != plans_.end()) return &it->second;
  Plan p;
  ATTNRES_CUBLAS_RETURN(cublasLtMatmulDescCreate(&p.op, CUBLAS_COMPUTE_32F, CUDA_R_32F));
  const cublasOperation_t ta = CUBLAS_OP_T, tb = CUBLAS_OP_N;
  ATTNRES_CUBLAS_RETURN(
      cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof(ta)));
  ATTNRES_CUBLAS_RETURN(
      cublasLtMatmulDescSetAttribute(p.op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof(tb)));
  ATTNRES_CUBLAS_RETURN(cublasLtMatrixLayoutCreate(&p.a, CUDA_R_16BF, K, N, K));
  ATTNRES_CUBLAS_RETURN(cublasLtMatrixLayoutCreate(&p.b, CUDA_R_16BF, K, M, K));
  ATTNRES_CUBLAS_RETURN(
      cublasLtMatrixLayoutCreate(&p.c, out_f32 ? CUDA_R_32F : CUDA_R_16BF, N, M, N));
  cublasLtMatmulPreference_t pref;
  ATTNRES_CUBLAS_RETURN(cublasLtMatmulPreferenceCreate(&pref));
  ATTNRES_CUBLAS_RETURN(cublasLtMatmulPreferenceSetAttribute(
      pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace_bytes_, sizeof(size_t)));
  cublasLtMatmulHeuristicResult_t result;
  int found = 0;
  const cublasStatus_t s = cublasLtMatmulAlgoGetHeuristic(handle_, p.op, p.a, p.b, p.c, p.c, pref,
                                                          1, &result, &found);
  cublasLtMatmulPreferenceDestroy(pref);
  ATTNRES_CUBLAS_RETURN(s);
  if (found == 0) {
    return absl::InternalError(
        absl::StrCat("cuBLASLt has no algorithm for M=", M, " N=", N, " K=", K));
  }
  p.algo = result.algo;
  return &plans_.emplace(key, p).first->second;
}

// Why: at decode sizes a GEMM is a pure weight stream (M = 8 does 8 FLOP per weight byte; the
// H200's ridge is 785 TFLOP/s / 4.28 TB/s = 183), so its time is bytes / bandwidth. Gemv streams
// w once for all M <= 8 rows on tensor cores. Measured on the H200 (bench/BENCHMARKS.md run 8,
// cold weights, M = 1): it beats cuBLASLt's small-M kernels up to the 8B down matrix (117 MB:
// qkv 81% vs 66% of copy, o 73% vs 57%, down 87% vs 85%) and loses above (gate_up 94% vs 96%,
// lm_head 98% vs 102%), where cuBLASLt's split kernels already stream well.
constexpr double kGemvMaxWeightBytes = 128e6;

// Gemv's fused gate/up + SwiGLU form takes larger matrices than the plain form: it saves the
// SwiGLU kernel and, unlike cuBLASLt, starts streaming weights before the kernel ahead of it
// ends. At batch 1 the 8B gate/up (235 MB) took 4.321-4.326 ms per step this way against
// 4.356-4.386 through cuBLASLt + SwiGLU, while plain Gemv + SwiGLU on it gained nothing
// (4.369-4.382; bench/BENCHMARKS.md run 24).
constexpr double kGemvSwiGluMaxWeightBytes = 256e6;

namespace {
bool FitsGemv(const kernels::bf16* x, const kernels::bf16* w, int M, int N, int K,
              double max_weight_bytes) {
  return M <= kernels::kGemvMaxRows && 2.0 * N * K <= max_weight_bytes &&
         kernels::GemvSupports(x, w, M, K);
}
}  // namespace

bool Gemm::TakesGemv(const kernels::bf16* x, const kernels::bf16* w, int M, int N, int K) const {
  return M > 0 && FitsGemv(x, w, M, N, K, kGemvMaxWeightBytes);
}

bool Gemm::TakesGemvSwiGlu(const kernels::bf16* x, const kernels::bf16* w_gate_up, int M, int f,
                           int K) const {
  return M > 0 && FitsGemv(x, w_gate_up, M, 2 * f, K, kGemvSwiGluMaxWeightBytes);
}

bool Gemm::TakesSkinny(const kernels::bf16* x, const kernels::bf16* w, int M, int K) const {
  return skinny_ && M > kernels::kGemvMaxRows && kernels::SkinnyGemmSupports(x, w, M, K);
}

absl::Status Gemm::Run(const kernels::bf16* x, const kernels::bf16* w, void* out, int M, int N,
                       int K, bool out_f32, cudaStream_t stream) {
  if (M == 0) return absl::OkStatus();
  if (FitsGemv(x, w, M, N, K, kGemvMaxWeightBytes)) {
    ATTNRES_CUDA_RETURN(kernels::Gemv(x, w, out, M, N, K, out_f32, stream));
    return absl::OkStatus();
  }
  if (TakesSkinny(x, w, M, K)) {
    ATTNRES_CUDA_RETURN(kernels::SkinnyGemm(x, w, out, M, N, K, out_f32, stream));
    return absl::OkStatus();
  }
  return RunCublasLt(x, w, out, M, N, K, out_f32, stream);
}

absl::Status Gemm::RunSwiGlu(const kernels::bf16* x, const kernels::bf16* w_gate_up,
                             kernels::bf16* gate_up, kernels::bf16* act, int M, int f, int K,
                             cudaStream_t stream) {
  if (M == 0) return absl::OkStatus();
  if (FitsGemv(x, w_gate_up, M, 2 * f, K, kGemvSwiGluMaxWeightBytes)) {
    ATTNRES_CUDA_RETURN(kernels::GemvSwiGlu(x, w_gate_up, act, M, f, K, stream));
    return absl::OkStatus();
  }
  if (TakesSkinny(x, w_gate_up, M, K)) {
    ATTNRES_CUDA_RETURN(kernels::SkinnyGemmSwiGlu(x, w_gate_up, act, M, f, K, stream));
    return absl::OkStatus();
  }
  if (auto st = Run(x, w_gate_up, gate_up, M, 2 * f, K, false, stream); !st.ok()) return st;
  ATTNRES_CUDA_RETURN(kernels::SwiGlu(gate_up, M, f, act, stream));
  return absl::OkStatus();
}

absl::Status Gemm::RunCublasLt(const kernels::bf16* x, const kernels::bf16* w, void* out, int M,
                               int N, int K, bool out_f32, cudaStream_t stream) {
  if (M == 0) return absl::OkStatus();
  auto plan = PlanFor(M, N, K, out_f32);
  if (!plan.ok()) return plan.status();
  const Plan& p = **plan;
  const float alpha = 1.0f, beta = 0.0f;
  ATTNRES_CUBLAS_RETURN(cublasLtMatmul(handle_, p.op, &alpha, w, p.a, x, p.b, &beta, out, p.c,
                                       out, p.c, &p.algo, workspace_.get(), workspace_bytes_,
                                       stream));
  return absl::OkStatus();
}

}  // namespace attnres::cuda
