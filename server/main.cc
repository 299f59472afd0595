// attnres-server: flags -> EngineConfig/RunnerOptions -> model, tokenizer, engine -> gRPC server
// (+ the OpenAI-compatible HTTP API, + Prometheus /metrics). Owns process concerns only: flag
// parsing, logging setup, signals, exit codes. Prints one line "listening on HOST:PORT" on stdout
// once serving (tests and scripts wait for it).
#include <pthread.h>
#include <signal.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/time.h"
#include "models/chat_template.h"
#include "models/file_text.h"
#include "models/generation_config.h"
#include "models/model_config.h"
#include "models/model_runner.h"
#include "models/tokenizer.h"
#include "server/engine/engine.h"
#include "server/engine/engine_config.h"
#include "server/grpc/attnres_service.h"
#include "server/grpc/grpc_server.h"
#include "server/grpc/request_validation.h"
#include "server/grpc/tokenization.h"
#include "server/metrics/prometheus_metrics.h"
#include "server/openai/openai_api.h"
#include "spdlog/sinks/stdout_color_sinks.h"
#include "spdlog/spdlog.h"

namespace attnres {
namespace {

struct ServerFlags {
  std::filesystem::path model_dir;
  GrpcServerOptions grpc;
  std::string device = "auto";
  EngineConfig engine;
  std::string log_level = "info";
  double shutdown_grace_s = 30.0;
  int metrics_port = -1;  // -1: no metrics endpoint; 0: any free port
  int http_port = -1;     // -1: no OpenAI-compatible HTTP API; 0: any free port
  int http_threads = 128;
  int tensor_parallel = 1;
  bool cuda_graphs = true;
  std::filesystem::path chat_template;  // empty: tokenizer_config.json's, if any
  std::string tool_call_parser;         // empty: chat requests with tools are refused
};

void AddFlags(CLI::App& app, ServerFlags& f) {
  app.add_option("--model", f.model_dir,
                 "Model directory (config.json, *.safetensors, "
                 "tokenizer.json)")
      ->required()
      ->check(CLI::ExistingDirectory);
  app.add_option("--host", f.grpc.host, "Address to listen on")->capture_default_str();
  app.add_option("--port", f.grpc.port, "Port to listen on (0: pick a free one)")
      ->capture_default_str()
      ->check(CLI::Range(0, 65535));
  app.add_option("--device", f.device, "Where the model runs")
      ->capture_default_str()
      ->check(CLI::IsMember({"auto", "cpu", "cuda"}));
  app.add_option("--max-num-seqs", f.engine.max_num_seqs, "Sequences per engine step")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--max-num-batched-tokens", f.engine.max_num_batched_tokens,
                 "Tokens per engine step")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--max-queued-requests", f.engine.max_queued_requests,
                 "Waiting requests beyond which new ones get RESOURCE_EXHAUSTED")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--kv-page-size", f.engine.kv_page_size, "Tokens per KV cache page")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  app.add_option("--kv-cache-bytes", f.engine.kv_cache_bytes,
                 "KV cache size in bytes (0: CPU 1 GiB, GPU a fraction of free memory)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--max-model-len", f.engine.max_model_len,
                 "Prompt + output tokens per request (0: max_position_embeddings)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--tensor-parallel", f.tensor_parallel,
                 "Split every layer over this many ranks (CPU: threads of this process; CUDA: "
                 "GPUs 0..N-1, NCCL)")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  app.add_option("--chat-template", f.chat_template,
                 "Jinja chat template file for chat prompts (default: the model directory's "
                 "chat_template.jinja or tokenizer_config.json chat_template, if any)")
      ->check(CLI::ExistingFile);
  app.add_option("--tool-call-parser", f.tool_call_parser,
                 "Read chat completions for tool calls in this format, as vLLM's parser of the "
                 "name reads them, so /v1/chat/completions takes tools, gRPC responses to "
                 "chats with tools carry tool_calls, and tool_choice \"required\" or a named "
                 "function constrains the output to calls in this format (default: none; HTTP "
                 "requests with tools are refused, gRPC ones get the text only)")
      ->check(CLI::IsMember({"hermes", "llama3_json"}));
  app.add_flag("!--no-prefix-caching", f.engine.enable_prefix_caching,
               "Do not share KV pages of identical prompt prefixes between requests");
  app.add_flag("!--no-cuda-graphs", f.cuda_graphs,
               "CUDA: launch every kernel of decode steps instead of replaying CUDA graphs");
  app.add_option("--metrics-port", f.metrics_port,
                 "Serve Prometheus metrics at http://HOST:PORT/metrics (-1: off; 0: any free "
                 "port, printed as \"metrics on http://HOST:PORT/metrics\")")
      ->capture_default_str()
      ->check(CLI::Range(-1, 65535));
  app.add_option("--http-port", f.http_port,
                 "Serve the OpenAI-compatible API at http://HOST:PORT/v1 (-1: off; 0: any free "
                 "port, printed as \"openai api on http://HOST:PORT/v1\")")
      ->capture_default_str()
      ->check(CLI::Range(-1, 65535));
  app.add_option("--http-threads", f.http_threads,
                 "HTTP handler threads; each holds one request until it is done")
      ->capture_default_str()
      ->check(CLI::Range(1, 4096));
  app.add_option("--shutdown-grace", f.shutdown_grace_s,
                 "Seconds streams get to flush after the engine drained on SIGTERM")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_option("--log-level", f.log_level, "trace, debug, info, warn, error, critical, off")
      ->capture_default_str()
      ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}));
}

