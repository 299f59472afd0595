// tokenizer.json "pre_tokenizer": splits normalized text into the words BPE runs on. Supports
// null, ByteLevel (add_prefix_space, use_regex with GPT-2's regex), Split (Regex or String
// pattern, Isolated, not inverted) and Sequence of those. Does not know the vocabulary.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "models/regex.h"
#include "nlohmann/json.hpp"

namespace attnres {

class PreTokenizer {
 public:
  // `j` is the "pre_tokenizer" value (may be null); `origin` names the file in errors.
  static absl::StatusOr<PreTokenizer> FromJson(const nlohmann::json& j, std::string_view origin);

  // Appends the words of `text` (valid UTF-8) to `words`, byte-level mapped where a ByteLevel
  // step says so. Empty pieces are dropped, as in HF's PreTokenizedString.
  void Split(std::string_view text, std::vector<std::string>* words) const;

 private:
  struct Step {
    enum class Kind { kSplit, kByteLevel } kind;
    std::shared_ptr<const Regex> regex;  // kSplit, or kByteLevel with use_regex
    bool add_prefix_space = false;       // kByteLevel
  };
  static absl::Status AddSteps(const nlohmann::json& j, std::string_view origin,
                               const std::string& key, std::vector<Step>* steps);
  static void Apply(const Step& step, std::string_view piece, std::vector<std::string>* out);

  std::vector<Step> steps_;
};

}  // namespace attnres
