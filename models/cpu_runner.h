// The CPU backend: fp32 weights, a paged fp32 KV pool, CpuForward and the host sampler behind
// the ModelRunner interface.
#pragma once

#include <filesystem>
#include <memory>

#include "absl/status/statusor.h"
#include "models/model_runner.h"

namespace attnres {

absl::StatusOr<std::unique_ptr<ModelRunner>> CreateCpuRunner(const std::filesystem::path& model_dir,
                                                             const RunnerOptions& options);

}  // namespace attnres
