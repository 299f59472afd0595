// tokenizer.json "added_tokens": the tokens matched literally in the input before normalization
// and pre-tokenization (leftmost-longest, as HF's aho-corasick), with lstrip/rstrip/single_word.
// Does not run BPE; the Tokenizer encodes the text between matches.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace attnres {

struct AddedToken {
  int32_t id = 0;
  std::string content;
  bool special = false;
  bool lstrip = false;
  bool rstrip = false;
  bool single_word = false;
  bool normalized = false;  // matched after normalization instead of on the raw text
  std::string match;        // what is matched: content, normalized when `normalized` is set
};

class AddedVocabulary {
 public:
  // `normalize` maps a normalized token's content to the text it is matched against (HF
  // normalizes those contents with the tokenizer's normalizer).
  static absl::StatusOr<AddedVocabulary> FromJson(
      const nlohmann::json& added_tokens, std::string_view origin,
      const std::function<std::string(std::string_view)>& normalize);

  // A byte range of the split text: an added token (id >= 0) or plain text (id == -1).
  struct Piece {
    size_t begin, end;
    int32_t id;
  };
  // Splits `text` around the tokens whose `normalized` flag equals `normalized`.
  std::vector<Piece> Split(std::string_view text, bool normalized) const;

  const AddedToken* FindById(int32_t id) const;
  std::optional<int32_t> TokenToId(std::string_view content) const;
  // HF decides "special" by content: a vocab token spelled like a special token is one too.
  bool IsSpecialContent(std::string_view content) const {
    return special_contents_.contains(absl::string_view(content.data(), content.size()));
  }
  int32_t max_id() const { return max_id_; }

 private:
  // Longest token of the given trie that matches at `pos`, or nullptr.
  const AddedToken* LongestAt(std::string_view text, size_t pos, bool normalized) const;

  std::vector<AddedToken> tokens_;
  absl::flat_hash_map<int32_t, size_t> by_id_;
  absl::flat_hash_map<std::string, size_t> by_content_;
  absl::flat_hash_set<std::string> special_contents_;
  // [normalized][first byte] -> indices into tokens_, longest content first.
  std::array<std::array<std::vector<size_t>, 256>, 2> by_first_byte_;
  int32_t max_id_ = -1;
};

}  // namespace attnres
