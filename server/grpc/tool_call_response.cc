// Tool calls in gRPC responses (see tool_call_response.h).
#include "server/grpc/tool_call_response.h"

namespace attnres {
namespace {

template <typename Response>
bool AddToolCallsImpl(const ToolCallMode& mode, std::string_view text, Response* response) {
  std::optional<ParsedToolCalls> parsed = FinishedToolCalls(response->finish_reason(), text, mode);
  if (!parsed.has_value()) return false;
  for (ParsedToolCall& call : parsed->calls) {
    v1::ToolCall* out = response->add_tool_calls();
    out->set_id(NewToolCallId());
    out->set_name(std::move(call.name));
    out->set_arguments_json(std::move(call.arguments_json));
  }
  response->set_finish_reason(v1::FINISH_REASON_TOOL_CALLS);
  return true;
}

}  // namespace

std::optional<ToolCallMode> RequestToolCallMode(const ServingContext& ctx,
                                                const v1::GenerateRequest& request) {
  if (!ctx.tool_call_parser.has_value() || !request.prompt().has_chat()) return std::nullopt;
  const v1::Chat& chat = request.prompt().chat();
  if (chat.tools_size() == 0 || chat.tool_choice() == v1::Chat::TOOL_CHOICE_NONE) {
    return std::nullopt;
  }
  return ToolCallMode{
      .parser = *ctx.tool_call_parser,
      .parallel_tool_calls = !chat.has_parallel_tool_calls() || chat.parallel_tool_calls()};
}

std::optional<ParsedToolCalls> FinishedToolCalls(v1::FinishReason reason, std::string_view text,
                                                 const ToolCallMode& mode) {
  if (reason != v1::FINISH_REASON_STOP) return std::nullopt;
  return ParseToolCalls(text, mode);
}

bool AddToolCalls(const ToolCallMode& mode, std::string_view text, v1::GenerateResponse* response) {
  return AddToolCallsImpl(mode, text, response);
}

bool AddToolCalls(const ToolCallMode& mode, std::string_view text,
                  v1::GenerateStreamResponse* response) {
  return AddToolCallsImpl(mode, text, response);
}

}  // namespace attnres
