// ModelRunner: the only model-side object the engine calls. It owns the weights and the paged KV
// pool on its device, executes one ragged batch (forward + sampling) per step, and reports its
// capacity. CPU and CUDA backends implement it; the engine never sees tensors or devices.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "models/model_config.h"
#include "models/sampling_params.h"

namespace attnres {

// One sequence's part of a step: `num_new_tokens` tokens starting at KV position `start_pos`
// (the tokens before it are already in the cache).
struct SequenceBatchEntry {
  int num_new_tokens = 0;
  int start_pos = 0;
  bool sample = false;              // sample a token after the last new token
  const SamplingParams* sampling = nullptr;   // when sample
  uint64_t sample_index = 0;        // index of the token being sampled (seeds the RNG stream)
  // Tokens the penalties look at (prompt + generated so far), when penalties are on.
  const std::vector<int32_t>* history = nullptr;
  int prompt_len = 0;               // history[0:prompt_len] is the prompt
  // Ids the sampler must not pick at this token (min_tokens: the EOS and stop ids), or null.
  const std::vector<int32_t>* suppressed = nullptr;
  // Structured output: only these ids may be sampled at this token, or null (any).
  const TokenBitmask* allowed = nullptr;
  int logprobs = -1;                // -1: none, else top-n alternatives for the sampled token
  int prompt_logprobs = -1;         // -1: none, else logprobs of prompt tokens (see below)
  int32_t next_prompt_token = -1;   // prompt token right after this chunk, if the prompt goes on
  bool return_mix_weights = false;  // depth-attention weights of the sampled position
};

// A ragged batch in the layout the GPU kernels read. Tokens of sequence i are
// token_ids[query_indptr[i] : query_indptr[i+1]].
struct StepBatch {
  std::vector<int32_t> token_ids;        // [num_tokens]
  std::vector<int32_t> positions;        // [num_tokens] absolute positions
  std::vector<int32_t> query_indptr;     // [num_seqs + 1]
  // Paged KV, CSR: pages of sequence i are kv_page_indices[kv_page_indptr[i]:kv_page_indptr[i+1]],
  // covering positions [0, start_pos + num_new_tokens); the last page holds kv_last_page_len[i].
  std::vector<int32_t> kv_page_indptr;   // [num_seqs + 1]
  std::vector<int32_t> kv_page_indices;  // [total pages]
  std::vector<int32_t> kv_last_page_len; // [num_seqs], in [1, page_size]
  std::vector<SequenceBatchEntry> seqs;  // [num_seqs]

  int num_tokens() const { return static_cast<int>(token_ids.size()); }
  int num_seqs() const { return static_cast<int>(seqs.size()); }
};

struct SequenceStepOutput {
  int32_t token_id = -1;                 // sampled token, when entry.sample
  TokenLogprob logprob;                  // when entry.logprobs >= 0
  // When entry.prompt_logprobs >= 0: element k is the logprob of the prompt token at position
  // start_pos + k + 1 given all before it, for every such token this step's rows predict (the
  // chunk's later tokens, then next_prompt_token if set).
  std::vector<TokenLogprob> prompt_logprobs;
  std::vector<float> mix_weights;        // [MixLayout::total_weights()] when asked
};

struct StepOutput {
  std::vector<SequenceStepOutput> seqs;  // [num_seqs]
};

enum class DeviceKind { kAuto, kCpu, kCuda };

struct RunnerOptions {
  DeviceKind device = DeviceKind::kAuto;
  int kv_page_size = 16;
  int64_t kv_cache_bytes = 0;             // 0: backend default
  double kv_cache_memory_fraction = 0.85; // GPU: of free memory after weights
  int max_num_seqs = 64;                  // sizes per-step buffers
  int max_num_batched_tokens = 2048;
  int tensor_parallel = 1;                // ranks each layer is split across (1: no split)
  bool cuda_graphs = true;                // CUDA: replay pure decode steps as CUDA graphs
};

class ModelRunner {
 public:
  virtual ~ModelRunner() = default;
  virtual const ModelConfig& config() const = 0;
  virtual const MixLayout& mix_layout() const = 0;
  virtual int kv_page_size() const = 0;
  virtual int64_t kv_num_pages() const = 0;
  virtual int64_t num_parameters() const = 0;
  virtual std::string device_name() const = 0;
  virtual std::string compute_dtype() const = 0;
  // Runs the forward pass over the batch, writes its K/V into the given pages, and samples.
  // An error is fatal for the runner (the engine fails open requests and goes unhealthy).
  virtual absl::StatusOr<StepOutput> Execute(const StepBatch& batch) = 0;
};

// Loads weights from a model directory onto the chosen device (auto: CUDA when a GPU is usable
// and the binary has the CUDA backend, else CPU).
absl::StatusOr<std::unique_ptr<ModelRunner>> CreateModelRunner(
    const std::filesystem::path& model_dir, const RunnerOptions& options);

}  // namespace attnres
