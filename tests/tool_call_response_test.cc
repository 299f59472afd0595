// Tool calls in gRPC responses (server/grpc/tool_call_response.h): which requests are read, and
// that only an output that ended on its own (STOP) turns into tool_calls with
// FINISH_REASON_TOOL_CALLS, its text left as the model wrote it. The reactors' use of it is
// covered end to end (tests/e2e/e2e_openai_test.cc).
#include "server/grpc/tool_call_response.h"

#include <string>

#include "gtest/gtest.h"

namespace attnres {
namespace {

constexpr char kTwoCalls[] =
    "Let me check.<tool_call>\n{\"name\": \"weather\", \"arguments\": {\"city\": \"Oslo\"}}\n"
    "</tool_call>\n<tool_call>{\"name\": \"time\"}</tool_call>";

v1::GenerateRequest ChatRequest(int tools) {
  v1::GenerateRequest request;
  v1::Chat* chat = request.mutable_prompt()->mutable_chat();
  chat->add_messages()->set_content("hi");
  for (int i = 0; i < tools; ++i) {
    chat->add_tools()->set_name(std::string(1, static_cast<char>('f' + i)));
  }
  return request;
}

TEST(RequestToolCallMode, OnlyAChatWithToolsOnAServerWithAParserUnlessNone) {
  ServingContext with_parser;
  with_parser.tool_call_parser = ToolCallParser::kLlama3Json;
  const std::optional<ToolCallMode> mode = RequestToolCallMode(with_parser, ChatRequest(2));
  ASSERT_TRUE(mode.has_value());
  EXPECT_EQ(mode->parser, ToolCallParser::kLlama3Json);
  EXPECT_TRUE(mode->parallel_tool_calls);  // unset parallel_tool_calls: all are kept

  v1::GenerateRequest request = ChatRequest(2);
  request.mutable_prompt()->mutable_chat()->set_parallel_tool_calls(false);
  EXPECT_FALSE(RequestToolCallMode(with_parser, request)->parallel_tool_calls);
  request.mutable_prompt()->mutable_chat()->set_parallel_tool_calls(true);
  EXPECT_TRUE(RequestToolCallMode(with_parser, request)->parallel_tool_calls);
  // REQUIRED (and a named function) are read as AUTO is; NONE reads nothing.
  request.mutable_prompt()->mutable_chat()->set_tool_choice(v1::Chat::TOOL_CHOICE_REQUIRED);
  request.mutable_prompt()->mutable_chat()->set_tool_choice_function("f");
  EXPECT_TRUE(RequestToolCallMode(with_parser, request).has_value());
  request.mutable_prompt()->mutable_chat()->clear_tool_choice_function();
  request.mutable_prompt()->mutable_chat()->set_tool_choice(v1::Chat::TOOL_CHOICE_NONE);
  EXPECT_FALSE(RequestToolCallMode(with_parser, request).has_value());

  EXPECT_FALSE(RequestToolCallMode(ServingContext{}, ChatRequest(1)).has_value());
  EXPECT_FALSE(RequestToolCallMode(with_parser, ChatRequest(0)).has_value());
  v1::GenerateRequest text;
  text.mutable_prompt()->set_text(kTwoCalls);
  EXPECT_FALSE(RequestToolCallMode(with_parser, text).has_value());
}

TEST(AddToolCalls, AFinishedHermesTextYieldsCallsAndToolCallsReason) {
  v1::GenerateResponse response;
  response.set_text(kTwoCalls);
  response.set_finish_reason(v1::FINISH_REASON_STOP);
  response.set_stop_reason("<|im_end|>");
  ASSERT_TRUE(AddToolCalls(ToolCallMode{}, response.text(), &response));
  EXPECT_EQ(response.finish_reason(), v1::FINISH_REASON_TOOL_CALLS);
  EXPECT_EQ(response.text(), kTwoCalls);  // gRPC clients get the raw text as well
  EXPECT_EQ(response.stop_reason(), "<|im_end|>");
  ASSERT_EQ(response.tool_calls_size(), 2);
  EXPECT_EQ(response.tool_calls(0).name(), "weather");
  EXPECT_EQ(response.tool_calls(0).arguments_json(), R"({"city":"Oslo"})");
  EXPECT_EQ(response.tool_calls(1).name(), "time");
  EXPECT_EQ(response.tool_calls(1).arguments_json(), "{}");
  for (const v1::ToolCall& call : response.tool_calls()) {
    EXPECT_EQ(call.id().rfind("call_", 0), 0u) << call.id();
    EXPECT_EQ(call.id().size(), 29u) << call.id();
  }
  EXPECT_NE(response.tool_calls(0).id(), response.tool_calls(1).id());
}

TEST(AddToolCalls, ALengthCutOrCancelledOrPlainTextIsNoCall) {
  for (v1::FinishReason reason :
       {v1::FINISH_REASON_LENGTH, v1::FINISH_REASON_CANCELLED, v1::FINISH_REASON_UNSPECIFIED}) {
    v1::GenerateResponse response;
    response.set_text(kTwoCalls);
    response.set_finish_reason(reason);
    EXPECT_FALSE(AddToolCalls(ToolCallMode{}, response.text(), &response)) << reason;
    EXPECT_EQ(response.finish_reason(), reason);
    EXPECT_EQ(response.tool_calls_size(), 0);
  }
  v1::GenerateResponse plain;
  plain.set_text("no call here");
  plain.set_finish_reason(v1::FINISH_REASON_STOP);
  EXPECT_FALSE(AddToolCalls(ToolCallMode{}, plain.text(), &plain));
  EXPECT_EQ(plain.finish_reason(), v1::FINISH_REASON_STOP);
  EXPECT_EQ(plain.tool_calls_size(), 0);
  // A call that does not read (not JSON) is text too.
  plain.set_text("<tool_call>{oops</tool_call>");
  EXPECT_FALSE(AddToolCalls(ToolCallMode{}, plain.text(), &plain));
  EXPECT_EQ(plain.finish_reason(), v1::FINISH_REASON_STOP);
}

TEST(AddToolCalls, AStreamsFinalResponseIsReadWithTheWholeText) {
  // The final chunk holds only the last delta; the calls come from the whole text.
  v1::GenerateStreamResponse last;
  last.set_text("</tool_call>");
  last.set_finish_reason(v1::FINISH_REASON_STOP);
  ASSERT_TRUE(AddToolCalls(ToolCallMode{}, kTwoCalls, &last));
  EXPECT_EQ(last.text(), "</tool_call>");  // the delta goes out unchanged
  EXPECT_EQ(last.finish_reason(), v1::FINISH_REASON_TOOL_CALLS);
  ASSERT_EQ(last.tool_calls_size(), 2);
  EXPECT_EQ(last.tool_calls(0).name(), "weather");

  v1::GenerateStreamResponse cut;
  cut.set_finish_reason(v1::FINISH_REASON_LENGTH);
  EXPECT_FALSE(AddToolCalls(ToolCallMode{}, kTwoCalls, &cut));
  EXPECT_EQ(cut.tool_calls_size(), 0);
}

TEST(FinishedToolCalls, IsTheRuleBothApisRead) {
  EXPECT_TRUE(FinishedToolCalls(v1::FINISH_REASON_STOP, kTwoCalls, ToolCallMode{}).has_value());
  EXPECT_FALSE(FinishedToolCalls(v1::FINISH_REASON_LENGTH, kTwoCalls, ToolCallMode{}).has_value());
  const std::optional<ParsedToolCalls> first = FinishedToolCalls(
      v1::FINISH_REASON_STOP, kTwoCalls, ToolCallMode{.parallel_tool_calls = false});
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->calls.size(), 1u);
  EXPECT_EQ(first->content, "Let me check.");
}

}  // namespace
}  // namespace attnres
