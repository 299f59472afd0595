// Writes a complete model directory (config.json, safetensors, tokenizer.json,
// generation_config.json) with seeded random weights for any config: standard, Block or Full
// AttnRes, non-zero pseudo-queries. Used by tests, CI, the serve command before a trained model
// exists, and the GPU benchmarks at 1B/8B shapes.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "absl/status/statusor.h"
#include "models/model_config.h"
#include "models/safetensors.h"

namespace attnres {

struct RandomModelOptions {
  uint64_t seed = 1;
  DType dtype = DType::kF32;
  double query_std = -1.0;     // std of pseudo-queries; < 0: 1/sqrt(d); 0: all-zero queries
  bool qk_norm = false;        // write Qwen3-style q_norm/k_norm
  int num_shards = 1;          // > 1 writes model-0000i-of-0000n + index.json
  std::string tokenizer_json;  // copy this tokenizer.json; empty: a byte-level tokenizer
};

// Named shapes: tiny-std, tiny-block, tiny-full, small-block, llama-1b, llama-1b-block,
// llama-8b, llama-8b-block.
absl::StatusOr<ModelConfig> RandomModelPreset(const std::string& name);

absl::Status WriteRandomModel(const ModelConfig& config, const RandomModelOptions& options,
                              const std::filesystem::path& out_dir);

// tokenizer.json text of a pure byte-level BPE: ids 0..255 are the bytes (GPT-2 byte-to-unicode
// alphabet, no merges), id 256 is <|endoftext|>.
std::string ByteLevelTokenizerJson();

}  // namespace attnres
