// tokenizer.json "model" of type BPE: vocabulary, ranked merges and the merge loop that turns
// one pre-tokenized word into ids. No dropout, no unk token, no byte fallback, no subword
// prefix/suffix (load errors). Does not split text or handle added tokens.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace attnres {

class BpeModel {
 public:
  static absl::StatusOr<BpeModel> FromJson(const nlohmann::json& model, std::string_view origin);

  // Appends the ids of `word`. Characters missing from the vocabulary are dropped (HF without
  // unk_token). Linear in the word's length times log: fine for megabyte-long words.
  void Tokenize(std::string_view word, std::vector<int32_t>* ids) const;

  std::optional<int32_t> TokenToId(std::string_view token) const;
  // nullptr when `id` is not in the vocabulary.
  const std::string* IdToToken(int32_t id) const;
  int32_t max_id() const { return static_cast<int32_t>(id_to_token_.size()) - 1; }

 private:
  struct Merge {
    int32_t rank;
    int32_t new_id;
  };
  static uint64_t PairKey(int32_t a, int32_t b) {
    return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
  }
  absl::Status LoadMerges(const nlohmann::json& merges, std::string_view origin);

  absl::flat_hash_map<std::string, int32_t> vocab_;
  std::vector<std::string> id_to_token_;         // [max_id + 1]; holes are empty and not in vocab_
  absl::flat_hash_map<uint64_t, Merge> merges_;  // (left id, right id) -> rank, merged id
  bool ignore_merges_ = false;
};

}  // namespace attnres
