// Fuzz target: tokenizer.json text through Tokenizer::FromJsonText. Either an error naming the
// file, or a tokenizer that encodes and decodes a fixed sample without crashing and whose ids
// stay in its vocabulary.
#include <cstdint>
#include <string>
#include <string_view>

#include "models/tokenizer.h"
#include "models/utf8.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  auto tokenizer = attnres::Tokenizer::FromJsonText(text, "fuzz/tokenizer.json");
  if (!tokenizer.ok()) {
    FUZZ_CHECK(tokenizer.status().message().find("fuzz/tokenizer.json") != std::string::npos,
               "a tokenizer error names the file");
    return 0;
  }
  const attnres::Tokenizer& t = **tokenizer;
  for (bool special : {false, true}) {
    const auto ids = t.Encode("Hello, world! 123 \xC3\xA9t\xC3\xA9 <|endoftext|>\n\t x", special);
    for (int32_t id : ids) {
      FUZZ_CHECK(id >= 0 && id < t.vocab_size(), "encoded ids are in the vocabulary");
    }
    FUZZ_CHECK(attnres::utf8::IsValid(t.Decode(ids, special)), "Decode gives valid UTF-8");
  }
  return 0;
}