DeviceKind ToDeviceKind(const std::string& device) {
  if (device == "cpu") return DeviceKind::kCpu;
  if (device == "cuda") return DeviceKind::kCuda;
  return DeviceKind::kAuto;
}

RunnerOptions ToRunnerOptions(const ServerFlags& f) {
  RunnerOptions options;
  options.device = ToDeviceKind(f.device);
  options.kv_page_size = f.engine.kv_page_size;
  options.kv_cache_bytes = f.engine.kv_cache_bytes;
  options.kv_cache_memory_fraction = f.engine.kv_cache_memory_fraction;
  options.max_num_seqs = f.engine.max_num_seqs;
  options.max_num_batched_tokens = f.engine.max_num_batched_tokens;
  options.tensor_parallel = f.tensor_parallel;
  options.cuda_graphs = f.cuda_graphs;
  return options;
}

// How chat prompts are written out: --chat-template's file, else the model directory's
// (chat_template.jinja, else tokenizer_config.json's chat_template); none is not an error (chat
// prompts are refused). bos_token and eos_token come from tokenizer_config.json, else from
// config.json's ids.
absl::StatusOr<std::optional<ChatFormat>> LoadChatFormat(const ServerFlags& f,
                                                         const ModelConfig& config,
                                                         const Tokenizer& tokenizer) {
  absl::StatusOr<std::optional<ChatTemplateConfig>> from_dir = ReadChatTemplateConfig(f.model_dir);
  if (!from_dir.ok()) return from_dir.status();
  ChatTemplateConfig c = from_dir->value_or(ChatTemplateConfig{});
  if (!f.chat_template.empty()) {
    absl::StatusOr<std::string> text = ReadFileText(f.chat_template);
    if (!text.ok()) return text.status();
    c.source = *std::move(text);
    c.origin = f.chat_template.string();
  } else if (!from_dir->has_value()) {
    return std::nullopt;
  }
  absl::StatusOr<ChatTemplate> compiled = ChatTemplate::Compile(c.source);
  if (!compiled.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(c.origin, ": ", compiled.status().message()));
  }
  if (c.bos_token.empty() && config.bos_token_id >= 0) {
    c.bos_token = TokenText(tokenizer, config.bos_token_id);
  }
  if (c.eos_token.empty() && !config.eos_token_ids.empty()) {
    c.eos_token = TokenText(tokenizer, config.eos_token_ids[0]);
  }
  spdlog::info("chat template from {}", c.origin);
  return ChatFormat{.chat_template = *std::move(compiled),
                    .bos_token = std::move(c.bos_token),
                    .eos_token = std::move(c.eos_token)};
}

// Everything that must stay alive while serving, in destruction-safe order.
struct Serving {
  std::unique_ptr<Tokenizer> tokenizer;
  std::shared_ptr<PrometheusMetrics> metrics;  // null without --metrics-port
  std::unique_ptr<Engine> engine;
  std::unique_ptr<AttnResService> service;
  std::unique_ptr<OpenAiApi> openai;  // null without --http-port
  std::unique_ptr<GrpcServer> server;
};

