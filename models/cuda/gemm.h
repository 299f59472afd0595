// bf16 GEMMs through cuBLASLt for the forward pass: y[M, N] = x[M, K] . w[N, K]^T (torch Linear,
// row-major), fp32 accumulation, bf16 or fp32 output. Descriptors and the heuristic's algorithm
// are cached per shape; one fixed workspace keeps calls capturable in CUDA graphs.
#pragma once

#include <cublasLt.h>

#include <map>
#include <memory>
#include <tuple>

#include "absl/status/statusor.h"
#include "kernels/ops.h"
#include "models/cuda/device_memory.h"

namespace attnres::cuda {

class Gemm {
 public:
  static absl::StatusOr<std::unique_ptr<Gemm>> Create();
  ~Gemm();

  // out is bf16 [M, N] unless out_f32, then fp32 [M, N].
  absl::Status Run(const kernels::bf16* x, const kernels::bf16* w, void* out, int M, int N, int K,
                   bool out_f32, cudaStream_t stream);

 private:
  struct Plan {
    cublasLtMatmulDesc_t op = nullptr;
    cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
    cublasLtMatmulAlgo_t algo;
  };
  absl::StatusOr<const Plan*> PlanFor(int M, int N, int K, bool out_f32);

  cublasLtHandle_t handle_ = nullptr;
  DevicePtr workspace_;
  size_t workspace_bytes_ = 0;
  std::map<std::tuple<int, int, int, bool>, Plan> plans_;
};

}  // namespace attnres::cuda
