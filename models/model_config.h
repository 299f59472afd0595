// ModelConfig: config.json of a Llama/Qwen-family decoder with optional Attention Residuals,
// parsed and validated once at load. Also the static AttnRes layout (which mix reads which
// sources), derived from the config. Knows nothing about weights or devices.
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace attnres {

enum class ResidualMode {
  kStandard,  // hidden += f(norm(hidden))
  kBlock,     // Block AttnRes, attn_res_block_size transformer layers per bank slot
  kFull,      // Full AttnRes: every sublayer output is its own source
};
const char* ResidualModeName(ResidualMode mode);

// rope_scaling of "llama3" type (the only kind besides none that we accept).
struct RopeScaling {
  double factor = 1.0;
  double low_freq_factor = 1.0;
  double high_freq_factor = 4.0;
  int original_max_position_embeddings = 8192;
};

struct ModelConfig {
  std::string architecture;        // architectures[0], or model_type when absent
  int hidden_size = 0;             // d
  int intermediate_size = 0;       // SwiGLU width
  int num_layers = 0;              // Lt, transformer layers
  int num_heads = 0;
  int num_kv_heads = 0;            // GQA groups; divides num_heads
  int head_dim = 0;                // defaults to hidden_size / num_heads
  int vocab_size = 0;
  int max_position_embeddings = 0;
  double rope_theta = 10000.0;
  double rms_norm_eps = 1e-6;
  std::optional<RopeScaling> rope_scaling;
  bool tie_word_embeddings = false;
  int bos_token_id = -1;               // -1: none
  std::vector<int32_t> eos_token_ids;  // may be empty
  ResidualMode residual_mode = ResidualMode::kStandard;
  int attn_res_block_size = 0;     // Block mode: transformer layers per block (> 0)

  bool attn_res() const { return residual_mode != ResidualMode::kStandard; }
  int q_dim() const { return num_heads * head_dim; }
  int kv_dim() const { return num_kv_heads * head_dim; }
};

// Parses config.json text. `origin` names the file in errors ("<dir>/config.json").
absl::StatusOr<ModelConfig> ParseModelConfig(absl::string_view json_text, absl::string_view origin);
// Reads <dir>/config.json.
absl::StatusOr<ModelConfig> LoadModelConfig(const std::filesystem::path& model_dir);
// Serializes the keys we read, in the Hugging Face spelling (used by the random-model tool).
std::string ModelConfigToJson(const ModelConfig& config);

// Where each AttnRes mix sits and how many sources it reads. Mixes are numbered in forward
// order: 2*l for the attention input of layer l, 2*l+1 for its MLP input, 2*Lt for the final mix.
// Sublayer s (same numbering) snapshots the running prefix into the bank before it runs when
// snapshot_before[s] is set (Block: s % (2*Bs) == 0; Full: every s).
struct MixLayout {
  int num_mixes = 0;                 // 2*Lt + 1 (0 for standard models)
  int num_bank_slots = 0;            // snapshots per forward pass
  std::vector<int> num_sources;      // [num_mixes]; 1 for the first attention (no mix runs)
  std::vector<int> weight_offset;    // [num_mixes + 1] prefix sums of num_sources
  std::vector<bool> snapshot_before; // [2*Lt]
  // [2*Lt]: for a snapshot sublayer s, the mixes s+1 .. s+later_mixes[s] read exactly the bank
  // that s completes (the rest of its block; after the last snapshot, the final mix too), so
  // they can be scored against it at once (two-phase mixing); 0 for other sublayers.
  std::vector<int> later_mixes;

  static MixLayout For(const ModelConfig& config);
  int total_weights() const { return weight_offset.empty() ? 0 : weight_offset.back(); }
};

}  // namespace attnres
