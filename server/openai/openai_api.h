// OpenAiApi: the OpenAI-compatible HTTP front end (--http-port) beside the gRPC API, over the
// same engine and the same request rules:
//   POST /v1/completions  one completion, whole or streamed as server-sent events
//                         ("data: {chunk}" ... "data: [DONE]"); a stream whose client goes
//                         away is cancelled in the engine;
//   POST /v1/chat/completions  the same for a conversation, written out by the model's chat
//                         template (400 when the server has none); with tools (and a
//                         tool-call parser) the output is read for tool calls;
//   POST /tokenize        {"prompt"} -> {"count", "max_model_len", "tokens"};
//   POST /detokenize      {"tokens"} -> {"prompt"};
//   GET  /v1/models       the served model;
//   GET  /health          200 while serving, 503 when draining or the engine failed.
// Errors are OpenAI's {"error": {...}} with 400 (naming the field and the rule), 404 (another
// model), 429 (queue full, with Retry-After), 503 (shutting down) or 500.
#pragma once

#include <atomic>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/clock.h"
#include "server/grpc/serving_context.h"
#include "server/grpc/tool_call_parser.h"
#include "server/http/http_server.h"
#include "server/openai/openai_request.h"

namespace httplib {
struct Request;
struct Response;
}  // namespace httplib

namespace attnres {

class OpenAiApi {
 public:
  // Serves on host:port (0: any free port) with `threads` handler threads, each of which a
  // request holds until it is done. `ctx` must outlive the API. `tool_call_parser`
  // (--tool-call-parser) reads chat outputs for tool calls; unset: chat requests with tools are
  // refused.
  static absl::StatusOr<std::unique_ptr<OpenAiApi>> Start(
      const std::string& host, int port, int threads, const ServingContext* ctx,
      std::optional<ToolCallParser> tool_call_parser = std::nullopt);

  // Waits (up to 10 s) for the responses still being written, then stops.
  ~OpenAiApi();
  OpenAiApi(const OpenAiApi&) = delete;
  OpenAiApi& operator=(const OpenAiApi&) = delete;

  int port() const { return http_->port(); }
  // /health's answer (false from the start of a drain).
  void SetServing(bool serving) { serving_.store(serving); }

 private:
  class InFlight;
  OpenAiApi(const ServingContext* ctx, std::optional<ToolCallParser> tool_call_parser)
      : ctx_(ctx), tool_call_parser_(tool_call_parser) {}
  // /v1/completions (chat false) or /v1/chat/completions: the parsed body through the engine.
  void Generate(absl::StatusOr<CompletionCall> call, bool chat, httplib::Response& res);
  void Tokenize(const httplib::Request& req, httplib::Response& res);
  void Detokenize(const httplib::Request& req, httplib::Response& res);

  const ServingContext* ctx_;
  const std::optional<ToolCallParser> tool_call_parser_;
  const int64_t started_ = absl::ToUnixSeconds(absl::Now());  // /v1/models' "created"
  std::atomic<bool> serving_{true};
  std::atomic<int> in_flight_{0};     // requests whose response is not yet written
  std::unique_ptr<HttpServer> http_;  // last: stops (and joins its handlers) first
};

}  // namespace attnres
