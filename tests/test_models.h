// Test helpers: temporary random model directories and all-position logits from the CPU
// forward pass over a chosen chunking of the prompt (exercising the paged KV cache).
#pragma once

#include <filesystem>
#include <string>
#include <vector>

#include "models/cpu_forward.h"
#include "models/tools/random_model.h"

namespace attnres::testing {

// A fresh directory under the test temp dir, removed by the caller's fixture if wanted.
std::filesystem::path TempDir(const std::string& name);

// Writes a random model for `config` and returns its directory.
std::filesystem::path MakeModel(const std::string& name, const ModelConfig& config,
                                const RandomModelOptions& options);

struct LoadedCpuModel {
  ModelConfig config;
  std::unique_ptr<SafetensorsStore> store;
  CpuWeights weights;
};
LoadedCpuModel LoadCpuModel(const std::filesystem::path& dir);

// Logits [ids.size()][vocab] for every position, feeding the prompt in chunks of the given sizes
// (summing to ids.size(); empty = one chunk) through pages handed out in a shuffled order.
// mix_weights, when non-null, receives the weights of the last position.
std::vector<std::vector<float>> AllLogits(const LoadedCpuModel& model,
                                          const std::vector<int32_t>& ids,
                                          std::vector<int> chunks = {}, int page_size = 4,
                                          std::vector<float>* mix_weights = nullptr,
                                          Communicator* comm = nullptr,
                                          int seq_shard_min_tokens = 256);

// Relative L2 distance ||a - b|| / ||b||.
double RelL2(const std::vector<float>& a, const std::vector<float>& b);

}  // namespace attnres::testing
