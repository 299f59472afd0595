// Tool calls in the gRPC API's responses (--tool-call-parser): a chat request with tools has a
// choice's whole text read for calls once the choice ended on its own; the calls go into the
// response's tool_calls with FINISH_REASON_TOOL_CALLS while the text stays the model's raw text.
// The rule (FinishedToolCalls) is the HTTP API's too, so both read the same text the same way.
#pragma once

#include <optional>
#include <string_view>

#include "attnres/v1/attnres.pb.h"
#include "server/grpc/serving_context.h"
#include "server/grpc/tool_call_parser.h"

namespace attnres {

// How `request`'s outputs are read: set when the server has a parser and the prompt is a chat
// with at least one tool and a tool_choice other than TOOL_CHOICE_NONE; every call is kept unless
// parallel_tool_calls is false (the first only).
std::optional<ToolCallMode> RequestToolCallMode(const ServingContext& ctx,
                                                const v1::GenerateRequest& request);

// The calls in a choice's whole `text`: only an output that ended on its own (STOP: EOS, a stop
// string or id) is read; one cut by length or cancelled is text, as a call cut short is no call.
std::optional<ParsedToolCalls> FinishedToolCalls(v1::FinishReason reason, std::string_view text,
                                                 const ToolCallMode& mode);

// With calls in `text` (the choice's whole text; a stream's final response holds only the last
// delta) and the response's finish reason STOP: fills tool_calls (fresh ids) and sets
// FINISH_REASON_TOOL_CALLS. Returns whether it did; text, stop_reason and usage are untouched.
bool AddToolCalls(const ToolCallMode& mode, std::string_view text, v1::GenerateResponse* response);
bool AddToolCalls(const ToolCallMode& mode, std::string_view text,
                  v1::GenerateStreamResponse* response);

}  // namespace attnres