absl::StatusOr<Serving> LoadAndServe(const ServerFlags& f) {
  Serving s;
  absl::StatusOr<ModelConfig> config = LoadModelConfig(f.model_dir);
  if (!config.ok()) return config.status();
  absl::StatusOr<std::unique_ptr<Tokenizer>> tokenizer =
      Tokenizer::FromFile(f.model_dir / "tokenizer.json");
  if (!tokenizer.ok()) return tokenizer.status();
  s.tokenizer = *std::move(tokenizer);
  absl::StatusOr<GenerationConfig> generation = LoadGenerationConfig(f.model_dir);
  if (!generation.ok()) return generation.status();
  if (absl::Status st = ValidateGenerationDefaults(
          *generation, ValidationLimits{.vocab_size = config->vocab_size},
          (f.model_dir / "generation_config.json").string());
      !st.ok()) {
    return st;
  }
  absl::StatusOr<std::optional<ChatFormat>> chat = LoadChatFormat(f, *config, *s.tokenizer);
  if (!chat.ok()) return chat.status();

  spdlog::info("loading {} ({}, {} layers, residual {}) on {}", f.model_dir.string(),
               config->architecture, config->num_layers, ResidualModeName(config->residual_mode),
               f.device);
  absl::StatusOr<std::unique_ptr<ModelRunner>> runner =
      CreateModelRunner(f.model_dir, ToRunnerOptions(f));
  if (!runner.ok()) return runner.status();
  ServiceOptions options;
  options.model_name = std::filesystem::absolute(f.model_dir).lexically_normal().filename();
  if (options.model_name.empty()) {
    options.model_name = std::filesystem::absolute(f.model_dir).parent_path().filename();
  }
  EngineConfig engine_config = f.engine;
  // generation_config.json's EOS ids end generation like config.json's (empty stop_reason).
  engine_config.extra_eos_token_ids = generation->eos_token_ids;
  options.generation_config = *std::move(generation);
  options.chat = *std::move(chat);
  options.tool_call_parser = ToolCallParserFromName(f.tool_call_parser);

  if (f.metrics_port >= 0) {
    s.metrics = std::make_shared<PrometheusMetrics>();
    if (absl::Status st = s.metrics->Serve(f.grpc.host, f.metrics_port); !st.ok()) return st;
    spdlog::info("metrics on http://{}:{}/metrics", f.grpc.host, s.metrics->port());
  }
  absl::StatusOr<std::unique_ptr<Engine>> engine =
      Engine::Create(engine_config, *std::move(runner), s.tokenizer.get(), s.metrics);
  if (!engine.ok()) return engine.status();
  s.engine = *std::move(engine);
  spdlog::info("model on {} ({}), {} parameters, {} KV pages of {} tokens, prefix caching {}",
               s.engine->device_name(), s.engine->compute_dtype(), s.engine->num_parameters(),
               s.engine->kv_num_pages(), s.engine->config().kv_page_size,
               s.engine->config().enable_prefix_caching ? "on" : "off");
  s.service = std::make_unique<AttnResService>(s.engine.get(), std::move(options));
  if (f.http_port >= 0) {
    absl::StatusOr<std::unique_ptr<OpenAiApi>> openai =
        OpenAiApi::Start(f.grpc.host, f.http_port, f.http_threads, &s.service->context(),
                         ToolCallParserFromName(f.tool_call_parser));
    if (!openai.ok()) {
      s.engine->Shutdown();
      return openai.status();
    }
    s.openai = *std::move(openai);
    spdlog::info("openai api on http://{}:{}/v1", f.grpc.host, s.openai->port());
  }
  absl::StatusOr<std::unique_ptr<GrpcServer>> server = GrpcServer::Start(f.grpc, s.service.get());
  if (!server.ok()) {
    s.engine->Shutdown();
    return server.status();
  }
  s.server = *std::move(server);
  return s;
}

// Waits for SIGTERM/SIGINT (blocked in every thread, see main), flipping health to NOT_SERVING
// if the engine becomes unhealthy meanwhile. Returns the signal.
int WaitForSignal(const sigset_t& signals, Serving& s) {
  bool healthy = true;
  const timespec tick = {1, 0};
  while (true) {
    const int sig = sigtimedwait(&signals, nullptr, &tick);
    if (sig > 0) return sig;
    if (healthy && !s.engine->healthy()) {
      healthy = false;
      spdlog::error("engine is unhealthy (fatal runner error); health -> NOT_SERVING");
      s.server->SetServing(false);
      if (s.openai) s.openai->SetServing(false);
    }
  }
}

int Run(int argc, char** argv) {
  CLI::App app{"attnres-server: gRPC inference server for Attention-Residual language models"};
  ServerFlags flags;
  AddFlags(app, flags);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    const int code = app.exit(e);
    return code == 0 ? 0 : 2;
  }
  auto logger = spdlog::stderr_color_mt("attnres");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::from_str(flags.log_level));

  // Block the shutdown signals before any thread starts so that only WaitForSignal sees them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  absl::StatusOr<Serving> serving = LoadAndServe(flags);
  if (!serving.ok()) {
    spdlog::error("{}", serving.status().ToString());
    std::cerr << "error: " << serving.status().ToString() << std::endl;
    return 1;
  }
  std::cout << "listening on " << serving->server->address() << std::endl;
  spdlog::info("serving {} on {}", serving->service->context().model_name,
               serving->server->address());

  const int sig = WaitForSignal(signals, *serving);
  spdlog::info("received {}; shutting down", sig == SIGTERM ? "SIGTERM" : "SIGINT");
  if (serving->openai) serving->openai->SetServing(false);
  serving->server->DrainAndShutdown(serving->engine.get(), absl::Seconds(flags.shutdown_grace_s));
  serving->openai.reset();  // after the drain: its last streams flush, then it stops
  serving->engine->Shutdown();
  spdlog::info("bye");
  return 0;
}

}  // namespace
}  // namespace attnres

int main(int argc, char** argv) { return attnres::Run(argc, argv); }
