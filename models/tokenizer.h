// Hugging Face tokenizer.json byte-level BPE (GPT-2 / Llama-3 / Qwen style): encode, decode and
// incremental decode. Owns the vocabulary, merges, added tokens and pre-tokenizer regexes; does
// not know about models or requests.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace attnres {

class Tokenizer {
 public:
  // Loads and validates tokenizer.json. Errors name the file and the offending key.
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromFile(const std::filesystem::path& path);
  // Same, from the file's text; `origin` names it in errors.
  static absl::StatusOr<std::unique_ptr<Tokenizer>> FromJsonText(std::string_view json_text,
                                                                 std::string_view origin);
  virtual ~Tokenizer() = default;

  // Text -> ids, equal to HF `tokenizers` Tokenizer.encode(text, add_special_tokens).ids.
  // Added/special tokens that occur literally in `text` are matched first. Invalid UTF-8 in
  // `text` is replaced by U+FFFD (as Python's bytes.decode(errors="replace")) before encoding.
  virtual std::vector<int32_t> Encode(std::string_view text, bool add_special_tokens) const = 0;

  // Ids -> text, equal to HF `tokenizers` Tokenizer.decode(ids, skip_special_tokens); byte
  // sequences that are not valid UTF-8 become U+FFFD. Ids out of range are skipped.
  virtual std::string Decode(std::span<const int32_t> ids, bool skip_special_tokens) const = 0;

  // The raw bytes a token stands for (byte-level tokens mapped back to bytes; added tokens as
  // their content). Empty for ids out of range.
  virtual std::string TokenBytes(int32_t id) const = 0;

  virtual std::optional<int32_t> TokenToId(std::string_view token) const = 0;
  virtual bool IsSpecial(int32_t id) const = 0;
  // Number of ids the tokenizer knows (max id + 1).
  virtual int32_t vocab_size() const = 0;
};

// Turns a stream of token ids into text pieces that are always complete UTF-8: bytes of a
// character split across tokens are held back until the character completes. One per stream.
class IncrementalDecoder {
 public:
  IncrementalDecoder(const Tokenizer& tokenizer, bool skip_special_tokens);
  // Returns the text that became complete with `id` (possibly empty).
  std::string Push(int32_t id);
  // Returns what is still held back, invalid bytes as U+FFFD. Call at end of stream.
  std::string Flush();

 private:
  const Tokenizer& tokenizer_;
  bool skip_special_tokens_;
  std::string pending_;  // bytes of an incomplete UTF-8 sequence
  bool join_with_spaces_ = false;  // tokenizer without a decoder: HF joins tokens with ' '
  bool started_ = false;           // a token was emitted (for join_with_spaces_)
};

}  // namespace attnres
