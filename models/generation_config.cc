// Reading generation_config.json (optional) into GenerationConfig.
#include "models/generation_config.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "models/config_json.h"
#include "models/file_text.h"
#include "nlohmann/json.hpp"

namespace attnres {
namespace {

using nlohmann::json;

// Reads a number key into an unset-by-default field (float or int).
absl::Status ReadOptional(const json& j, absl::string_view origin, const char* key,
                          std::optional<float>* out) {
  double v = 0;
  if (!config_json::Has(j, key)) return absl::OkStatus();
  if (absl::Status s = config_json::ReadDouble(j, origin, key, &v); !s.ok()) return s;
  *out = static_cast<float>(v);
  return absl::OkStatus();
}
absl::Status ReadOptional(const json& j, absl::string_view origin, const char* key,
                          std::optional<int>* out) {
  int v = 0;
  if (!config_json::Has(j, key)) return absl::OkStatus();
  // Ranges are the API's (ValidateGenerationDefaults); here only the type and int's range.
  if (absl::Status s = config_json::ReadInt(j, origin, key, false, -(1 << 30), &v); !s.ok()) {
    return s;
  }
  *out = v;
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<GenerationConfig> ParseGenerationConfig(absl::string_view json_text,
                                                       absl::string_view origin) {
  json j = json::parse(json_text.begin(), json_text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(origin, ": not a JSON object"));
  }
  GenerationConfig g;
  for (absl::Status s :
       {ReadOptional(j, origin, "temperature", &g.temperature),
        ReadOptional(j, origin, "top_p", &g.top_p), ReadOptional(j, origin, "top_k", &g.top_k),
        ReadOptional(j, origin, "min_p", &g.min_p),
        ReadOptional(j, origin, "repetition_penalty", &g.repetition_penalty),
        ReadOptional(j, origin, "max_new_tokens", &g.max_new_tokens),
        config_json::ReadTokenIds(j, origin, "eos_token_id", &g.eos_token_ids)}) {
    if (!s.ok()) return s;
  }
  return g;
}

absl::StatusOr<GenerationConfig> LoadGenerationConfig(const std::filesystem::path& model_dir) {
  const std::filesystem::path path = model_dir / "generation_config.json";
  absl::StatusOr<std::string> text = ReadFileText(path);
  if (absl::IsNotFound(text.status())) return GenerationConfig{};  // optional
  if (!text.ok()) return text.status();
  return ParseGenerationConfig(*text, path.string());
}

}  // namespace attnres
