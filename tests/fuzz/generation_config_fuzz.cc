// Fuzz target: generation_config.json text through ParseGenerationConfig, then the API's rules for
// defaults (ValidateGenerationDefaults, vocabulary of 300). Each step either accepts or gives
// INVALID_ARGUMENT naming the file; accepted defaults hold only in-range values.
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"
#include "models/generation_config.h"
#include "server/grpc/request_validation.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  constexpr char kOrigin[] = "fuzz/generation_config.json";
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  auto g = attnres::ParseGenerationConfig(text, kOrigin);
  absl::Status status = g.ok() ? attnres::ValidateGenerationDefaults(
                                     *g, attnres::ValidationLimits{.vocab_size = 300}, kOrigin)
                               : g.status();
  if (!status.ok()) {
    FUZZ_CHECK(status.code() == absl::StatusCode::kInvalidArgument, "errors are INVALID_ARGUMENT");
    FUZZ_CHECK(std::string(status.message()).find(kOrigin) != std::string::npos,
               "errors name the file");
    return 0;
  }
  FUZZ_CHECK(!g->temperature || (*g->temperature >= 0 && *g->temperature <= 100),
             "an accepted temperature is in range");
  FUZZ_CHECK(!g->top_k || (*g->top_k >= 0 && *g->top_k <= 300), "an accepted top_k is in range");
  FUZZ_CHECK(!g->top_p || (*g->top_p > 0 && *g->top_p <= 1), "an accepted top_p is in range");
  for (int32_t id : g->eos_token_ids) FUZZ_CHECK(id >= 0 && id < 300, "EOS ids are in the vocab");
  return 0;
}
