// The grammar of a chat output that must be tool calls (tool_choice "required" or a named
// function), written as the server's tool-call parser reads them (tool_call_parser.h), each
// call's arguments following its function's parameters schema (server/structured):
//   hermes       <tool_call>\n{"name": "NAME", "arguments": ARGS}\n</tool_call>, calls joined by
//                "\n"
//   llama3_json  {"name": "NAME", "parameters": ARGS}, calls joined by "; "
// One call, or with parallel_tool_calls one or more; the output ends after the last call.
#pragma once

#include <memory>
#include <string_view>

#include "absl/status/statusor.h"
#include "attnres/v1/attnres.pb.h"
#include "server/grpc/tool_call_parser.h"
#include "server/structured/grammar.h"

namespace attnres {

// `only`: the function every call must name (tool_choice naming one; it must be among `tools`),
// or empty for any of `tools`. Errors are INVALID_ARGUMENT naming the tool's parameters_json
// (its schema cannot be enforced) or prompt.chat.tool_choice_function (a name not in `tools`).
absl::StatusOr<std::shared_ptr<const structured::Grammar>> ToolCallGrammar(
    const ToolCallMode& mode, const google::protobuf::RepeatedPtrField<v1::Tool>& tools,
    std::string_view only);

}  // namespace attnres
