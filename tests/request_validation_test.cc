// The API edge's range rules (server/grpc/request_validation.h) at unit level: a request's fields
// and generation_config.json's defaults, which stand in for unset request fields and so obey the
// same rules; prompt.chat written out as text (server/grpc/chat_prompt.h); and the grammar a
// request decodes under (RequestGrammar, server/grpc/proto_convert.h). The gRPC status mapping of
// these errors is covered end to end (tests/e2e/).
#include "server/grpc/request_validation.h"

#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/grpc/chat_prompt.h"
#include "server/grpc/proto_convert.h"

namespace attnres {
namespace {

using ::testing::HasSubstr;

const ValidationLimits kLimits{.vocab_size = 300, .max_model_len = 512};

TEST(ValidateGenerationDefaults, AcceptsTypicalDefaults) {
  GenerationConfig g;
  g.temperature = 0.6f;
  g.top_p = 0.9f;
  g.top_k = 50;
  g.min_p = 0.0f;
  g.repetition_penalty = 1.1f;
  g.max_new_tokens = 256;
  g.eos_token_ids = {0, 299};
  EXPECT_TRUE(ValidateGenerationDefaults(g, kLimits, "m/generation_config.json").ok());
  EXPECT_TRUE(ValidateGenerationDefaults(GenerationConfig{}, kLimits, "x").ok());
}

TEST(ValidateGenerationDefaults, OutOfRangeValuesNameTheFileAndTheRule) {
  struct Case {
    void (*set)(GenerationConfig&);
    const char* expect;
  };
  const Case cases[] = {
      {[](GenerationConfig& g) { g.temperature = -1.0f; }, "temperature must be in [0, 100]"},
      {[](GenerationConfig& g) { g.top_p = 0.0f; }, "top_p must be in (0, 1]"},
      {[](GenerationConfig& g) { g.top_k = -1; }, "top_k must be in [0, 300]"},
      {[](GenerationConfig& g) { g.min_p = 2.0f; }, "min_p must be in [0, 1]"},
      {[](GenerationConfig& g) { g.repetition_penalty = 0.0f; }, "repetition_penalty must be in"},
      {[](GenerationConfig& g) { g.max_new_tokens = 0; }, "max_new_tokens must be in [1,"},
      {[](GenerationConfig& g) {
         g.eos_token_ids = {5, 300};
       },
       "eos_token_id[1] must be in [0, vocab_size=300)"},
  };
  for (const Case& c : cases) {
    GenerationConfig g;
    c.set(g);
    absl::Status s = ValidateGenerationDefaults(g, kLimits, "m/generation_config.json");
    ASSERT_FALSE(s.ok()) << c.expect;
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(s.message()), HasSubstr("m/generation_config.json: ")) << c.expect;
    EXPECT_THAT(std::string(s.message()), HasSubstr(c.expect));
  }
}

TEST(ValidateGenerateRequest, SamplingFieldsAreNamedUnderSampling) {
  v1::GenerateRequest r;
  r.mutable_prompt()->set_text("hi");
  r.mutable_sampling()->set_top_p(1.5f);
  absl::Status s = ValidateGenerateRequest(r, kLimits);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(std::string(s.message()), HasSubstr("sampling.top_p must be in (0, 1], got 1.5"));
  r.mutable_sampling()->set_top_p(0.5f);
  EXPECT_TRUE(ValidateGenerateRequest(r, kLimits).ok());
}

TEST(ValidateGenerateRequest, LogitBiasReportsItsLowestBadEntry) {
  v1::GenerateRequest r;
  r.mutable_prompt()->set_text("hi");
  auto& bias = *r.mutable_sampling()->mutable_logit_bias();
  bias[299] = -100.0f;
  bias[0] = 100.0f;
  EXPECT_TRUE(ValidateGenerateRequest(r, kLimits).ok());
  bias[250] = NAN;
  bias[7] = 200.0f;
  absl::Status s = ValidateGenerateRequest(r, kLimits);
  EXPECT_THAT(std::string(s.message()),
              HasSubstr("sampling.logit_bias[7] must be in [-100, 100], got 200"));
  bias.erase(7);
  s = ValidateGenerateRequest(r, kLimits);
  EXPECT_THAT(std::string(s.message()), HasSubstr("sampling.logit_bias[250] must be in"));
  bias.erase(250);
  bias[300] = 1.0f;
  s = ValidateGenerateRequest(r, kLimits);
  EXPECT_THAT(
      std::string(s.message()),
      HasSubstr("sampling.logit_bias keys must be token ids in [0, vocab_size=300), got 300"));
}

TEST(ValidateGenerateRequest, ChatPromptsNameTheMessage) {
  v1::GenerateRequest r;
  v1::Chat* chat = r.mutable_prompt()->mutable_chat();
  EXPECT_THAT(std::string(ValidateGenerateRequest(r, kLimits).message()),
              HasSubstr("prompt.chat.messages must not be empty"));
  chat->add_messages()->set_role("user");
  EXPECT_TRUE(ValidateGenerateRequest(r, kLimits).ok());  // empty content is allowed
  chat->add_messages();
  EXPECT_THAT(std::string(ValidateGenerateRequest(r, kLimits).message()),
              HasSubstr("prompt.chat.messages[1].role must be 1-64 bytes, got 0"));
  chat->mutable_messages(1)->set_role(std::string(65, 'r'));
  EXPECT_THAT(std::string(ValidateGenerateRequest(r, kLimits).message()),
              HasSubstr("prompt.chat.messages[1].role must be 1-64 bytes, got 65"));
  chat->clear_messages();
  for (int i = 0; i <= kMaxChatMessages; ++i) chat->add_messages()->set_role("user");
  EXPECT_THAT(std::string(ValidateGenerateRequest(r, kLimits).message()),
              HasSubstr("prompt.chat.messages must have at most 4096 entries, got 4097"));
  EXPECT_THAT(std::string(ValidateGenerateRequest(v1::GenerateRequest(), kLimits).message()),
              HasSubstr("set prompt.text, prompt.token_ids or prompt.chat"));
}

TEST(ValidateGenerateRequest, ContinueFinalMessageRefusesTheGenerationPrompt) {
  v1::GenerateRequest r;
  v1::Chat* chat = r.mutable_prompt()->mutable_chat();
  chat->add_messages()->set_role("user");
  chat->set_continue_final_message(true);
  EXPECT_TRUE(ValidateGenerateRequest(r, kLimits).ok());  // the generation prompt then defaults off
  chat->set_add_generation_prompt(false);
  EXPECT_TRUE(ValidateGenerateRequest(r, kLimits).ok());
  chat->set_add_generation_prompt(true);
  const absl::Status s = ValidateGenerateRequest(r, kLimits);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()),
              HasSubstr("prompt.chat.continue_final_message and prompt.chat.add_generation_prompt "
                        "must not both be true"));
  chat->set_continue_final_message(false);
  EXPECT_TRUE(ValidateGenerateRequest(r, kLimits).ok());
}

