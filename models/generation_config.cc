// Reading generation_config.json (optional) into GenerationConfig.
#include "models/generation_config.h"

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace attnres {

absl::StatusOr<GenerationConfig> LoadGenerationConfig(const std::filesystem::path& model_dir) {
  GenerationConfig g;
  std::filesystem::path path = model_dir / "generation_config.json";
  std::ifstream in(path);
  if (!in) return g;
  std::stringstream ss;
  ss << in.rdbuf();
  nlohmann::json j = nlohmann::json::parse(ss.str(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::InvalidArgumentError(absl::StrCat(path.string(), ": not a JSON object"));
  }
  auto number = [&](const char* key, auto* out) -> absl::Status {
    auto it = j.find(key);
    if (it == j.end() || it->is_null()) return absl::OkStatus();
    if (!it->is_number()) {
      return absl::InvalidArgumentError(
          absl::StrCat(path.string(), ": key \"", key, "\" must be a number"));
    }
    *out = it->get<typename std::remove_reference_t<decltype(**out)>>();
    return absl::OkStatus();
  };
  for (auto st : {number("temperature", &g.temperature), number("top_p", &g.top_p),
                  number("top_k", &g.top_k), number("min_p", &g.min_p),
                  number("repetition_penalty", &g.repetition_penalty),
                  number("max_new_tokens", &g.max_new_tokens)}) {
    if (!st.ok()) return st;
  }
  if (auto it = j.find("eos_token_id"); it != j.end()) {
    if (it->is_number_integer()) g.eos_token_ids.push_back(it->get<int32_t>());
    if (it->is_array()) {
      for (const auto& v : *it) {
        if (v.is_number_integer()) g.eos_token_ids.push_back(v.get<int32_t>());
      }
    }
  }
  return g;
}

}  // namespace attnres
