// Fuzz target: the byte-level BPE tokenizers of tests/data/tokenizer (tiny, GPT-2, Llama-3, Qwen2).
// Input: byte 0 picks the tokenizer, byte 1 the mode, the rest is the payload.
// - Text mode: Encode gives ids in range; for the tokenizers without a normalizer or prefix space
//   (GPT-2, Llama-3) Decode(Encode(text)) is the text with invalid UTF-8 replaced by U+FFFD.
// - Both modes: the ids (encoded, or the payload read as int32s) streamed through an
//   IncrementalDecoder give only valid UTF-8 pieces, and Decode's output is valid UTF-8.
#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "models/tokenizer.h"
#include "models/utf8.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

struct Loaded {
  std::unique_ptr<attnres::Tokenizer> tokenizer;
  bool exact_round_trip;  // no normalizer, no prefix space
};

const std::vector<Loaded>& Tokenizers() {
  static const std::vector<Loaded>* all = [] {
    auto* out = new std::vector<Loaded>;
    for (const auto& [name, exact] : {std::pair<const char*, bool>{"tiny", false},
                                      {"gpt2", true},
                                      {"llama3", true},
                                      {"qwen2", false}}) {
      const std::string path =
          std::string(ATTNRES_SOURCE_DIR) + "/tests/data/tokenizer/" + name + "/tokenizer.json";
      auto tokenizer = attnres::Tokenizer::FromFile(path);
      FUZZ_CHECK(tokenizer.ok(), path.c_str());
      out->push_back({std::move(*tokenizer), exact});
    }
    return out;
  }();
  return *all;
}

void CheckDecoding(const attnres::Tokenizer& tokenizer, const std::vector<int32_t>& ids,
                   bool skip_special) {
  const std::string whole = tokenizer.Decode(ids, skip_special);
  FUZZ_CHECK(attnres::utf8::IsValid(whole), "Decode gives valid UTF-8");
  attnres::IncrementalDecoder stream(tokenizer, skip_special);
  for (int32_t id : ids) {
    FUZZ_CHECK(attnres::utf8::IsValid(stream.Push(id)), "each streamed piece is valid UTF-8");
  }
  FUZZ_CHECK(attnres::utf8::IsValid(stream.Flush()), "the flushed tail is valid UTF-8");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const Loaded& loaded = Tokenizers()[data[0] % Tokenizers().size()];
  const attnres::Tokenizer& tokenizer = *loaded.tokenizer;
  const bool special = data[1] & 1;  // add_special_tokens / skip_special_tokens
  const std::string_view payload(reinterpret_cast<const char*>(data + 2), size - 2);
  std::vector<int32_t> ids;
  if (data[1] & 2) {
    ids.resize(payload.size() / 4);
    if (!ids.empty()) std::memcpy(ids.data(), payload.data(), ids.size() * 4);
  } else {
    ids = tokenizer.Encode(payload, special);
    for (int32_t id : ids) {
      FUZZ_CHECK(id >= 0 && id < tokenizer.vocab_size(), "encoded ids are in the vocabulary");
    }
    if (loaded.exact_round_trip) {
      const std::vector<int32_t> plain = special ? tokenizer.Encode(payload, false) : ids;
      FUZZ_CHECK(tokenizer.Decode(plain, false) == attnres::utf8::Lossy(payload),
                 "Decode(Encode(text)) is the text, invalid bytes as U+FFFD");
    }
  }
  CheckDecoding(tokenizer, ids, special);
  return 0;
}