TEST(ValidateGenerateRequest, ResponseFormatSizesAndName) {
  v1::GenerateRequest r;
  r.mutable_prompt()->set_text("hi");
  r.mutable_response_format()->mutable_json_object();
  EXPECT_TRUE(ValidateGenerateRequest(r, kLimits).ok());
  v1::ResponseFormat::JsonSchema* schema = r.mutable_response_format()->mutable_json_schema();
  schema->set_schema_json(std::string(kMaxResponseSchemaBytes, ' '));  // compiled later
  schema->set_name("Answer_v2-x");
  EXPECT_TRUE(ValidateGenerateRequest(r, kLimits).ok());
  schema->clear_name();  // optional
  EXPECT_TRUE(ValidateGenerateRequest(r, kLimits).ok());
  const auto refused = [&](auto edit, const std::string& expect) {
    v1::GenerateRequest bad = r;
    edit(bad);
    const absl::Status s = ValidateGenerateRequest(bad, kLimits);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << expect;
    EXPECT_THAT(std::string(s.message()), HasSubstr(expect));
  };
  refused([](v1::GenerateRequest& b) { b.mutable_response_format()->clear_format(); },
          "response_format must set one of json_object, json_schema, regex or choice");
  refused([](v1::GenerateRequest& b) { b.mutable_response_format()->mutable_regex(); },
          "response_format.regex.pattern must be 1-16384 bytes, got 0");
  refused(
      [](v1::GenerateRequest& b) {
        b.mutable_response_format()->mutable_regex()->set_pattern(std::string(16385, 'a'));
      },
      "response_format.regex.pattern must be 1-16384 bytes, got 16385");
  refused(
      [](v1::GenerateRequest& b) {
        b.mutable_response_format()->mutable_json_schema()->clear_schema_json();
      },
      "response_format.json_schema.schema_json must be 1-65536 bytes, got 0");
  refused(
      [](v1::GenerateRequest& b) {
        b.mutable_response_format()->mutable_json_schema()->mutable_schema_json()->push_back(' ');
      },
      "response_format.json_schema.schema_json must be 1-65536 bytes, got 65537");
  refused(
      [](v1::GenerateRequest& b) {
        b.mutable_response_format()->mutable_json_schema()->set_name("no spaces");
      },
      R"(response_format.json_schema.name must be empty or 1-64 characters of [A-Za-z0-9_-], got "no spaces")");
  refused(
      [](v1::GenerateRequest& b) {
        b.mutable_response_format()->mutable_json_schema()->set_name(std::string(65, 'n'));
      },
      "response_format.json_schema.name must be empty or 1-64 characters");
  // Scoring generates nothing to constrain.
  refused([](v1::GenerateRequest& b) { b.set_max_tokens(0); },
          "response_format must not be set with max_tokens 0");
  r.set_max_tokens(1);
  EXPECT_TRUE(ValidateGenerateRequest(r, kLimits).ok());
}

