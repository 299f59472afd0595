// The grammar of forced tool calls (see tool_call_grammar.h): each tool's call body with its
// arguments compiled from its parameters schema, wrapped in the parser's format.
#include "server/grpc/tool_call_grammar.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "server/structured/json_schema_grammar.h"

namespace attnres {
namespace {

using ordered_json = nlohmann::ordered_json;
using structured::Alternative;
using structured::GrammarBuilder;

// {"name": "NAME", "<args_key>": ARGS}: ARGS following the tool's parameters (any object when
// it has none).
absl::StatusOr<Alternative> CallBody(GrammarBuilder& b, const v1::Tool& tool, int index,
                                     const char* args_key) {
  const std::string where = absl::StrCat("prompt.chat.tools[", index, "].parameters_json");
  ordered_json schema = ordered_json{{"type", "object"}};
  if (!tool.parameters_json().empty()) {
    schema = ordered_json::parse(tool.parameters_json(), nullptr, /*allow_exceptions=*/false);
    if (schema.is_discarded()) return absl::InvalidArgumentError(absl::StrCat(where, ": not JSON"));
  }
  absl::StatusOr<int> args = structured::AddJsonSchemaRules(b, schema);
  if (!args.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": ", args.status().message()));
  }
  Alternative body = b.Literal(
      absl::StrCat("{\"name\": ", ordered_json(tool.name()).dump(), ", \"", args_key, "\": "));
  body.push_back(b.Ref(*args));
  body.push_back(b.Byte('}'));
  return body;
}

}  // namespace

absl::StatusOr<std::shared_ptr<const structured::Grammar>> ToolCallGrammar(
    const ToolCallMode& mode, const google::protobuf::RepeatedPtrField<v1::Tool>& tools,
    std::string_view only) {
  const bool hermes = mode.parser == ToolCallParser::kHermes;
  GrammarBuilder b;
  std::vector<Alternative> bodies;
  for (int i = 0; i < tools.size(); ++i) {
    if (!only.empty() && tools[i].name() != only) continue;
    absl::StatusOr<Alternative> body =
        CallBody(b, tools[i], i, hermes ? "arguments" : "parameters");
    if (!body.ok()) return body.status();
    bodies.push_back(*std::move(body));
  }
  if (bodies.empty()) {
    return absl::InvalidArgumentError(
        only.empty() ? std::string("prompt.chat.tools: must not be empty")
                     : absl::StrCat("prompt.chat.tool_choice_function: names \"", std::string(only),
                                    "\", which is not in prompt.chat.tools"));
  }
  Alternative call;
  if (hermes) call = b.Literal("<tool_call>\n");
  call.push_back(b.Ref(b.AddRule("call_body", std::move(bodies))));
  if (hermes) {
    const Alternative close = b.Literal("\n</tool_call>");
    call.insert(call.end(), close.begin(), close.end());
  }
  const int one = b.AddRule("call", {call});
  Alternative root = {b.Ref(one)};
  if (mode.parallel_tool_calls) {
    Alternative more = b.Literal(hermes ? "\n" : "; ");
    more.push_back(b.Ref(one));
    root.push_back(b.Star("more_calls", std::move(more)));
  }
  return std::move(b).Build(b.AddRule("root", {std::move(root)}));
}

}  // namespace attnres
