// The grammar of forced tool calls: what it accepts is exactly what the parser reads back as the
// calls, for both formats, one call or several, any tool or a named one.
#include "server/grpc/tool_call_grammar.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/structured/token_constraint.h"

namespace attnres {
namespace {

using ::testing::HasSubstr;

google::protobuf::RepeatedPtrField<v1::Tool> Tools() {
  google::protobuf::RepeatedPtrField<v1::Tool> tools;
  v1::Tool* weather = tools.Add();
  weather->set_name("get_weather");
  weather->set_parameters_json(
      R"({"type": "object", "properties": {"city": {"type": "string"},
          "days": {"type": "integer"}}, "required": ["city"]})");
  tools.Add()->set_name("now");  // no parameters: any object
  return tools;
}

bool Accepts(std::shared_ptr<const structured::Grammar> grammar, const std::string& text) {
  structured::GrammarAutomaton automaton(std::move(grammar));
  absl::StatusOr<bool> accepted = automaton.Accepts(text);
  EXPECT_TRUE(accepted.ok()) << accepted.status();
  return accepted.value_or(false);
}

TEST(ToolCallGrammar, HermesCallsReadBackAsTheirCalls) {
  for (const bool parallel : {true, false}) {
    const ToolCallMode mode{ToolCallParser::kHermes, parallel};
    auto grammar = ToolCallGrammar(mode, Tools(), "");
    ASSERT_TRUE(grammar.ok()) << grammar.status();
    const std::string one =
        "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\"}}\n"
        "</tool_call>";
    const std::string two = one +
                            "\n<tool_call>\n{\"name\": \"now\", \"arguments\": {}}\n"
                            "</tool_call>";
    EXPECT_TRUE(Accepts(*grammar, one));
    EXPECT_EQ(Accepts(*grammar, two), parallel);
    const std::optional<ParsedToolCalls> calls = ParseToolCalls(two, mode);
    ASSERT_TRUE(calls.has_value());
    ASSERT_EQ(calls->calls.size(), parallel ? 2u : 1u);
    EXPECT_EQ(calls->calls[0].name, "get_weather");
    EXPECT_EQ(calls->calls[0].arguments_json, R"({"city":"Paris"})");
    EXPECT_FALSE(calls->content.has_value());
    // Refused: content first, an unknown name, a missing required argument, a wrong type, an
    // unclosed call.
    EXPECT_FALSE(Accepts(*grammar, "Sure. " + one));
    EXPECT_FALSE(Accepts(*grammar,
                         "<tool_call>\n{\"name\": \"rm\", \"arguments\": {}}\n"
                         "</tool_call>"));
    EXPECT_FALSE(Accepts(*grammar,
                         "<tool_call>\n{\"name\": \"get_weather\", "
                         "\"arguments\": {}}\n</tool_call>"));
    EXPECT_FALSE(Accepts(*grammar,
                         "<tool_call>\n{\"name\": \"get_weather\", "
                         "\"arguments\": {\"city\": 3}}\n</tool_call>"));
    EXPECT_FALSE(Accepts(*grammar, one.substr(0, one.size() - 1)));
  }
}

TEST(ToolCallGrammar, Llama3JsonCallsReadBackAsTheirCalls) {
  const ToolCallMode mode{ToolCallParser::kLlama3Json, true};
  auto grammar = ToolCallGrammar(mode, Tools(), "");
  ASSERT_TRUE(grammar.ok()) << grammar.status();
  const std::string text =
      "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Oslo\", \"days\": 3}}; "
      "{\"name\": \"now\", \"parameters\": {\"tz\": \"UTC\"}}";
  EXPECT_TRUE(Accepts(*grammar, text));
  const std::optional<ParsedToolCalls> calls = ParseToolCalls(text, mode);
  ASSERT_TRUE(calls.has_value());
  ASSERT_EQ(calls->calls.size(), 2u);
  EXPECT_EQ(calls->calls[0].arguments_json, R"({"city":"Oslo","days":3})");
  EXPECT_EQ(calls->calls[1].name, "now");
  EXPECT_FALSE(Accepts(*grammar, "{\"name\": \"now\", \"arguments\": {}}"));
}

TEST(ToolCallGrammar, NamedFunctionOnly) {
  const ToolCallMode mode{ToolCallParser::kLlama3Json, false};
  auto grammar = ToolCallGrammar(mode, Tools(), "now");
  ASSERT_TRUE(grammar.ok()) << grammar.status();
  EXPECT_TRUE(Accepts(*grammar, "{\"name\": \"now\", \"parameters\": {}}"));
  EXPECT_FALSE(
      Accepts(*grammar, "{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Oslo\"}}"));
  const absl::Status unknown = ToolCallGrammar(mode, Tools(), "rm").status();
  EXPECT_EQ(unknown.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(unknown.message()),
              HasSubstr("prompt.chat.tool_choice_function: names \"rm\""));
}

TEST(ToolCallGrammar, UnenforceableParametersNameTheTool) {
  google::protobuf::RepeatedPtrField<v1::Tool> tools = Tools();
  tools[1].set_parameters_json(R"({"type": "object", "properties": {"n": {"not": {}}}})");
  const absl::Status s = ToolCallGrammar({ToolCallParser::kHermes, true}, tools, "").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()), HasSubstr("prompt.chat.tools[1].parameters_json: "));
  EXPECT_THAT(std::string(s.message()), HasSubstr("#/properties/n/not"));
  // Only the named tool's schema is compiled.
  EXPECT_TRUE(ToolCallGrammar({ToolCallParser::kHermes, true}, tools, "get_weather").ok());
}

}  // namespace
}  // namespace attnres