// RenderChat's context needs only the chat format; ChatML as tests/e2e/data/chatml.jinja writes
// it, with `trim` to strip each content when asked (as Llama 3's template does).
ServingContext ChatMlContext(bool trim = false) {
  const std::string content = trim ? "message['content'] | trim" : "message['content']";
  absl::StatusOr<ChatTemplate> t = ChatTemplate::Compile(
      "{%- for message in messages -%}{{ '<|im_start|>' + message['role'] + '\\n' + " + content +
      " + '<|im_end|>\\n' }}{%- endfor -%}"
      "{%- if add_generation_prompt -%}{{ '<|im_start|>assistant\\n' }}{%- endif -%}");
  EXPECT_TRUE(t.ok()) << t.status();
  ServingContext ctx;
  ctx.chat = ChatFormat{.chat_template = *std::move(t), .bos_token = "", .eos_token = ""};
  return ctx;
}

v1::Chat MakeChat(const std::vector<std::pair<std::string, std::string>>& messages) {
  v1::Chat chat;
  for (const auto& [role, content] : messages) {
    v1::ChatMessage* m = chat.add_messages();
    m->set_role(role);
    m->set_content(content);
  }
  return chat;
}

TEST(RenderChat, ContinueFinalMessageCutsAfterItsContent) {
  const std::string user = "<|im_start|>user\nHi<|im_end|>\n";
  v1::Chat chat = MakeChat({{"user", "Hi"}, {"assistant", "Once upon "}});
  EXPECT_EQ(*RenderChat(chat, ChatMlContext()),  // unset: the generation prompt defaults on
            user + "<|im_start|>assistant\nOnce upon <|im_end|>\n<|im_start|>assistant\n");
  chat.set_continue_final_message(true);  // ... and off with continue_final_message
  EXPECT_EQ(*RenderChat(chat, ChatMlContext()), user + "<|im_start|>assistant\nOnce upon ");
  chat.set_add_generation_prompt(false);
  EXPECT_EQ(*RenderChat(chat, ChatMlContext()), user + "<|im_start|>assistant\nOnce upon ");
  // Whitespace the template trims from the end stays trimmed.
  EXPECT_EQ(*RenderChat(chat, ChatMlContext(/*trim=*/true)),
            user + "<|im_start|>assistant\nOnce upon");
  chat.set_continue_final_message(false);
  EXPECT_EQ(*RenderChat(chat, ChatMlContext()),
            user + "<|im_start|>assistant\nOnce upon <|im_end|>\n");
}

