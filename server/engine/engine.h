// The engine seam: the only thing server/grpc talks to. One engine thread owns the model runner
// and the scheduler; Submit() and Cancel() are thread-safe and never block on model work.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "models/model_config.h"
#include "models/tokenizer.h"
#include "server/engine/engine_config.h"
#include "server/engine/request.h"

namespace attnres {

class ModelRunner;

class Engine {
 public:
  // Takes ownership of the runner; the tokenizer must outlive the engine.
  static absl::StatusOr<std::unique_ptr<Engine>> Create(EngineConfig config,
                                                        std::unique_ptr<ModelRunner> runner,
                                                        const Tokenizer* tokenizer);
  virtual ~Engine() = default;

  // Queues a request. INVALID_ARGUMENT (naming the field) when it can never fit the model
  // (prompt + max_tokens over max_model_len or the KV pool), RESOURCE_EXHAUSTED when the queue is
  // full, UNAVAILABLE while draining. On success the sink will receive deltas, the last one final.
  virtual absl::StatusOr<std::shared_ptr<RequestHandle>> Submit(
      GenerationRequest request, std::shared_ptr<RequestSink> sink) = 0;

  // Stops admitting new requests; in-flight ones run to completion. Returns once they have.
  virtual void Drain() = 0;
  // Drain() and stop the engine thread.
  virtual void Shutdown() = 0;

  virtual bool healthy() const = 0;  // false after a fatal runner error
  virtual const ModelConfig& model_config() const = 0;
  virtual const Tokenizer& tokenizer() const = 0;
  virtual const EngineConfig& config() const = 0;
  virtual std::string device_name() const = 0;   // "cpu" or "cuda:0 (NVIDIA H200)"
  virtual std::string compute_dtype() const = 0;  // "float32" or "bfloat16"
};

}  // namespace attnres
