// Proto <-> native conversion for the API: GenerateRequest -> GenerationRequest (tokenizing the
// prompt and applying generation_config.json defaults to unset fields), GenerationDelta ->
// response messages, and ModelInfo (read live from the engine). No range checks here
// (request_validation.h).
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "attnres/v1/attnres.pb.h"
#include "server/engine/request.h"
#include "server/grpc/serving_context.h"
#include "server/structured/grammar.h"

namespace attnres {

// `request` must have passed ValidateGenerateRequest. Writes out a chat prompt (chat_prompt.h),
// tokenizes a text or chat prompt, checks the prompt length, fills defaults, assigns a request id
// and a seed when unset, and compiles response_format into the request's grammar (a schema the
// compiler refuses is INVALID_ARGUMENT naming response_format.json_schema.schema_json), or the
// tool calls a chat's tool_choice forces (RequestGrammar).
absl::StatusOr<GenerationRequest> ToGenerationRequest(const v1::GenerateRequest& request,
                                                      const ServingContext& ctx,
                                                      absl::Time deadline);

// The grammar ToGenerationRequest gives `request` (which passed ValidateGenerateRequest): null
// for free text, response_format's, or the tool calls a chat's tool_choice forces
// (TOOL_CHOICE_REQUIRED or tool_choice_function, in ctx.tool_call_parser's format:
// ToolCallGrammar). INVALID_ARGUMENT naming the field: a format or parameters schema the
// compiler refuses, forced calls without a parser, response_format with tools read for calls.
absl::StatusOr<std::shared_ptr<const structured::Grammar>> RequestGrammar(
    const v1::GenerateRequest& request, const ServingContext& ctx);

v1::FinishReason ToProto(FinishReason reason);

// Appends one delta's output (text, token ids, logprobs, mix weights, prompt logprobs) to a
// response; when the delta is final, also sets finish_reason, stop_reason and usage. Returns an
// estimate of the bytes appended (for stream buffer bounds).
size_t MergeDelta(const GenerationDelta& delta, const ServingContext& ctx,
                  v1::GenerateResponse* response);
size_t MergeDelta(const GenerationDelta& delta, const ServingContext& ctx,
                  v1::GenerateStreamResponse* response);

// GetModelInfo: the model's shape, the engine's effective limits, whether chat prompts work.
v1::ModelInfo BuildModelInfo(const ServingContext& ctx);

}  // namespace attnres