TEST(RenderChat, ContinueFinalMessageNeedsItInTheText) {
  absl::StatusOr<ChatTemplate> t = ChatTemplate::Compile(
      "{% for m in messages %}{{ m['role'] }}: {{ m['content'] | upper }}\n{% endfor %}");
  ASSERT_TRUE(t.ok()) << t.status();
  ServingContext ctx;
  ctx.chat = ChatFormat{.chat_template = *std::move(t), .bos_token = "", .eos_token = ""};
  v1::Chat chat = MakeChat({{"user", "Hi"}, {"assistant", "Once"}});
  chat.set_continue_final_message(true);
  absl::StatusOr<std::string> text = RenderChat(chat, ctx);
  ASSERT_FALSE(text.ok()) << *text;
  EXPECT_EQ(text.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(text.status().message()),
              HasSubstr("prompt.chat.continue_final_message: the final message does not appear in "
                        "the rendered conversation"));
  *chat.mutable_messages(1)->mutable_content() = "ONCE";  // unchanged by upper: found
  EXPECT_EQ(*RenderChat(chat, ctx), "user: HI\nassistant: ONCE");
}

// A chat with two tools, an assistant's call and its result.
v1::Chat ToolChat() {
  v1::Chat chat = MakeChat({{"user", "Weather?"}, {"assistant", ""}, {"tool", "18 C"}});
  v1::Tool* weather = chat.add_tools();
  weather->set_name("get_weather");
  weather->set_description("Weather now");
  weather->set_parameters_json(R"({"type":"object","properties":{"city":{"type":"string"}}})");
  chat.add_tools()->set_name("now");
  v1::ToolCall* call = chat.mutable_messages(1)->add_tool_calls();
  call->set_id("call_1");
  call->set_name("get_weather");
  call->set_arguments_json(R"({"city": "Paris", "days": 2})");
  chat.mutable_messages(2)->set_tool_call_id("call_1");
  return chat;
}

// `edit` applied to a copy of r's chat makes the request INVALID_ARGUMENT, naming `expect`.
template <typename Edit>
void ExpectChatRefused(const v1::GenerateRequest& r, Edit edit, const std::string& expect) {
  v1::GenerateRequest bad = r;
  edit(bad.mutable_prompt()->mutable_chat());
  const absl::Status s = ValidateGenerateRequest(bad, kLimits);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << expect;
  EXPECT_THAT(std::string(s.message()), HasSubstr(expect));
}

TEST(ValidateGenerateRequest, ToolsAndToolCallsNameTheField) {
  v1::GenerateRequest r;
  *r.mutable_prompt()->mutable_chat() = ToolChat();
  EXPECT_TRUE(ValidateGenerateRequest(r, kLimits).ok());
  const auto refused = [&](auto edit, const std::string& expect) {
    ExpectChatRefused(r, edit, expect);
  };
  refused([](v1::Chat* c) { c->mutable_tools(1)->set_name("no spaces"); },
          R"(prompt.chat.tools[1].name must be 1-64 characters of [A-Za-z0-9_-], got "no spaces")");
  refused([](v1::Chat* c) { c->mutable_tools(1)->set_name(""); },
          "prompt.chat.tools[1].name must be 1-64 characters");
  refused([](v1::Chat* c) { c->mutable_tools(1)->set_name(std::string(65, 'a')); },
          "prompt.chat.tools[1].name must be 1-64 characters");
  refused([](v1::Chat* c) { c->mutable_tools(0)->set_parameters_json("[1]"); },
          "prompt.chat.tools[0].parameters_json must be empty or the text of a JSON object");
  refused([](v1::Chat* c) { c->mutable_tools(0)->set_parameters_json("{"); },
          "prompt.chat.tools[0].parameters_json must be empty or the text of a JSON object");
  refused(
      [](v1::Chat* c) {
        for (int i = 0; i < kMaxTools; ++i) c->add_tools()->set_name("t");
      },
      "prompt.chat.tools must have at most 128 entries, got 130");
  refused(
      [](v1::Chat* c) { c->mutable_messages(1)->mutable_tool_calls(0)->set_arguments_json(""); },
      "prompt.chat.messages[1].tool_calls[0].arguments_json must be the text of a JSON object");
  refused(
      [](v1::Chat* c) {
        c->mutable_messages(1)->mutable_tool_calls(0)->set_arguments_json(R"("{}")");
      },
      "prompt.chat.messages[1].tool_calls[0].arguments_json must be the text of a JSON object");
  refused([](v1::Chat* c) { c->mutable_messages(1)->mutable_tool_calls(0)->clear_name(); },
          "prompt.chat.messages[1].tool_calls[0].name must be 1-256 bytes, got 0");
  refused(
      [](v1::Chat* c) {
        c->mutable_messages(1)->mutable_tool_calls(0)->set_id(std::string(257, 'i'));
      },
      "prompt.chat.messages[1].tool_calls[0].id must be at most 256 bytes, got 257");
  refused([](v1::Chat* c) { c->mutable_messages(1)->set_role("user"); },
          R"(prompt.chat.messages[1].tool_calls is for messages of role "assistant" only)");
  refused(
      [](v1::Chat* c) {
        for (int i = 0; i < kMaxToolCallsPerMessage; ++i) {
          *c->mutable_messages(1)->add_tool_calls() = c->messages(1).tool_calls(0);
        }
      },
      "prompt.chat.messages[1].tool_calls must have at most 128 entries, got 129");
  refused([](v1::Chat* c) { c->mutable_messages(0)->set_tool_call_id("call_1"); },
          R"(prompt.chat.messages[0].tool_call_id is for messages of role "tool" only)");
  refused([](v1::Chat* c) { c->mutable_messages(2)->set_tool_call_id(std::string(257, 'i')); },
          "prompt.chat.messages[2].tool_call_id must be at most 256 bytes, got 257");
}

