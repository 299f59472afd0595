// The CUDA backend behind ModelRunner: bf16 weights and a paged bf16 KV pool on the GPU, the
// forward pass of cuda_forward.h, and sampling on the device (one device-to-host copy per step).
// Penalties, logprobs, prompt logprobs and mix weights take the host path: their logit rows are
// copied back and sampled with models/sampler.h.
#pragma once

#include <filesystem>
#include <memory>

#include "absl/status/statusor.h"
#include "models/model_runner.h"

namespace attnres {

// Whether a CUDA device is present and usable.
bool CudaDeviceAvailable();

absl::StatusOr<std::unique_ptr<ModelRunner>> CreateCudaRunner(const std::filesystem::path& model_dir,
                                                              const RunnerOptions& options);

// A runner over seeded random weights made on the device (benchmarks at 1B/8B shapes).
absl::StatusOr<std::unique_ptr<ModelRunner>> CreateRandomCudaRunner(const ModelConfig& config,
                                                                    uint64_t seed,
                                                                    const RunnerOptions& options);

}  // namespace attnres
