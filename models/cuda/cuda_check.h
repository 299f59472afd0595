// cudaError_t / cublasStatus_t -> absl::Status at the boundary between kernels/ and models/cuda.
// Errors carry the failing expression and location; nothing here aborts.
#pragma once

#include <cublas_api.h>
#include <cuda_runtime.h>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"

namespace attnres::cuda {

inline absl::Status CudaStatus(cudaError_t e, const char* what, const char* file, int line) {
  if (e == cudaSuccess) return absl::OkStatus();
  return absl::InternalError(absl::StrCat("CUDA error ", cudaGetErrorName(e), " (",
                                          cudaGetErrorString(e), ") in ", what, " at ", file, ":",
                                          line));
}

inline absl::Status CublasStatus(cublasStatus_t s, const char* what, const char* file, int line) {
  if (s == CUBLAS_STATUS_SUCCESS) return absl::OkStatus();
  return absl::InternalError(absl::StrCat("cuBLAS error ", static_cast<int>(s), " in ", what,
                                          " at ", file, ":", line));
}

}  // namespace attnres::cuda

#define ATTNRES_CUDA_RETURN(expr)                                                         \
  do {                                                                                    \
    if (auto _st = ::attnres::cuda::CudaStatus((expr), #expr, __FILE__, __LINE__);        \
        !_st.ok()) {                                                                      \
      return _st;                                                                         \
    }                                                                                     \
  } while (0)

#define ATTNRES_CUBLAS_RETURN(expr)                                                       \
  do {                                                                                    \
    if (auto _st = ::attnres::cuda::CublasStatus((expr), #expr, __FILE__, __LINE__);      \
        !_st.ok()) {                                                                      \
      return _st;                                                                         \
    }                                                                                     \
  } while (0)