// tool_choice, tool_choice_function and parallel_tool_calls: the function is one of the tools,
// not with NONE, and none of them without tools. Whether calls can be forced (the server's
// parser) is the conversion's (RequestGrammar, below).
TEST(ValidateGenerateRequest, ToolChoiceNamesTheField) {
  v1::GenerateRequest r;
  *r.mutable_prompt()->mutable_chat() = ToolChat();
  v1::Chat* chat = r.mutable_prompt()->mutable_chat();
  for (const auto choice :
       {v1::Chat::TOOL_CHOICE_AUTO, v1::Chat::TOOL_CHOICE_NONE, v1::Chat::TOOL_CHOICE_REQUIRED}) {
    chat->set_tool_choice(choice);
    chat->set_parallel_tool_calls(false);
    EXPECT_TRUE(ValidateGenerateRequest(r, kLimits).ok()) << choice;
  }
  chat->set_tool_choice_function("now");
  EXPECT_TRUE(ValidateGenerateRequest(r, kLimits).ok());  // REQUIRED and a function
  chat->set_tool_choice(v1::Chat::TOOL_CHOICE_AUTO);
  EXPECT_TRUE(ValidateGenerateRequest(r, kLimits).ok());
  const auto refused = [&](auto edit, const std::string& expect) {
    ExpectChatRefused(r, edit, expect);
  };
  refused([](v1::Chat* c) { c->set_tool_choice_function("rm"); },
          R"(prompt.chat.tool_choice_function must name one of prompt.chat.tools, got "rm")");
  // Scoring (max_tokens 0) generates nothing to force; a choice that forces nothing may score.
  v1::GenerateRequest scoring = r;
  scoring.set_max_tokens(0);
  const absl::Status forced = ValidateGenerateRequest(scoring, kLimits);
  EXPECT_EQ(forced.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(forced.message()),
              HasSubstr("prompt.chat.tool_choice must not force calls with max_tokens 0"));
  scoring.mutable_prompt()->mutable_chat()->clear_tool_choice_function();
  EXPECT_TRUE(ValidateGenerateRequest(scoring, kLimits).ok());
  refused([](v1::Chat* c) { c->set_tool_choice_function("NOW"); },
          "prompt.chat.tool_choice_function must name one of prompt.chat.tools");
  refused([](v1::Chat* c) { c->set_tool_choice(v1::Chat::TOOL_CHOICE_NONE); },
          "prompt.chat.tool_choice_function must be empty with tool_choice TOOL_CHOICE_NONE");
  refused([](v1::Chat* c) { c->set_tool_choice(static_cast<v1::Chat::ToolChoice>(7)); },
          "prompt.chat.tool_choice must be TOOL_CHOICE_AUTO, TOOL_CHOICE_NONE or "
          "TOOL_CHOICE_REQUIRED, got 7");
  // Without tools: none of them.
  refused([](v1::Chat* c) { c->clear_tools(); },
          "prompt.chat.tool_choice_function must name one of prompt.chat.tools");
  const auto without_tools = [](auto edit) {
    return [edit](v1::Chat* c) {
      c->clear_tools();
      c->clear_tool_choice_function();
      c->clear_parallel_tool_calls();
      edit(c);
    };
  };
  refused(without_tools([](v1::Chat* c) { c->set_tool_choice(v1::Chat::TOOL_CHOICE_REQUIRED); }),
          "prompt.chat.tool_choice must be TOOL_CHOICE_AUTO (unset) without prompt.chat.tools, "
          "got TOOL_CHOICE_REQUIRED");
  refused(without_tools([](v1::Chat* c) { c->set_tool_choice(v1::Chat::TOOL_CHOICE_NONE); }),
          "prompt.chat.tool_choice must be TOOL_CHOICE_AUTO (unset) without prompt.chat.tools, "
          "got TOOL_CHOICE_NONE");
  refused(without_tools([](v1::Chat* c) { c->set_parallel_tool_calls(true); }),
          "prompt.chat.parallel_tool_calls must be unset without prompt.chat.tools");
  v1::GenerateRequest plain = r;
  without_tools([](v1::Chat*) {})(plain.mutable_prompt()->mutable_chat());
  EXPECT_TRUE(ValidateGenerateRequest(plain, kLimits).ok());
}

