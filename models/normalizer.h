// tokenizer.json "normalizer": null, NFC, NFD, NFKC, NFKD or a Sequence of those, through ICU.
// Anything else (lowercasing, replacements, ...) is a load error, not silently skipped.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace attnres {

class Normalizer {
 public:
  static absl::StatusOr<Normalizer> FromJson(const nlohmann::json& j, std::string_view origin);

  bool empty() const { return forms_.empty(); }
  // Applies every form in order to valid UTF-8 text.
  std::string Normalize(std::string_view text) const;

 private:
  enum class Form { kNfc, kNfd, kNfkc, kNfkd };
  static absl::Status AddForms(const nlohmann::json& j, std::string_view origin,
                               const std::string& key, std::vector<Form>* forms);
  std::vector<Form> forms_;
};

}  // namespace attnres
