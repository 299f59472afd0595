// Runtime limits of the engine, parsed from flags in server/main.cc. Defaults sit next to fields.
#pragma once

#include <cstdint>
#include <vector>

namespace attnres {

struct EngineConfig {
  int max_model_len = 0;             // 0: the model's max_position_embeddings
  int max_num_seqs = 64;             // sequences per step
  int max_num_batched_tokens = 2048; // tokens per step (prefill chunks + decodes)
  int max_queued_requests = 256;     // waiting requests beyond which Submit refuses
  int kv_page_size = 16;             // tokens per KV page
  int64_t kv_cache_bytes = 0;        // 0: derive (CPU: 1 GiB; GPU: fraction of free memory)
  double kv_cache_memory_fraction = 0.85;  // GPU: fraction of free memory after weights
  bool enable_prefix_caching = true; // share full prompt pages between requests
  int default_max_tokens = 4096;     // when a request leaves max_tokens unset (capped by context)
  std::vector<int32_t> extra_eos_token_ids;  // generation_config.json's, on top of config.json's
};

}  // namespace attnres
