// generation_config.json: the model author's default sampling parameters, applied by the API
// layer to fields a request leaves unset. Optional file; absent keys stay unset.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

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

// Parses generation_config.json text: every key's type is checked (errors name `origin` and the
// key); the value ranges are the API's and checked where requests are (ValidateGenerationDefaults
// in server/grpc/request_validation.h). Keys other than these are ignored.
absl::StatusOr<GenerationConfig> ParseGenerationConfig(absl::string_view json_text,
                                                       absl::string_view origin);
// Reads <dir>/generation_config.json; a missing file gives an empty GenerationConfig.
absl::StatusOr<GenerationConfig> LoadGenerationConfig(const std::filesystem::path& model_dir);

}  // namespace attnres
