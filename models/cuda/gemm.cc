// Small-M dispatch to kernels::Gemv, and cuBLASLt plans: A = w (K x N column-major, transposed),
// B = x (K x M), D = y (N x M).
#include "models/cuda/gemm.h"

#include <algorithm>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

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
// lm_head 98% vs 102%), where cuBLASLt's split kernels already stream well. On the H100 Gemv
// reads the large ones faster too (lm_head 106% vs 96%): Tune decides those per card.
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

bool Gemm::UsesGemv(const kernels::bf16* x, const kernels::bf16* w, int M, int N, int K,
                    bool out_f32) const {
  if (M <= 0) return false;
  if (FitsGemv(x, w, M, N, K, kGemvMaxWeightBytes)) return true;
  const auto it = tuned_.find(std::make_tuple(N, K, out_f32));
  return it != tuned_.end() && it->second.GemvAt(M) && kernels::GemvSupports(x, w, M, K);
}

bool Gemm::TakesGemv(const kernels::bf16* x, const kernels::bf16* w, int M, int N, int K) const {
  return UsesGemv(x, w, M, N, K, false);
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
  if (UsesGemv(x, w, M, N, K, out_f32)) {
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

bool Gemm::Tuning::GemvAt(int M) const {
  return M >= 1 && M <= static_cast<int>(gemv_ms.size()) &&
         gemv_ms[M - 1] <= kTuneMargin * cublaslt_ms[M - 1];
}

std::string Gemm::Tuning::Describe() const {
  std::string gemv_rows, lt_rows;
  for (int m = 1; m <= static_cast<int>(gemv_ms.size()); ++m) {
    std::string& rows = GemvAt(m) ? gemv_rows : lt_rows;
    absl::StrAppend(&rows, rows.empty() ? "" : ",", m);
  }
  return absl::StrFormat(
      "[%d, %d] (%.0f MB%s): Gemv at M = {%s}, cuBLASLt at {%s} (M = 1: %.3f against %.3f ms)", N,
      K, 2e-6 * N * K, out_f32 ? ", fp32 out" : "", gemv_rows, lt_rows, gemv_ms[0], cublaslt_ms[0]);
}

namespace {
// Tune's input x [kGemvMaxRows, K] bf16, then (from a 256-byte boundary) its output y.
size_t TuneInputBytes(int K) {
  return (sizeof(kernels::bf16) * kernels::kGemvMaxRows * K + 255) / 256 * 256;
}
}  // namespace

size_t Gemm::TuneScratchBytes(int N, int K, bool out_f32) {
  return TuneInputBytes(K) +
         (out_f32 ? sizeof(float) : sizeof(kernels::bf16)) * kernels::kGemvMaxRows * N;
}

absl::StatusOr<const Gemm::Tuning*> Gemm::Tune(const kernels::bf16* w, int N, int K, bool out_f32,
                                               cudaStream_t stream, void* scratch,
                                               size_t scratch_bytes) {
  const auto key = std::make_tuple(N, K, out_f32);
  if (auto it = tuned_.find(key); it != tuned_.end()) return &it->second;
  if (2.0 * N * K <= kGemvMaxWeightBytes) return nullptr;
  const int rows = kernels::kGemvMaxRows;
  DevicePtr own;  // only where the caller's scratch is missing or too small
  if (scratch == nullptr || scratch_bytes < TuneScratchBytes(N, K, out_f32)) {
    auto mem = DeviceAlloc(TuneScratchBytes(N, K, out_f32));
    if (!mem.ok()) return mem.status();
    own = std::move(*mem);
    scratch = own.get();
  }
  const auto* xp = static_cast<const kernels::bf16*>(scratch);
  if (!kernels::GemvSupports(xp, w, 1, K)) return nullptr;
  void* y = static_cast<char*>(scratch) + TuneInputBytes(K);
  // x is zeros: the time is the weights'.
  ATTNRES_CUDA_RETURN(cudaMemsetAsync(scratch, 0, sizeof(kernels::bf16) * rows * K, stream));
  auto start_event = EventCreate(cudaEventDefault), stop_event = EventCreate(cudaEventDefault);
  if (!start_event.ok()) return start_event.status();
  if (!stop_event.ok()) return stop_event.status();
  cudaEvent_t start = start_event->get(), stop = stop_event->get();
  // One launch between two events: ms, or the launch's error.
  auto time = [&](bool gemv, int M) -> absl::StatusOr<double> {
    ATTNRES_CUDA_RETURN(cudaEventRecord(start, stream));
    if (gemv) {
      ATTNRES_CUDA_RETURN(kernels::Gemv(xp, w, y, M, N, K, out_f32, stream));
    } else if (auto st = RunCublasLt(xp, w, y, M, N, K, out_f32, stream); !st.ok()) {
      return st;
    }
    ATTNRES_CUDA_RETURN(cudaEventRecord(stop, stream));
    ATTNRES_CUDA_RETURN(cudaEventSynchronize(stop));
    float ms = 0;
    ATTNRES_CUDA_RETURN(cudaEventElapsedTime(&ms, start, stop));
    return ms;
  };
  Tuning t;
  t.N = N, t.K = K, t.out_f32 = out_f32;
  for (int M = 1; M <= rows; ++M) {
    std::vector<double> samples[2];               // [cuBLASLt, Gemv]
    for (int rep = -1; rep < kTuneReps; ++rep) {  // rep -1: the warm-up (plans, clocks)
      for (const bool gemv : {false, true}) {
        auto ms = time(gemv, M);
        if (!ms.ok()) return ms.status();
        if (rep >= 0) samples[gemv].push_back(*ms);
      }
    }
    for (std::vector<double>& v : samples) {
      std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
    }
    t.cublaslt_ms.push_back(samples[0][kTuneReps / 2]);
    t.gemv_ms.push_back(samples[1][kTuneReps / 2]);
  }
  return &tuned_.emplace(key, std::move(t)).first->second;
}

}  // namespace attnres::cuda
