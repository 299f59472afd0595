// The engine seam: the only thing server/grpc talks to. One engine thread owns the model runner
// and the scheduler; Submit() and Cancel() are thread-safe and never block on model work.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "models/model_config.h"
#include "models/tokenizer.h"
#include "server/engine/engine_config.h"
#include "server/engine/engine_observer.h"
#include "server/engine/request.h"

namespace attnres {

class ModelRunner;

class Engine {
 public:
  // Takes ownership of the runner; the tokenizer must outlive the engine. `observer` (may be
  // null) receives step, state and request statistics (see engine_observer.h).
  static absl::StatusOr<std::unique_ptr<Engine>> Create(
      EngineConfig config, std::unique_ptr<ModelRunner> runner, const Tokenizer* tokenizer,
      std::shared_ptr<EngineObserver> observer = nullptr);
  virtual ~Engine() = default;

  // Queues a request. INVALID_ARGUMENT (naming the field) when it can never fit the model
  // (prompt + max_tokens over max_model_len or the KV pool), RESOURCE_EXHAUSTED when the queue is
  // full (the message says when to retry, see retry_after()), UNAVAILABLE while draining. On
  // success the sink will receive deltas, the last one final.
  virtual absl::StatusOr<std::shared_ptr<RequestHandle>> Submit(
      GenerationRequest request, std::shared_ptr<RequestSink> sink) = 0;

  // Stops admitting new requests; in-flight ones run to completion. Returns once they have.
  virtual void Drain() = 0;
  // Drain() and stop the engine thread.
  virtual void Shutdown() = 0;

  virtual bool healthy() const = 0;  // false after a fatal runner error
  virtual const ModelConfig& model_config() const = 0;
  virtual const Tokenizer& tokenizer() const = 0;
  // The effective limits: max_model_len resolved against the model, kv_page_size the runner's.
  virtual const EngineConfig& config() const = 0;
  virtual int64_t kv_num_pages() const = 0;  // size of the KV pool, in pages
  virtual int64_t num_parameters() const = 0;
  // How long a client refused with RESOURCE_EXHAUSTED should wait: the recent interval between
  // request completions (each frees a queue slot), clamped to [10 ms, 30 s].
  virtual absl::Duration retry_after() const = 0;
  virtual std::string device_name() const = 0;    // "cpu" or "cuda:0 (NVIDIA H200)"
  virtual std::string compute_dtype() const = 0;  // "float32" or "bfloat16"
};

}  // namespace attnres
