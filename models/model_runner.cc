// Backend selection for CreateModelRunner.
#include "models/model_runner.h"

#include "absl/strings/str_cat.h"
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
    if (options.tensor_parallel != 1) {
      return absl::UnimplementedError(absl::StrCat(
          "--tensor-parallel ", options.tensor_parallel,
          " on GPUs: the CUDA runner does not shard yet (NCCL communicator: "
          "models/parallel/nccl_communicator.h); use --device cpu or --tensor-parallel 1"));
    }
    return CreateCudaRunner(model_dir, options);
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
