// Range checks of incoming requests at the API edge, one rule per proto comment. Errors are
// INVALID_ARGUMENT naming the field and the rule ("sampling.top_p must be in (0, 1], got 1.5").
// Checks that need the tokenized prompt (its length against max_model_len) are separate.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "absl/status/status.h"
#include "attnres/v1/attnres.pb.h"
#include "models/generation_config.h"

namespace attnres {

// API limits that are not model facts; ServingLimits reports the first two and kMaxLogitBias.
inline constexpr int kMaxStopStrings = 16;
inline constexpr int kMaxLogprobs = 20;
inline constexpr int kMaxStopStringBytes = 256;
inline constexpr int kMaxStopTokenIds = 64;
inline constexpr int kMaxRequestIdBytes = 256;
inline constexpr float kMaxTemperature = 100.0f;
inline constexpr float kMaxRepetitionPenalty = 10.0f;
inline constexpr float kMaxAbsPresenceFrequencyPenalty = 2.0f;
inline constexpr int kMaxLogitBias = 1024;  // entries; ServingLimits reports it
inline constexpr int kMaxChatMessages = 4096;
inline constexpr int kMaxChatRoleBytes = 64;
inline constexpr int kMaxTools = 128;                // prompt.chat.tools (OpenAI's bound)
inline constexpr int kMaxToolNameChars = 64;         // a tool's name (OpenAI's bound)
inline constexpr int kMaxToolCallsPerMessage = 128;  // an assistant message's tool_calls
inline constexpr int kMaxToolCallIdBytes = 256;      // a tool call's id, a tool_call_id
inline constexpr int kMaxToolCallNameBytes = 256;    // the name in a tool call the model made
inline constexpr float kMaxAbsLogitBias = 100.0f;
inline constexpr int kMaxResponseSchemaBytes = 64 << 10;  // response_format.json_schema.schema_json

struct ValidationLimits {
  int32_t vocab_size = 0;
  int max_model_len = 0;
};

// OpenAI's rule for a function's name (and a response format's schema's): 1-64 characters of
// [A-Za-z0-9_-].
bool IsToolName(std::string_view name);
// Whether `text` is a JSON object (a tool's parameters, a tool call's arguments).
bool IsJsonObject(std::string_view text);

// Everything checkable before tokenization.
absl::Status ValidateGenerateRequest(const v1::GenerateRequest& request,
                                     const ValidationLimits& limits);
// After tokenization: the prompt leaves room for at least one token, and max_tokens (if set)
// fits in what remains of max_model_len; with max_tokens 0 (scoring) the prompt may fill it.
absl::Status ValidatePromptLength(int prompt_len, std::optional<int> max_tokens,
                                  const ValidationLimits& limits);

// After max_tokens is resolved (the request's or its default): min_tokens <= max_tokens.
absl::Status ValidateMinTokens(int min_tokens, int max_tokens);

// generation_config.json's defaults (`origin` names the file) under the rules of the request fields
// they stand in for: sampling ranges, max_new_tokens >= 1, EOS ids in [0, vocab_size).
absl::Status ValidateGenerationDefaults(const GenerationConfig& defaults,
                                        const ValidationLimits& limits, std::string_view origin);

absl::Status ValidateTokenizeRequest(const v1::TokenizeRequest& request);
absl::Status ValidateDetokenizeRequest(const v1::DetokenizeRequest& request,
                                       const ValidationLimits& limits);

}  // namespace attnres
