// Fuzz target: config.json text through ParseModelConfig. An accepted config must give a
// consistent AttnRes layout and survive ModelConfigToJson -> ParseModelConfig unchanged.
#include <cstdint>

#include "absl/strings/string_view.h"
#include "models/model_config.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

bool SameConfig(const attnres::ModelConfig& a, const attnres::ModelConfig& b) {
  const bool same_scaling =
      a.rope_scaling.has_value() == b.rope_scaling.has_value() &&
      (!a.rope_scaling || (a.rope_scaling->factor == b.rope_scaling->factor &&
                           a.rope_scaling->low_freq_factor == b.rope_scaling->low_freq_factor &&
                           a.rope_scaling->high_freq_factor == b.rope_scaling->high_freq_factor &&
                           a.rope_scaling->original_max_position_embeddings ==
                               b.rope_scaling->original_max_position_embeddings));
  return same_scaling && a.hidden_size == b.hidden_size &&
         a.intermediate_size == b.intermediate_size && a.num_layers == b.num_layers &&
         a.num_heads == b.num_heads && a.num_kv_heads == b.num_kv_heads &&
         a.head_dim == b.head_dim && a.vocab_size == b.vocab_size &&
         a.max_position_embeddings == b.max_position_embeddings && a.rope_theta == b.rope_theta &&
         a.rms_norm_eps == b.rms_norm_eps && a.tie_word_embeddings == b.tie_word_embeddings &&
         a.bos_token_id == b.bos_token_id && a.eos_token_ids == b.eos_token_ids &&
         a.residual_mode == b.residual_mode && a.attn_res_block_size == b.attn_res_block_size;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  auto config = attnres::ParseModelConfig(text, "fuzz/config.json");
  if (!config.ok()) {
    FUZZ_CHECK(config.status().message().find("fuzz/config.json") != std::string::npos,
               "a config error names the file");
    return 0;
  }
  const attnres::ModelConfig& c = *config;
  FUZZ_CHECK(c.hidden_size > 0 && c.num_layers > 0 && c.num_heads > 0 && c.num_kv_heads > 0 &&
                 c.head_dim > 0 && c.vocab_size > 0 && c.intermediate_size > 0,
             "an accepted config has positive sizes");
  FUZZ_CHECK(c.num_heads % c.num_kv_heads == 0, "kv heads divide query heads");
  const attnres::MixLayout layout = attnres::MixLayout::For(c);
  if (c.attn_res()) {
    FUZZ_CHECK(layout.num_mixes == 2 * c.num_layers + 1, "one mix per sublayer plus the final");
    FUZZ_CHECK(static_cast<int>(layout.num_sources.size()) == layout.num_mixes &&
                   static_cast<int>(layout.weight_offset.size()) == layout.num_mixes + 1,
               "layout arrays sized by the mix count");
    FUZZ_CHECK(layout.total_weights() > 0, "an AttnRes model mixes something");
  } else {
    FUZZ_CHECK(layout.num_mixes == 0, "a standard model has no mixes");
  }
  auto again = attnres::ParseModelConfig(attnres::ModelConfigToJson(c), "fuzz/round-trip");
  FUZZ_CHECK(again.ok(), "ModelConfigToJson's output parses");
  FUZZ_CHECK(SameConfig(c, *again), "ModelConfigToJson -> ParseModelConfig keeps every field");
  return 0;
}
