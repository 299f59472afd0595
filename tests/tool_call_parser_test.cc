// Tool calls read out of generated text (server/grpc/tool_call_parser.h): vLLM's hermes and
// llama3_json formats, whole and as a stream of deltas.
#include "server/grpc/tool_call_parser.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace attnres {
namespace {

constexpr ToolCallMode kHermes{.parser = ToolCallParser::kHermes};
constexpr ToolCallMode kLlama{.parser = ToolCallParser::kLlama3Json};

// name(arguments) for each call, for compact expectations.
std::vector<std::string> Calls(const std::optional<ParsedToolCalls>& parsed) {
  std::vector<std::string> out;
  if (!parsed.has_value()) return out;
  for (const ParsedToolCall& c : parsed->calls) out.push_back(c.name + c.arguments_json);
  return out;
}

TEST(ToolCallParser, Names) {
  EXPECT_EQ(ToolCallParserFromName("hermes"), ToolCallParser::kHermes);
  EXPECT_EQ(ToolCallParserFromName("llama3_json"), ToolCallParser::kLlama3Json);
  EXPECT_FALSE(ToolCallParserFromName("mistral").has_value());
  EXPECT_STREQ(ToolCallParserName(ToolCallParser::kLlama3Json), "llama3_json");
}

TEST(HermesToolCalls, SingleMultipleAndLeadingContent) {
  auto one = ParseToolCalls(
      "<tool_call>\n{\"name\": \"get_weather\", \"arguments\": {\"city\": \"Paris\", \"days\": "
      "2}}\n</tool_call>",
      kHermes);
  ASSERT_TRUE(one.has_value());
  EXPECT_FALSE(one->content.has_value());
  EXPECT_THAT(Calls(one), ::testing::ElementsAre(R"(get_weather{"city":"Paris","days":2})"));

  auto two = ParseToolCalls(
      "Let me check.\n<tool_call>{\"name\": \"a\", \"arguments\": {\"z\": 1, \"y\": [1, 2.5]}}"
      "</tool_call>\n<tool_call>{\"name\": \"b\", \"arguments\": {}}</tool_call>",
      kHermes);
  ASSERT_TRUE(two.has_value());
  EXPECT_EQ(two->content, "Let me check.\n");
  // Compact, and in the model's key order.
  EXPECT_THAT(Calls(two), ::testing::ElementsAre(R"(a{"z":1,"y":[1,2.5]})", "b{}"));

  ToolCallMode first_only = kHermes;
  first_only.parallel_tool_calls = false;
  auto one_of_two = ParseToolCalls(
      "<tool_call>{\"name\": \"a\", \"arguments\": {}}</tool_call><tool_call>{\"name\": \"b\", "
      "\"arguments\": {}}</tool_call>",
      first_only);
  EXPECT_THAT(Calls(one_of_two), ::testing::ElementsAre("a{}"));

  // Whitespace before the first call is no content.
  EXPECT_FALSE(ParseToolCalls(" \n<tool_call>{\"name\": \"a\"}</tool_call>", kHermes)->content);
}

TEST(HermesToolCalls, UnclosedArgumentsAndUnicode) {
  // A final call the model did not close (it stopped on EOS right after the JSON).
  EXPECT_THAT(
      Calls(ParseToolCalls("<tool_call>{\"name\": \"a\", \"arguments\": {\"x\": true}}", kHermes)),
      ::testing::ElementsAre(R"(a{"x":true})"));
  EXPECT_THAT(Calls(ParseToolCalls("<tool_call>{\"name\": \"a\", \"arguments\": {}}</tool_call>"
                                   "<tool_call>{\"name\": \"b\", \"arguments\": {}}",
                                   kHermes)),
              ::testing::ElementsAre("a{}", "b{}"));
  // No arguments: a call without parameters.
  EXPECT_THAT(Calls(ParseToolCalls("<tool_call>{\"name\": \"now\"}</tool_call>", kHermes)),
              ::testing::ElementsAre("now{}"));
  // UTF-8 stays UTF-8 (nlohmann does not escape it), escapes are decoded.
  EXPECT_THAT(Calls(ParseToolCalls("<tool_call>{\"name\": \"say\", \"arguments\": {\"text\": "
                                   "\"h\u00e9llo \\u4e16\u754c \\\"q\\\"\"}}</tool_call>",
                                   kHermes)),
              ::testing::ElementsAre("say{\"text\":\"h\u00e9llo \u4e16\u754c \\\"q\\\"\"}"));
}

TEST(HermesToolCalls, AnythingMalformedIsPlainContent) {
  for (const char* text : {
           "Just an answer.",
           "<tool_call>{\"name\": \"a\", \"arguments\": {}</tool_call>",       // not JSON
           "<tool_call>{\"arguments\": {}}</tool_call>",                       // no name
           "<tool_call>{\"name\": 5, \"arguments\": {}}</tool_call>",          // name not a string
           "<tool_call>{\"name\": \"a\", \"arguments\": \"{}\"}</tool_call>",  // not an object
           "<tool_call>[1]</tool_call>",
           "<tool_call>",  // an empty unclosed call
           // One good call and one bad: the whole output is content.
           "<tool_call>{\"name\": \"a\"}</tool_call><tool_call>oops</tool_call>",
           "<tool_call>{\"name\": \"a\"}<tool_call>{\"name\": \"b\"}</tool_call>",
       }) {
    EXPECT_FALSE(ParseToolCalls(text, kHermes).has_value()) << text;
  }
}

TEST(Llama3JsonToolCalls, ObjectsPythonTagAndSeparators) {
  auto one =
      ParseToolCalls("{\"name\": \"get_weather\", \"parameters\": {\"city\": \"Paris\"}}", kLlama);
  ASSERT_TRUE(one.has_value());
  EXPECT_FALSE(one->content.has_value());
  EXPECT_THAT(Calls(one), ::testing::ElementsAre(R"(get_weather{"city":"Paris"})"));
  // "arguments" is read before "parameters".
  EXPECT_THAT(Calls(ParseToolCalls(
                  "<|python_tag|>{\"name\": \"a\", \"arguments\": {\"x\": 1}, \"parameters\": "
                  "{\"x\": 2}}",
                  kLlama)),
              ::testing::ElementsAre(R"(a{"x":1})"));
  EXPECT_THAT(Calls(ParseToolCalls("  \n<|python_tag|> {\"name\": \"a\", \"parameters\": {}}; "
                                   "{\"name\": \"b\", \"parameters\": {\"s\": \"}{;\"}};\n",
                                   kLlama)),
              ::testing::ElementsAre("a{}", R"(b{"s":"}{;"})"));
  EXPECT_THAT(
      Calls(ParseToolCalls(R"({"name": "a"};{"name": "b", "parameters": {"k": "é"}})", kLlama)),
      ::testing::ElementsAre("a{}", "b{\"k\":\"\u00e9\"}"));
  ToolCallMode first_only = kLlama;
  first_only.parallel_tool_calls = false;
  EXPECT_THAT(Calls(ParseToolCalls(R"({"name": "a"}; {"name": "b"})", first_only)),
              ::testing::ElementsAre("a{}"));
}

TEST(Llama3JsonToolCalls, AnythingElseIsPlainContent) {
  for (const char* text : {
           "The weather is fine.",
           "Here: {\"name\": \"a\", \"parameters\": {}}",              // text before the object
           "{\"name\": \"a\", \"parameters\": {}} and more",           // text after it
           "{\"name\": \"a\", \"parameters\": {}} {\"name\": \"b\"}",  // no ';'
           "{\"name\": \"a\", \"parameters\": {}",                     // not closed
           "{\"parameters\": {}}",
           "{\"name\": \"a\", \"parameters\": [1]}",
           "<|python_tag|>",
           "<|python_tag|>print(1)",
           "",
           "  ",
       }) {
    EXPECT_FALSE(ParseToolCalls(text, kLlama).has_value()) << text;
  }
}

// Feeds `deltas` through a ToolCallStream: what was released as content along the way, and the
// end.
struct Streamed {
  std::string released;
  ToolCallStream::End end;
};
Streamed Stream(const ToolCallMode& mode, const std::vector<std::string>& deltas,
                bool parse = true) {
  ToolCallStream stream(mode);
  Streamed out;
  for (const std::string& d : deltas) out.released += stream.Push(d);
  out.end = stream.Finish(parse);
  return out;
}

TEST(ToolCallStream, HermesReleasesContentUntilATagMayStart) {
  ToolCallStream stream(kHermes);
  EXPECT_EQ(stream.Push("Let me "), "Let me ");
  EXPECT_EQ(stream.Push("check <"), "check ");  // "<" may open <tool_call>
  EXPECT_EQ(stream.Push("b>"), "<b>");          // it did not
  EXPECT_EQ(stream.Push("\n<tool_"), "\n");
  EXPECT_EQ(stream.Push("call>{\"name\": \"a\", "), "");
  EXPECT_EQ(stream.Push("\"arguments\": {\"x\": 1}}</tool_call>"), "");
  ToolCallStream::End end = stream.Finish(true);
  EXPECT_EQ(end.content, "");
  ASSERT_EQ(end.calls.size(), 1u);
  EXPECT_EQ(end.calls[0].name, "a");
  EXPECT_EQ(end.calls[0].arguments_json, R"({"x":1})");
}

TEST(ToolCallStream, HeldTextIsFlushedWhenItIsNoCall) {
  // Malformed call: the held text comes out as content at the end.
  Streamed bad = Stream(kHermes, {"Hi ", "<tool_call>{\"name\"", ": 1}</tool_call>"});
  EXPECT_EQ(bad.released, "Hi ");
  EXPECT_TRUE(bad.end.calls.empty());
  EXPECT_EQ(bad.end.content, "<tool_call>{\"name\": 1}</tool_call>");
  // A trailing prefix of the tag is flushed.
  Streamed prefix = Stream(kHermes, {"a <tool"});
  EXPECT_EQ(prefix.released + prefix.end.content, "a <tool");
  // Cut by length: not parsed, even when it would be a call.
  Streamed cut = Stream(kHermes, {"<tool_call>{\"name\": \"a\"}"}, /*parse=*/false);
  EXPECT_TRUE(cut.end.calls.empty());
  EXPECT_EQ(cut.end.content, "<tool_call>{\"name\": \"a\"}");
}

TEST(ToolCallStream, Llama3JsonDecidesOnItsFirstText) {
  ToolCallStream plain(kLlama);
  EXPECT_EQ(plain.Push("  "), "");  // undecided
  EXPECT_EQ(plain.Push("<|py"), "");
  EXPECT_EQ(plain.Push("x"), "  <|pyx");  // not the tag: content from here on
  EXPECT_EQ(plain.Push(" {\"name\": \"a\"}"), " {\"name\": \"a\"}");
  EXPECT_EQ(plain.Finish(true).calls.size(), 0u);

  Streamed calls = Stream(kLlama, {"<|python_", "tag|>{\"name\": ", "\"a\", \"parameters\": {}}"});
  EXPECT_EQ(calls.released, "");
  ASSERT_EQ(calls.end.calls.size(), 1u);
  EXPECT_EQ(calls.end.calls[0].name, "a");
  Streamed brace = Stream(kLlama, {"\n{", "\"name\": \"b\"}; {\"name\": \"c\"}"});
  EXPECT_EQ(brace.released, "");
  EXPECT_EQ(brace.end.calls.size(), 2u);
  Streamed not_json = Stream(kLlama, {"{not json}"});
  EXPECT_EQ(not_json.released, "");
  EXPECT_TRUE(not_json.end.calls.empty());
  EXPECT_EQ(not_json.end.content, "{not json}");
  Streamed words = Stream(kLlama, {"Hello", " there"});
  EXPECT_EQ(words.released, "Hello there");
  EXPECT_EQ(words.end.content, "");
}

}  // namespace
}  // namespace attnres