// The grammar a request decodes under: forced calls need the server's parser and follow the
// tools' schemas; response_format is refused with tools read for calls.
TEST(RequestGrammar, ForcedCallsNeedAParserAndExcludeResponseFormat) {
  ServingContext hermes;
  hermes.tool_call_parser = ToolCallParser::kHermes;
  v1::GenerateRequest r;
  *r.mutable_prompt()->mutable_chat() = ToolChat();
  v1::Chat* chat = r.mutable_prompt()->mutable_chat();
  // AUTO and NONE: free text.
  EXPECT_EQ(*RequestGrammar(r, hermes), nullptr);
  chat->set_tool_choice(v1::Chat::TOOL_CHOICE_NONE);
  EXPECT_EQ(*RequestGrammar(r, hermes), nullptr);
  // NONE reads no calls, so response_format may decide the output; with AUTO it may not, nor
  // with REQUIRED (on a server that reads calls).
  r.mutable_response_format()->mutable_json_object();
  EXPECT_NE(*RequestGrammar(r, hermes), nullptr);
  for (const auto choice : {v1::Chat::TOOL_CHOICE_AUTO, v1::Chat::TOOL_CHOICE_REQUIRED}) {
    chat->set_tool_choice(choice);
    const absl::Status s = RequestGrammar(r, hermes).status();
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << choice;
    EXPECT_THAT(std::string(s.message()),
                HasSubstr("response_format cannot be combined with prompt.chat.tools that are "
                          "read for calls"));
  }
  // Without a parser, AUTO tools are text, so response_format is fine.
  chat->set_tool_choice(v1::Chat::TOOL_CHOICE_AUTO);
  EXPECT_NE(*RequestGrammar(r, ServingContext{}), nullptr);
  r.clear_response_format();

  chat->set_tool_choice(v1::Chat::TOOL_CHOICE_REQUIRED);
  absl::StatusOr<std::shared_ptr<const structured::Grammar>> grammar = RequestGrammar(r, hermes);
  ASSERT_TRUE(grammar.ok()) << grammar.status();
  ASSERT_NE(*grammar, nullptr);
  EXPECT_THAT((*grammar)->ToString(), HasSubstr("get_weather"));
  const absl::Status no_parser = RequestGrammar(r, ServingContext{}).status();
  EXPECT_EQ(no_parser.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(no_parser.message()),
              HasSubstr("prompt.chat.tool_choice: required needs a server started with "
                        "--tool-call-parser"));
  chat->set_tool_choice(v1::Chat::TOOL_CHOICE_AUTO);
  chat->set_tool_choice_function("now");
  ASSERT_TRUE(RequestGrammar(r, hermes).ok());
  EXPECT_THAT(std::string(RequestGrammar(r, ServingContext{}).status().message()),
              HasSubstr("prompt.chat.tool_choice_function: a named function needs a server "
                        "started with --tool-call-parser"));
  // A schema the compiler refuses names the tool; only the tools that can be called are
  // compiled.
  chat->mutable_tools(0)->set_parameters_json(R"({"properties": {"days": {"not": {}}}})");
  EXPECT_TRUE(RequestGrammar(r, hermes).ok());  // "now" only
  chat->clear_tool_choice_function();
  chat->set_tool_choice(v1::Chat::TOOL_CHOICE_REQUIRED);
  const absl::Status refused = RequestGrammar(r, hermes).status();
  EXPECT_EQ(refused.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(refused.message()),
              HasSubstr("prompt.chat.tools[0].parameters_json: #/properties/days/not"));
}

