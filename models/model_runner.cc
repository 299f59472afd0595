// Backend selection for CreateModelRunner.
#include "models/model_runner.h"

#include "models/cpu_runner.h"
#ifdef ATTNRES_HAVE_CUDA
#include "models/cuda/cuda_runner.h"
#endif

namespace attnres {

absl::StatusOr<std::unique_ptr<ModelRunner>> CreateModelRunner(
    const std::filesystem::path& model_dir, const RunnerOptions& options) {
#ifdef ATTNRES_HAVE_CUDA
  if (options.device == DeviceKind::kCuda ||
      (options.device == DeviceKind::kAuto && CudaDeviceAvailable())) {
    return CreateCudaRunner(model_dir, options);  // --tensor-parallel N: GPUs 0..N-1
  }
#else
  if (options.device == DeviceKind::kCuda) {
    return absl::FailedPreconditionError(
        "--device=cuda: this binary was built without the CUDA backend");
  }
#endif
  return CreateCpuRunner(model_dir, options);
}

}  // namespace attnres
