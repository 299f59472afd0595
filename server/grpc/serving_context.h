// ServingContext: the read-only facts every reactor needs (the engine, the tokenizer, limits,
// generation_config.json defaults, the AttnRes mix layout, the model's name), built once by
// AttnResService. Holds no per-request state; live limits come from the engine itself.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "attnres/v1/attnres.pb.h"
#include "models/chat_template.h"
#include "models/generation_config.h"
#include "models/model_config.h"
#include "models/tokenizer.h"
#include "server/engine/engine.h"
#include "server/grpc/request_validation.h"
#include "server/grpc/tool_call_parser.h"

namespace attnres {

// How prompt.chat is written out as text: the template (tokenizer_config.json's chat_template or
// --chat-template's file) and the special-token texts it is given as bos_token and eos_token.
struct ChatFormat {
  ChatTemplate chat_template;
  std::string bos_token;
  std::string eos_token;
};

// What main.cc knows that the Engine interface does not expose.
struct ServiceOptions {
  std::string model_name;      // the model directory's name
  // Sampling defaults for unset request fields (its EOS ids go to EngineConfig instead).
  GenerationConfig generation_config;
  // A stream whose client reads slower than the model writes is coalesced into one pending
  // message; past this many bytes the request is cancelled with RESOURCE_EXHAUSTED.
  size_t max_stream_buffer_bytes = size_t{32} << 20;
  std::optional<ChatFormat> chat;  // unset: prompt.chat is refused
  // --tool-call-parser: chat requests with tools get tool_calls in their responses (the HTTP
  // API reads the same flag); unset: the text alone.
  std::optional<ToolCallParser> tool_call_parser;
};

struct ServingContext {
  Engine* engine = nullptr;  // not owned
  const Tokenizer* tokenizer = nullptr;
  ValidationLimits limits;        // vocab_size, effective max_model_len
  GenerationConfig defaults;      // generation_config.json
  int default_max_tokens = 4096;  // max_tokens when neither request nor defaults set it
  MixLayout mix_layout;
  std::string model_name;
  size_t max_stream_buffer_bytes = size_t{32} << 20;
  std::optional<ChatFormat> chat;  // unset: prompt.chat is refused
  std::optional<ToolCallParser> tool_call_parser;  // unset: no tool_calls in responses
};

}  // namespace attnres
