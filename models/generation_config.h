// generation_config.json: the model author's default sampling parameters, applied by the API
// layer to fields a request leaves unset. Optional file; absent keys stay unset.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"

namespace attnres {

struct GenerationConfig {
  std::optional<float> temperature;
  std::optional<float> top_p;
  std::optional<int> top_k;
  std::optional<float> min_p;
  std::optional<float> repetition_penalty;
  std::optional<int> max_new_tokens;
  std::vector<int32_t> eos_token_ids;  // extra stop ids (merged with config.json's)
};

// Reads <dir>/generation_config.json; a missing file gives an empty GenerationConfig.
absl::StatusOr<GenerationConfig> LoadGenerationConfig(const std::filesystem::path& model_dir);

}  // namespace attnres