// The template sees tools, tool calls and tool results as vLLM hands them to it.
TEST(RenderChat, ToolsAndToolCallsReachTheTemplate) {
  absl::StatusOr<ChatTemplate> t = ChatTemplate::Compile(
      "{{ tools | tojson }}\n{% for m in messages %}{{ m | tojson }}\n{% endfor %}"
      "{% for m in messages if m.tool_calls is defined %}"
      "{{ m.tool_calls[0].function.arguments.city }}{% endfor %}");
  ASSERT_TRUE(t.ok()) << t.status();
  ServingContext ctx;
  ctx.chat = ChatFormat{.chat_template = *std::move(t), .bos_token = "", .eos_token = ""};
  absl::StatusOr<std::string> text = RenderChat(ToolChat(), ctx);
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(*text,
            R"([{"type": "function", "function": {"name": "get_weather", "description": )"
            R"("Weather now", "parameters": {"type": "object", "properties": {"city": {"type": )"
            R"("string"}}}}}, {"type": "function", "function": {"name": "now", "description": )"
            R"(null, "parameters": null}}])"
            "\n"
            R"({"role": "user", "content": "Weather?"})"
            "\n"
            R"({"role": "assistant", "content": "", "tool_calls": [{"id": "call_1", "type": )"
            R"("function", "function": {"name": "get_weather", "arguments": {"city": "Paris", )"
            R"("days": 2}}}]})"
            "\n"
            R"({"role": "tool", "content": "18 C", "tool_call_id": "call_1"})"
            "\nParis");
  // Without tools, tools is none (as before) and messages carry no tool keys.
  EXPECT_EQ(*RenderChat(MakeChat({{"user", "Hi"}}), ctx),
            "null\n{\"role\": \"user\", \"content\": \"Hi\"}\n");
}

TEST(ValidatePromptLength, ScoringMayFillTheContext) {
  EXPECT_TRUE(ValidatePromptLength(512, 0, kLimits).ok());
  EXPECT_FALSE(ValidatePromptLength(512, 1, kLimits).ok());
  EXPECT_FALSE(ValidatePromptLength(512, std::nullopt, kLimits).ok());
  const absl::Status s = ValidatePromptLength(513, 0, kLimits);
  EXPECT_THAT(std::string(s.message()), HasSubstr("at most max_model_len=512"));
  EXPECT_THAT(
      std::string(ValidatePromptLength(500, 13, kLimits).message()),
      HasSubstr("max_tokens must be in [0, max_model_len - prompt length = 512 - 500 = 12]"));
}

TEST(ValidateMinTokens, AtMostMaxTokens) {
  EXPECT_TRUE(ValidateMinTokens(0, 1).ok());
  EXPECT_TRUE(ValidateMinTokens(7, 7).ok());
  absl::Status s = ValidateMinTokens(8, 7);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(s.message()),
              HasSubstr("min_tokens must be in [0, max_tokens=7], got 8"));
}

}  // namespace
}  // namespace attnres
