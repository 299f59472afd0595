// Fuzz target: a safetensors file's bytes through ParseSafetensors. Either an error, or views whose
// bytes lie inside the input and match shape x dtype exactly.
#include <cstdint>
#include <span>

#include "models/safetensors.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto parsed = attnres::ParseSafetensors(std::span<const uint8_t>(data, size), "fuzz.safetensors");
  if (!parsed.ok()) {
    FUZZ_CHECK(parsed.status().message().find("fuzz.safetensors") != std::string::npos,
               "a parse error names the file");
    return 0;
  }
  for (const auto& [name, view] : *parsed) {
    uint64_t bytes = attnres::DTypeSize(view.dtype);
    for (int64_t d : view.shape) {
      FUZZ_CHECK(d >= 0, "dimensions are non-negative");
      FUZZ_CHECK(!__builtin_mul_overflow(bytes, static_cast<uint64_t>(d), &bytes),
                 "an accepted shape's byte count fits 64 bits");
    }
    FUZZ_CHECK(view.data >= data && view.data <= data + size, "a view starts inside the file");
    FUZZ_CHECK(bytes <= static_cast<uint64_t>(data + size - view.data),
               "a view's shape x dtype bytes end inside the file");
    FUZZ_CHECK(name.rfind("language_model.", 0) != 0, "the Kimi prefix is stripped");
  }
  return 0;
}
