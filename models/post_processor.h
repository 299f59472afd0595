// tokenizer.json "post_processor" for single sequences: null, ByteLevel (offsets only, so a
// no-op on ids), TemplateProcessing (special tokens around $A) and Sequence of those. Pair
// templates are parsed by HF but unused here: the server encodes single sequences only.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace attnres {

class PostProcessor {
 public:
  static absl::StatusOr<PostProcessor> FromJson(const nlohmann::json& j, std::string_view origin);

  // Wraps `ids` in the template's special tokens when `add_special_tokens`.
  void Apply(bool add_special_tokens, std::vector<int32_t>* ids) const;
  // The largest id a template adds (-1 for none), to check it against the vocabulary.
  int32_t max_id() const;

 private:
  struct Template {
    std::vector<int32_t> before, after;  // ids around the sequence
  };
  static absl::Status AddProcessors(const nlohmann::json& j, std::string_view origin,
                                    const std::string& key, std::vector<Template>* templates);
  static absl::StatusOr<Template> ParseTemplate(const nlohmann::json& j, std::string_view origin,
                                                const std::string& key);
  std::vector<Template> templates_;  // applied in order, each wrapping the previous result
};

}  // namespace attnres
