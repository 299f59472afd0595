// The OpenAI-compatible API's JSON edge at unit level: bodies read into GenerateRequests (every
// accepted shape, every refusal naming its key) and the JSON written back (completion, chunks
// with running text offsets, usage chunk, errors and their HTTP codes). The HTTP server itself
// runs end to end in tests/e2e/e2e_openai_test.cc.
#include <cctype>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "models/tokenizer.h"
#include "nlohmann/json.hpp"
#include "server/grpc/request_validation.h"
#include "server/openai/openai_request.h"
#include "server/openai/openai_response.h"

namespace attnres {
namespace {

using ::testing::HasSubstr;

constexpr char kModel[] = "tiny";

absl::StatusOr<CompletionCall> Parse(const std::string& body) {
  return ParseCompletionRequest(body, kModel);
}

TEST(OpenAiRequest, ReadsEveryParameter) {
  auto call = Parse(R"({"model": "tiny", "prompt": "Hi", "max_tokens": 7, "temperature": 0.5,
      "top_p": 0.9, "n": 1, "best_of": 1, "echo": false, "stream": true,
      "stream_options": {"include_usage": true}, "logprobs": 2, "stop": ["a", "b"],
      "presence_penalty": 0.5, "frequency_penalty": -0.5, "logit_bias": {"5": -100, "7": 2.5},
      "seed": -1, "user": "u", "suffix": null, "top_k": -1, "min_p": 0.1,
      "repetition_penalty": 1.2, "min_tokens": 3, "ignore_eos": true, "stop_token_ids": [4, 9],
      "skip_special_tokens": false, "add_special_tokens": false})");
  ASSERT_TRUE(call.ok()) << call.status();
  const v1::GenerateRequest& r = call->request;
  EXPECT_TRUE(call->stream);
  EXPECT_TRUE(call->include_usage);
  EXPECT_EQ(r.prompt().text(), "Hi");
  EXPECT_EQ(r.max_tokens(), 7);
  EXPECT_EQ(r.min_tokens(), 3);
  EXPECT_EQ(r.logprobs(), 2);
  EXPECT_EQ(r.stop_size(), 2);
  EXPECT_EQ(r.stop(1), "b");
  EXPECT_EQ(std::vector<int32_t>(r.stop_token_ids().begin(), r.stop_token_ids().end()),
            (std::vector<int32_t>{4, 9}));
  EXPECT_TRUE(r.ignore_eos());
  EXPECT_FALSE(r.skip_special_tokens());
  EXPECT_FALSE(r.add_special_tokens());
  const v1::SamplingParams& s = r.sampling();
  EXPECT_FLOAT_EQ(s.temperature(), 0.5f);
  EXPECT_FLOAT_EQ(s.top_p(), 0.9f);
  EXPECT_EQ(s.top_k(), 0);
  EXPECT_FLOAT_EQ(s.min_p(), 0.1f);
  EXPECT_FLOAT_EQ(s.repetition_penalty(), 1.2f);
  EXPECT_FLOAT_EQ(s.presence_penalty(), 0.5f);
  EXPECT_FLOAT_EQ(s.frequency_penalty(), -0.5f);
  EXPECT_EQ(s.seed(), ~uint64_t{0});
  EXPECT_EQ(s.logit_bias().size(), 2u);
  EXPECT_FLOAT_EQ(s.logit_bias().at(5), -100.0f);
  EXPECT_FLOAT_EQ(s.logit_bias().at(7), 2.5f);
}

TEST(OpenAiRequest, DefaultsLeaveSamplingUnsetAndMaxTokensAtSixteen) {
  auto call = Parse(R"({"prompt": "Hi"})");
  ASSERT_TRUE(call.ok()) << call.status();
  EXPECT_FALSE(call->stream);
  EXPECT_EQ(call->request.max_tokens(), 16);
  EXPECT_FALSE(call->request.has_logprobs());
  EXPECT_FALSE(call->request.sampling().has_temperature());
  EXPECT_FALSE(call->request.sampling().has_top_p());
  EXPECT_FALSE(call->request.sampling().has_seed());
  EXPECT_FALSE(call->request.has_skip_special_tokens());
}

TEST(OpenAiRequest, PromptShapes) {
  auto ids = Parse(R"({"prompt": [1, 2, 3]})");
  ASSERT_TRUE(ids.ok()) << ids.status();
  EXPECT_EQ(ids->request.prompt().token_ids().ids_size(), 3);
  auto one_text = Parse(R"({"prompt": ["Hi"]})");
  ASSERT_TRUE(one_text.ok());
  EXPECT_EQ(one_text->request.prompt().text(), "Hi");
  auto one_ids = Parse(R"({"prompt": [[4, 5]]})");
  ASSERT_TRUE(one_ids.ok());
  EXPECT_EQ(one_ids->request.prompt().token_ids().ids(1), 5);
  auto single_stop = Parse(R"({"prompt": "x", "stop": "\n"})");
  ASSERT_TRUE(single_stop.ok());
  EXPECT_EQ(single_stop->request.stop(0), "\n");
}

TEST(OpenAiRequest, RefusalsNameTheKeyAndTheRule) {
  const std::pair<const char*, const char*> cases[] = {
      {"", "not valid JSON"},
      {"[1]", "must be a JSON object"},
      {R"({"max_tokens": 3})", R"(key "prompt" is required)"},
      {R"({"prompt": 5})", R"(key "prompt" must be a string or a list of token ids)"},
      {R"({"prompt": ["a", 5]})", R"(key "prompt[1]" must be a string or a list of token ids)"},
      {R"({"prompt": [[1], [-1]]})", R"(key "prompt[1]" ids must be in [0, 2^31))"},
      {R"({"prompt": ["a", "b", "c", "d", "e"], "n": 16})",
       R"(key "n" times the number of prompts must be at most 64, got 16 x 5)"},
      {R"({"prompt": [1, "a"]})", R"(key "prompt" must hold integers only)"},
      {R"({"prompt": [-1]})", "ids must be in [0, 2^31)"},
      {R"({"prompt": "x", "frobnicate": 1})", R"(key "frobnicate" is not a known)"},
      {R"({"prompt": "x", "temperature": "hot"})", R"(key "temperature" must be a number)"},
      {R"({"prompt": "x", "max_tokens": -1})", R"(key "max_tokens" must be in [0, 2^30], got -1)"},
      {R"({"prompt": "x", "max_tokens": 1.5})", R"(key "max_tokens" must be an integer)"},
      {R"({"prompt": "x", "n": 17})", R"(key "n" must be in [1, 16], got 17)"},
      {R"({"prompt": "x", "n": 0})", R"(key "n" must be in [1, 2^30], got 0)"},
      {R"({"prompt": "x", "n": 2, "best_of": 3})", R"(key "best_of" must equal n)"},
      {R"({"prompt": "x", "suffix": "y"})", R"(key "suffix" is not supported)"},
      {R"({"prompt": "x", "stream": 1})", R"(key "stream" must be true or false)"},
      {R"({"prompt": "x", "stream_options": {"x": 1}})", R"(key "stream_options.x" is not)"},
      {R"({"prompt": "x", "stop": [1]})", R"(key "stop" must hold strings only)"},
      {R"({"prompt": "x", "logit_bias": [1]})", R"(key "logit_bias" must be an object)"},
      {R"({"prompt": "x", "logit_bias": {"a": 1}})", R"(keys must be token ids, got "a")"},
      {R"({"prompt": "x", "logit_bias": {"5": "up"}})", R"(key "logit_bias[5]" must be a number)"},
      {R"({"prompt": "x", "logit_bias": {"5": null}})", R"(key "logit_bias[5]" must be a number)"},
      {R"({"prompt": "x", "seed": 1.5})", R"(key "seed" must be an integer)"},
      {R"({"prompt": "x", "top_k": -2})", R"(key "top_k" must be in [-1, 2^30])"},
      {R"({"prompt": "x", "logprobs": true})", R"(key "logprobs" must be an integer)"},
  };
  for (const auto& [body, expect] : cases) {
    auto call = Parse(body);
    ASSERT_FALSE(call.ok()) << body;
    EXPECT_EQ(call.status().code(), absl::StatusCode::kInvalidArgument) << body;
    EXPECT_THAT(std::string(call.status().message()), HasSubstr(expect)) << body;
  }
  auto other = Parse(R"({"prompt": "x", "model": "gpt-4"})");
  EXPECT_EQ(other.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(std::string(other.status().message()), HasSubstr(R"(serves "tiny")"));
}

// OpenAI's list of prompts: one request each, in order (request.prompt is the first).
TEST(OpenAiRequest, PromptLists) {
  auto texts = Parse(R"({"prompt": ["a", "b c"], "n": 2})");
  ASSERT_TRUE(texts.ok()) << texts.status();
  ASSERT_EQ(texts->prompts.size(), 2u);
  EXPECT_EQ(texts->prompts[1].text(), "b c");
  EXPECT_EQ(texts->request.prompt().text(), "a");
  EXPECT_EQ(texts->n, 2);
  auto ids = Parse(R"({"prompt": [[1, 2], [3]]})");
  ASSERT_TRUE(ids.ok()) << ids.status();
  ASSERT_EQ(ids->prompts.size(), 2u);
  EXPECT_EQ(ids->prompts[1].token_ids().ids(0), 3);
  auto one = Parse(R"({"prompt": [4, 5]})");  // token ids: one prompt
  ASSERT_TRUE(one.ok()) << one.status();
  ASSERT_EQ(one->prompts.size(), 1u);
  EXPECT_EQ(one->prompts[0].token_ids().ids_size(), 2);
  std::string many = R"({"prompt": ["a")";
  for (int i = 0; i < kMaxPrompts; ++i) many += R"(, "a")";
  EXPECT_THAT(std::string(Parse(many + "]}").status().message()),
              HasSubstr(R"(key "prompt" must hold at most 64 prompts, got 65)"));
}

TEST(OpenAiRequest, TokenizeAndDetokenizeBodies) {
  auto tok = ParseTokenizeRequest(R"({"prompt": "Hi there", "add_special_tokens": false})", kModel);
  ASSERT_TRUE(tok.ok()) << tok.status();
  EXPECT_EQ(tok->text(), "Hi there");
  EXPECT_FALSE(tok->add_special_tokens());
  auto detok = ParseDetokenizeRequest(R"({"tokens": [3, 4], "model": "tiny"})", kModel);
  ASSERT_TRUE(detok.ok()) << detok.status();
  EXPECT_EQ(detok->token_ids_size(), 2);
  EXPECT_FALSE(detok->has_skip_special_tokens());
  const std::pair<const char*, const char*> tokenize_refusals[] = {
      {R"({})", R"(key "prompt" is required)"},
      {R"({"prompt": 3})", R"(key "prompt" must be a string)"},
      {R"({"text": "x"})", R"(key "text" is not a known tokenize parameter)"},
  };
  for (const auto& [body, expect] : tokenize_refusals) {
    EXPECT_THAT(std::string(ParseTokenizeRequest(body, kModel).status().message()),
                HasSubstr(expect));
  }
  const std::pair<const char*, const char*> detokenize_refusals[] = {
      {R"({})", R"(key "tokens" is required)"},
      {R"({"tokens": 3})", R"(key "tokens" must be a list of token ids)"},
      {R"({"tokens": [1, "a"]})", R"(key "tokens" must hold integers only)"},
      {R"({"tokens": [1], "skip_special_tokens": "no"})", "must be true or false"},
  };
  for (const auto& [body, expect] : detokenize_refusals) {
    EXPECT_THAT(std::string(ParseDetokenizeRequest(body, kModel).status().message()),
                HasSubstr(expect));
  }
  EXPECT_EQ(ParseDetokenizeRequest(R"({"tokens": [], "model": "x"})", kModel).status().code(),
            absl::StatusCode::kNotFound);
}

v1::TokenLogprob Logprob(int id, const std::string& token, float lp) {
  v1::TokenLogprob t;
  t.set_token_id(id);
  t.set_token(token);
  t.set_logprob(lp);
  v1::TopLogprob* top = t.add_top();
  top->set_token_id(id);
  top->set_token(token);
  top->set_logprob(lp);
  return t;
}

TEST(OpenAiResponse, CompletionWithLegacyLogprobs) {
  v1::GenerateResponse r;
  r.set_text("a\xc3\xa9!");
  *r.add_logprobs() = Logprob(1, "a\xc3\xa9", -0.5f);  // 2 code points
  *r.add_logprobs() = Logprob(2, "!", -1.0f);
  r.set_finish_reason(v1::FINISH_REASON_STOP);
  r.set_stop_reason("token:2");
  r.mutable_usage()->set_prompt_tokens(3);
  r.mutable_usage()->set_completion_tokens(2);
  const CompletionMeta meta{.id = "cmpl-x", .model = "tiny", .created = 17, .logprobs = true};
  const nlohmann::ordered_json j = CompletionJson({r}, meta, 1, {});
  EXPECT_EQ(j["id"], "cmpl-x");
  EXPECT_EQ(j["object"], "text_completion");
  EXPECT_EQ(j["created"], 17);
  const auto& choice = j["choices"][0];
  EXPECT_EQ(choice["text"], "a\xc3\xa9!");
  EXPECT_EQ(choice["finish_reason"], "stop");
  EXPECT_EQ(choice["stop_reason"], "token:2");
  EXPECT_EQ(choice["logprobs"]["tokens"], nlohmann::ordered_json({"a\xc3\xa9", "!"}));
  EXPECT_EQ(choice["logprobs"]["text_offset"], nlohmann::ordered_json({0, 2}));
  EXPECT_FLOAT_EQ(choice["logprobs"]["top_logprobs"][1]["!"].get<float>(), -1.0f);
  EXPECT_EQ(j["usage"]["total_tokens"], 5);
}

TEST(OpenAiResponse, ChunksCarryTheirDeltaAndContinueTheOffsets) {
  const CompletionMeta meta{.id = "cmpl-y", .model = "tiny", .created = 1, .logprobs = true};
  TextOffset offset;
  v1::GenerateStreamResponse first;
  first.set_text("ab");
  *first.add_logprobs() = Logprob(3, "ab", -0.1f);
  const auto a = CompletionChunkJson(first, 0, meta, &offset, nullptr);
  EXPECT_TRUE(a["choices"][0]["finish_reason"].is_null());
  v1::GenerateStreamResponse last;
  last.set_text("c");
  *last.add_logprobs() = Logprob(4, "c", -0.2f);
  last.set_finish_reason(v1::FINISH_REASON_LENGTH);
  const auto b = CompletionChunkJson(last, 0, meta, &offset, nullptr);
  EXPECT_EQ(b["choices"][0]["logprobs"]["text_offset"], nlohmann::ordered_json({2}));
  EXPECT_EQ(b["choices"][0]["finish_reason"], "length");
  v1::Usage usage;
  usage.set_prompt_tokens(4);
  usage.set_completion_tokens(2);
  const auto u = UsageChunkJson(usage, meta);
  EXPECT_TRUE(u["choices"].empty());
  EXPECT_EQ(u["usage"]["total_tokens"], 6);
  const CompletionMeta plain{.id = "cmpl-z", .model = "tiny", .created = 1, .logprobs = false};
  EXPECT_TRUE(
      CompletionChunkJson(first, 0, plain, &offset, nullptr)["choices"][0]["logprobs"].is_null());
}

// echo: the prompt's text leads the text; its first token (null logprob) and the prompt
// logprobs lead the logprob lists, whose offsets then run on through the completion.
TEST(OpenAiResponse, EchoPutsThePromptFirst) {
  v1::GenerateResponse r;
  r.set_text("!");
  *r.add_prompt_logprobs() = Logprob(5, " b", -2.0f);
  *r.add_logprobs() = Logprob(2, "!", -1.0f);
  r.set_finish_reason(v1::FINISH_REASON_LENGTH);
  const CompletionMeta meta{
      .id = "cmpl-e", .model = "tiny", .created = 1, .logprobs = true, .echo = true};
  const EchoedPrompt echo{.text = "a b", .first_token = "a"};
  const auto j = CompletionJson({r}, meta, 1, {&echo});
  const auto& choice = j["choices"][0];
  EXPECT_EQ(choice["text"], "a b!");
  EXPECT_EQ(choice["logprobs"]["tokens"], nlohmann::ordered_json({"a", " b", "!"}));
  EXPECT_TRUE(choice["logprobs"]["token_logprobs"][0].is_null());
  EXPECT_FLOAT_EQ(choice["logprobs"]["token_logprobs"][1].get<float>(), -2.0f);
  EXPECT_TRUE(choice["logprobs"]["top_logprobs"][0].is_null());
  EXPECT_EQ(choice["logprobs"]["text_offset"], nlohmann::ordered_json({0, 1, 3}));
  // Scoring only (no completion): the prompt alone.
  v1::GenerateResponse scored;
  *scored.add_prompt_logprobs() = Logprob(5, " b", -2.0f);
  const auto s = CompletionJson({scored}, meta, 1, {&echo});
  EXPECT_EQ(s["choices"][0]["text"], "a b");
  EXPECT_EQ(s["choices"][0]["logprobs"]["tokens"].size(), 2u);
}

TEST(OpenAiRequest, EchoAsksForPromptLogprobs) {
  auto call = Parse(R"({"prompt": "x y", "echo": true, "logprobs": 3, "max_tokens": 0})");
  ASSERT_TRUE(call.ok()) << call.status();
  EXPECT_TRUE(call->echo);
  EXPECT_EQ(call->request.max_tokens(), 0);
  EXPECT_EQ(call->request.prompt_logprobs(), 3);
  auto plain = Parse(R"({"prompt": "x y", "echo": true})");
  ASSERT_TRUE(plain.ok());
  EXPECT_FALSE(plain->request.has_prompt_logprobs());
}

TEST(OpenAiResponse, ErrorsAndFieldNames) {
  const absl::Status named = WithHttpFieldNames(absl::InvalidArgumentError(
      "sampling.top_p must be in (0, 1], got 2; prompt.token_ids.ids[3] and prompt.text"));
  EXPECT_EQ(named.message(), "top_p must be in (0, 1], got 2; prompt[3] and prompt");
  EXPECT_EQ(named.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(HttpStatusCode(absl::StatusCode::kInvalidArgument), 400);
  EXPECT_EQ(HttpStatusCode(absl::StatusCode::kNotFound), 404);
  EXPECT_EQ(HttpStatusCode(absl::StatusCode::kResourceExhausted), 429);
  EXPECT_EQ(HttpStatusCode(absl::StatusCode::kUnavailable), 503);
  EXPECT_EQ(HttpStatusCode(absl::StatusCode::kInternal), 500);
  const auto e = ErrorJson(absl::ResourceExhaustedError("queue is full"));
  EXPECT_EQ(e["error"]["message"], "queue is full");
  EXPECT_EQ(e["error"]["type"], "rate_limit_error");
  EXPECT_EQ(ErrorJson(absl::InternalError("x"))["error"]["type"], "server_error");
}

TEST(OpenAiChatRequest, ReadsMessagesAndTheChatForms) {
  auto call = ParseChatRequest(
      R"({"model": "tiny", "messages": [{"role": "system", "content": "Be brief."},
          {"role": "user", "content": [{"type": "text", "text": "Hi"},
                                       {"type": "text", "text": "there"}]},
          {"role": "assistant", "content": null}],
          "max_completion_tokens": 9, "logprobs": true, "top_logprobs": 3, "stream": true,
          "add_generation_prompt": false, "temperature": 0, "stop": "\n", "n": 3})",
      kModel);
  ASSERT_TRUE(call.ok()) << call.status();
  const v1::GenerateRequest& r = call->request;
  ASSERT_EQ(r.prompt().kind_case(), v1::Prompt::kChat);
  const v1::Chat& chat = r.prompt().chat();
  ASSERT_EQ(chat.messages_size(), 3);
  EXPECT_EQ(chat.messages(0).role(), "system");
  EXPECT_EQ(chat.messages(0).content(), "Be brief.");
  EXPECT_EQ(chat.messages(1).content(), "Hi\nthere");  // text parts joined by newlines
  EXPECT_EQ(chat.messages(2).content(), "");
  EXPECT_FALSE(chat.add_generation_prompt());
  EXPECT_EQ(r.max_tokens(), 9);
  EXPECT_EQ(call->n, 3);
  EXPECT_EQ(r.logprobs(), 3);
  EXPECT_TRUE(call->stream);
  EXPECT_EQ(r.stop(0), "\n");
  EXPECT_FLOAT_EQ(r.sampling().temperature(), 0.0f);

  // Defaults: no max_tokens (the server's default applies, not completions' 16), no logprobs,
  // the generation prompt left to its default (true); max_tokens is the older name.
  auto plain = ParseChatRequest(R"({"messages": [{"role": "user", "content": "Hi"}]})", kModel);
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ(plain->n, 1);
  EXPECT_FALSE(plain->request.has_max_tokens());
  EXPECT_FALSE(plain->request.has_logprobs());
  EXPECT_FALSE(plain->request.prompt().chat().has_add_generation_prompt());
  auto older = ParseChatRequest(
      R"({"messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4, "logprobs": true})",
      kModel);
  ASSERT_TRUE(older.ok()) << older.status();
  EXPECT_EQ(older->request.max_tokens(), 4);
  EXPECT_EQ(older->request.logprobs(), 0);
}

// continue_final_message goes to prompt.chat as given; the generation prompt is left unset, so
// that it defaults off there (prompt.chat's rule), and the pair both true is refused there too
// (ChatFieldNamesAndMissingTemplate shows the error's HTTP spelling).
TEST(OpenAiChatRequest, ContinueFinalMessage) {
  auto call = ParseChatRequest(
      R"({"messages": [{"role": "user", "content": "Hi"},
          {"role": "assistant", "content": [{"type": "text", "text": "Once"},
                                            {"type": "text", "text": "upon "}]}],
          "continue_final_message": true})",
      kModel);
  ASSERT_TRUE(call.ok()) << call.status();
  const v1::Chat& chat = call->request.prompt().chat();
  EXPECT_TRUE(chat.has_continue_final_message());
  EXPECT_TRUE(chat.continue_final_message());
  EXPECT_FALSE(chat.has_add_generation_prompt());
  // Text parts are joined before the template sees them, so the joined text is what is
  // continued (as vLLM continues it).
  EXPECT_EQ(chat.messages(1).content(), "Once\nupon ");
  auto off = ParseChatRequest(
      R"({"messages": [{"role": "user", "content": null}], "continue_final_message": false})",
      kModel);
  ASSERT_TRUE(off.ok()) << off.status();
  EXPECT_TRUE(off->request.prompt().chat().has_continue_final_message());
  EXPECT_FALSE(off->request.prompt().chat().continue_final_message());
  auto both = ParseChatRequest(
      R"({"messages": [{"role": "user", "content": "Hi"}], "continue_final_message": true,
          "add_generation_prompt": true})",
      kModel);
  ASSERT_TRUE(both.ok()) << both.status();  // refused by request validation, with gRPC's
  EXPECT_TRUE(both->request.prompt().chat().add_generation_prompt());
}

TEST(OpenAiChatRequest, RefusalsNameTheKeyAndTheRule) {
  const std::pair<const char*, const char*> cases[] = {
      {R"({"max_tokens": 3})", R"(key "messages" is required)"},
      {R"({"messages": []})", R"(key "messages" must be a non-empty list)"},
      {R"({"messages": "Hi"})", R"(key "messages" must be a non-empty list)"},
      {R"({"messages": [5]})", R"(key "messages[0]" must be an object)"},
      {R"({"messages": [{"content": "x"}]})", R"(key "messages[0].role" is required)"},
      {R"({"messages": [{"role": 1, "content": "x"}]})", R"(key "messages[0].role" is required)"},
      {R"({"messages": [{"role": "user", "content": 5}]})",
       R"(key "messages[0].content" must be a string or a list of text parts)"},
      {R"({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]})",
       R"(key "messages[0].content[0]" must be a text part)"},
      {R"({"messages": [{"role": "user", "content": [{"type": "text", "text": "a", "x": 1}]}]})",
       R"(key "messages[0].content[0].x" is not a known text part key)"},
      {R"({"messages": [{"role": "user", "content": "x", "name": "bob"}]})",
       R"(key "messages[0].name" is not a known message key)"},
      {R"({"messages": [{"role": "user", "content": "x"}], "tools": [{"function": {"name":
           "f"}}]})",
       R"(key "tools" needs a tool-call parser: start the server with --tool-call-parser)"},
      {R"({"messages": [{"role": "user", "content": "x"}], "functions": []})",
       R"(key "functions" is not supported)"},
      {R"({"messages": [{"role": "user", "content": "x"}], "response_format": {}})",
       R"(key "response_format.type" must be "text", "json_object" or "json_schema")"},
      {R"({"messages": [{"role": "user", "content": "x"}], "prompt": "y"})",
       R"(key "prompt" is not a known chat completions parameter)"},
      {R"({"messages": [{"role": "user", "content": "x"}], "echo": true})",
       R"(key "echo" is not a known chat completions parameter)"},
      {R"({"messages": [{"role": "user", "content": "x"}], "max_tokens": 1,
           "max_completion_tokens": 1})",
       R"(key "max_tokens" must not be set with max_completion_tokens)"},
      {R"({"messages": [{"role": "user", "content": "x"}], "top_logprobs": 2})",
       R"(key "top_logprobs" needs "logprobs": true)"},
      {R"({"messages": [{"role": "user", "content": "x"}], "logprobs": 2})",
       R"(key "logprobs" must be true or false)"},
      {R"({"messages": [{"role": "user", "content": "x"}], "n": 99})",
       R"(key "n" must be in [1, 16], got 99)"},
      {R"({"messages": [{"role": "user", "content": "x"}], "continue_final_message": 1})",
       R"(key "continue_final_message" must be true or false)"},
      // Nothing to continue: no text at all, as transformers refuses it.
      {R"({"messages": [{"role": "user", "content": "x"}, {"role": "assistant", "content": []}],
           "continue_final_message": true})",
       R"(key "messages[1].content" must hold text when continue_final_message is true)"},
      {R"({"messages": [{"role": "assistant", "content": null}], "continue_final_message": true})",
       R"(key "messages[0].content" must hold text when continue_final_message is true)"},
      {R"({"messages": [{"role": "assistant"}], "continue_final_message": true})",
       R"(key "messages[0].content" must hold text when continue_final_message is true)"},
  };
  for (const auto& [body, expect] : cases) {
    auto call = ParseChatRequest(body, kModel);
    ASSERT_FALSE(call.ok()) << body;
    EXPECT_EQ(call.status().code(), absl::StatusCode::kInvalidArgument) << body;
    EXPECT_THAT(std::string(call.status().message()), HasSubstr(expect)) << body;
  }
  // The completions call does not take chat keys, nor chat completions' tool keys.
  EXPECT_THAT(std::string(Parse(R"({"prompt": "x", "tools": []})").status().message()),
              HasSubstr(R"(key "tools" is not supported)"));
  EXPECT_THAT(std::string(Parse(R"({"messages": []})").status().message()),
              HasSubstr(R"(key "messages" is not a known completions parameter)"));
}

// A chat body with `extra` keys (a JSON object's members, without braces).
std::string ChatBody(const std::string& extra) {
  return R"({"messages": [{"role": "user", "content": "x"}])" +
         (extra.empty() ? std::string() : ", " + extra) + "}";
}

constexpr char kWeatherTool[] =
    R"({"type": "function", "function": {"name": "get_weather", "description": "Weather now",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}})";

TEST(OpenAiChatRequest, ToolsToolCallsAndToolResults) {
  const std::string body = R"({"messages": [
      {"role": "user", "content": "Weather in Paris?"},
      {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function",
          "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}}]},
      {"role": "tool", "tool_call_id": "call_1", "content": "18 C"}],
      "tools": [)" + std::string(kWeatherTool) +
                           R"(, {"function": {"name": "now"}}], "parallel_tool_calls": false})";
  auto call = ParseChatRequest(body, kModel, ToolCallParser::kHermes);
  ASSERT_TRUE(call.ok()) << call.status();
  const v1::Chat& chat = call->request.prompt().chat();
  ASSERT_EQ(chat.tools_size(), 2);
  EXPECT_EQ(chat.tools(0).name(), "get_weather");
  EXPECT_EQ(chat.tools(0).description(), "Weather now");
  // Compact, in the client's key order.
  EXPECT_EQ(chat.tools(0).parameters_json(),
            R"({"type":"object","properties":{"city":{"type":"string"}}})");
  EXPECT_EQ(chat.tools(1).name(), "now");
  EXPECT_FALSE(chat.tools(1).has_description());
  EXPECT_EQ(chat.tools(1).parameters_json(), "");
  ASSERT_EQ(chat.messages(1).tool_calls_size(), 1);
  EXPECT_EQ(chat.messages(1).content(), "");
  EXPECT_EQ(chat.messages(1).tool_calls(0).id(), "call_1");
  EXPECT_EQ(chat.messages(1).tool_calls(0).name(), "get_weather");
  EXPECT_EQ(chat.messages(1).tool_calls(0).arguments_json(), R"({"city": "Paris"})");
  EXPECT_EQ(chat.messages(2).tool_call_id(), "call_1");
  EXPECT_EQ(chat.messages(2).content(), "18 C");
  // tool_choice defaults to "auto": the output is read with the server's parser, and special
  // tokens are kept (the calls' tags may be ones).
  ASSERT_TRUE(call->tool_calls.has_value());
  EXPECT_EQ(call->tool_calls->parser, ToolCallParser::kHermes);
  EXPECT_FALSE(call->tool_calls->parallel_tool_calls);
  EXPECT_TRUE(call->request.has_skip_special_tokens());
  EXPECT_FALSE(call->request.skip_special_tokens());
  EXPECT_EQ(chat.tool_choice(), v1::Chat::TOOL_CHOICE_AUTO);
  ASSERT_TRUE(chat.has_parallel_tool_calls());
  EXPECT_FALSE(chat.parallel_tool_calls());

  // tool_choice "none": the tools are still written into the prompt, nothing is read.
  auto none = ParseChatRequest(
      ChatBody(R"("tools": [)" + std::string(kWeatherTool) + R"(], "tool_choice": "none")"), kModel,
      ToolCallParser::kLlama3Json);
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_EQ(none->request.prompt().chat().tools_size(), 1);
  EXPECT_EQ(none->request.prompt().chat().tool_choice(), v1::Chat::TOOL_CHOICE_NONE);
  EXPECT_FALSE(none->tool_calls.has_value());
  EXPECT_FALSE(none->request.has_skip_special_tokens());
  // An explicit skip_special_tokens is kept; "auto" spelled out.
  auto kept = ParseChatRequest(ChatBody(R"("tools": [)" + std::string(kWeatherTool) +
                                        R"(], "tool_choice": "auto", "skip_special_tokens": true)"),
                               kModel, ToolCallParser::kLlama3Json);
  ASSERT_TRUE(kept.ok()) << kept.status();
  EXPECT_EQ(kept->tool_calls->parser, ToolCallParser::kLlama3Json);
  EXPECT_TRUE(kept->tool_calls->parallel_tool_calls);
  EXPECT_TRUE(kept->request.skip_special_tokens());
  // Without tools: tool_choice "none" and parallel_tool_calls are accepted and change nothing.
  auto plain =
      ParseChatRequest(ChatBody(R"("tool_choice": "none", "parallel_tool_calls": true)"), kModel);
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_FALSE(plain->tool_calls.has_value());
  EXPECT_EQ(plain->request.prompt().chat().tools_size(), 0);
  EXPECT_EQ(plain->request.prompt().chat().tool_choice(), v1::Chat::TOOL_CHOICE_AUTO);
  EXPECT_FALSE(plain->request.prompt().chat().has_parallel_tool_calls());
}

// tool_choice and parallel_tool_calls go into prompt.chat (the conversion compiles the calls'
// grammar for "required" and a named function); every choice but "none" reads the output for
// calls; strict tools only where the calls are forced (or none are read).
TEST(OpenAiChatRequest, ToolChoiceRequiredNamedAndStrict) {
  const std::string tools = R"("tools": [)" + std::string(kWeatherTool) +
                            R"(, {"function": {"name": "now", "strict": true}}])";
  const auto parse = [&](const std::string& extra) {
    return ParseChatRequest(ChatBody(tools + extra), kModel, ToolCallParser::kHermes);
  };
  auto call = parse("");    // auto by default
  ASSERT_FALSE(call.ok());  // "now" is strict
  EXPECT_THAT(std::string(call.status().message()),
              HasSubstr(R"(key "tools[1].function.strict" must be false with tool_choice "auto")"));

  call = parse(R"(, "tool_choice": "required")");
  ASSERT_TRUE(call.ok()) << call.status();
  const v1::Chat* chat = &call->request.prompt().chat();
  EXPECT_EQ(chat->tool_choice(), v1::Chat::TOOL_CHOICE_REQUIRED);
  EXPECT_EQ(chat->tool_choice_function(), "");
  EXPECT_FALSE(chat->has_parallel_tool_calls());  // unset: true
  ASSERT_TRUE(call->tool_calls.has_value());
  EXPECT_EQ(call->tool_calls->parser, ToolCallParser::kHermes);
  EXPECT_TRUE(call->tool_calls->parallel_tool_calls);
  EXPECT_FALSE(call->request.skip_special_tokens());

  call = parse(
      R"(, "tool_choice": {"type": "function", "function": {"name": "now"}},
          "parallel_tool_calls": false)");
  ASSERT_TRUE(call.ok()) << call.status();
  chat = &call->request.prompt().chat();
  EXPECT_EQ(chat->tool_choice(), v1::Chat::TOOL_CHOICE_AUTO);
  EXPECT_EQ(chat->tool_choice_function(), "now");
  ASSERT_TRUE(chat->has_parallel_tool_calls());
  EXPECT_FALSE(chat->parallel_tool_calls());
  ASSERT_TRUE(call->tool_calls.has_value());
  EXPECT_FALSE(call->tool_calls->parallel_tool_calls);
  // "type" may be left out, as in tools.
  call = parse(R"(, "tool_choice": {"function": {"name": "get_weather"}})");
  ASSERT_TRUE(call.ok()) << call.status();
  EXPECT_EQ(call->request.prompt().chat().tool_choice_function(), "get_weather");

  // "none": rendered, not read; strict promises nothing then.
  call = parse(R"(, "tool_choice": "none", "parallel_tool_calls": true)");
  ASSERT_TRUE(call.ok()) << call.status();
  chat = &call->request.prompt().chat();
  EXPECT_EQ(chat->tool_choice(), v1::Chat::TOOL_CHOICE_NONE);
  EXPECT_TRUE(chat->parallel_tool_calls());
  EXPECT_FALSE(call->tool_calls.has_value());
  // The gRPC validation takes what the HTTP API writes.
  for (const char* extra :
       {R"(, "tool_choice": "required")", R"(, "tool_choice": "none")",
        R"(, "tool_choice": {"function": {"name": "now"}}, "parallel_tool_calls": false)"}) {
    call = parse(extra);
    ASSERT_TRUE(call.ok()) << call.status();
    EXPECT_TRUE(
        ValidateGenerateRequest(call->request, {.vocab_size = 300, .max_model_len = 512}).ok())
        << extra;
  }
}

TEST(OpenAiResponse, ToolChoiceFieldNames) {
  EXPECT_EQ(
      WithHttpFieldNames(absl::InvalidArgumentError(
                             "prompt.chat.tool_choice_function must name one of prompt.chat.tools; "
                             "prompt.chat.tool_choice: required needs a server; "
                             "prompt.chat.parallel_tool_calls must be unset; "
                             "prompt.chat.tools[1].parameters_json: #/properties/n/not"))
          .message(),
      "tool_choice.function.name must name one of tools; tool_choice: required needs a "
      "server; parallel_tool_calls must be unset; tools[1].function.parameters: "
      "#/properties/n/not");
}

TEST(OpenAiChatRequest, ToolRefusalsNameTheField) {
  const std::string tools = R"("tools": [)" + std::string(kWeatherTool) + "]";
  const std::string assistant = R"({"messages": [{"role": "assistant", "tool_calls": )";
  const std::pair<std::string, const char*> cases[] = {
      {ChatBody(R"("tools": [])"), R"(key "tools" must be a list of 1-128 tools)"},
      {ChatBody(R"("tools": {})"), R"(key "tools" must be a list of 1-128 tools)"},
      {ChatBody(R"("tools": [5])"), R"(key "tools[0]" must be a tool)"},
      {ChatBody(R"("tools": [{"type": "code", "function": {"name": "f"}}])"),
       R"(key "tools[0].type" must be "function")"},
      {ChatBody(R"("tools": [{"type": "function"}])"),
       R"(key "tools[0].function" is required and must be an object)"},
      {ChatBody(R"("tools": [{"function": {"name": "f"}, "x": 1}])"),
       R"(key "tools[0].x" is not a known tool key)"},
      {ChatBody(R"("tools": [{"function": {"description": "d"}}])"),
       R"(key "tools[0].function.name" is required and must be a string)"},
      {ChatBody(R"("tools": [{"function": {"name": "get weather"}}])"),
       R"(key "tools[0].function.name" must be 1-64 characters of a-z, A-Z, 0-9, _ and -)"},
      {ChatBody(R"("tools": [{"function": {"name": ")" + std::string(65, 'a') + R"("}}])"),
       R"(key "tools[0].function.name" must be 1-64 characters)"},
      {ChatBody(R"("tools": [{"function": {"name": "f", "description": 1}}])"),
       R"(key "tools[0].function.description" must be a string)"},
      {ChatBody(R"("tools": [{"function": {"name": "f", "parameters": "{}"}}])"),
       R"(key "tools[0].function.parameters" must be an object (a JSON schema))"},
      {ChatBody(R"("tools": [{"function": {"name": "f", "strict": true}}])"),
       R"(key "tools[0].function.strict" must be false with tool_choice "auto": strict arguments need tool_choice "required" or a named function)"},
      {ChatBody(
           R"("tools": [{"function": {"name": "f", "strict": "yes"}}], "tool_choice": "required")"),
       R"(key "tools[0].function.strict" must be true or false)"},
      {ChatBody(R"("tools": [{"function": {"name": "f", "returns": {}}}])"),
       R"(key "tools[0].function.returns" is not a known function key)"},
      {ChatBody(tools + R"(, "tool_choice": {"type": "function", "function": {"name": "f"}})"),
       R"(key "tool_choice.function.name" must name one of tools, got "f")"},
      {ChatBody(tools + R"(, "tool_choice": "sometimes")"),
       R"(key "tool_choice" must be "none", "auto", "required" or {"type": "function", "function": {"name": ...}})"},
      {ChatBody(tools + R"(, "tool_choice": 1)"), R"(key "tool_choice" must be "none", "auto")"},
      {ChatBody(tools + R"(, "tool_choice": {"type": "code", "function": {"name": "f"}})"),
       R"(key "tool_choice.type" must be "function")"},
      {ChatBody(tools + R"(, "tool_choice": {"type": "function"})"),
       R"(key "tool_choice.function" is required and must be an object {name})"},
      {ChatBody(tools + R"(, "tool_choice": {"type": "function", "name": "get_weather"})"),
       R"(key "tool_choice.name" is not a known tool_choice key (type, function))"},
      {ChatBody(tools + R"(, "tool_choice": {"function": {}})"),
       R"(key "tool_choice.function.name" is required and must be a string)"},
      {ChatBody(tools + R"(, "tool_choice": {"function": {"name": "a b"}})"),
       R"(key "tool_choice.function.name" must be 1-64 characters)"},
      {ChatBody(tools + R"(, "tool_choice": {"function": {"name": "get_weather", "x": 1}})"),
       R"(key "tool_choice.function.x" is not a known tool_choice.function key (name))"},
      {ChatBody(R"("tool_choice": "auto")"), R"(key "tool_choice" needs tools)"},
      {ChatBody(R"("tool_choice": "required")"), R"(key "tool_choice" needs tools)"},
      {ChatBody(R"("tool_choice": {"function": {"name": "f"}})"),
       R"(key "tool_choice" needs tools)"},
      {ChatBody(tools +
                R"(, "tool_choice": "required", "response_format": {"type": "json_object"})"),
       R"(key "response_format" cannot be combined with tools)"},
      {ChatBody(tools + R"(, "parallel_tool_calls": "yes")"),
       R"(key "parallel_tool_calls" must be true or false)"},
      {assistant + R"("x"}]})", R"(key "messages[0].tool_calls" must be a list of tool calls)"},
      {R"({"messages": [{"role": "user", "tool_calls": []}]})",
       R"(key "messages[0].tool_calls" is for messages of role "assistant" only)"},
      {assistant + R"([5]}]})", R"(key "messages[0].tool_calls[0]" must be a tool call)"},
      {assistant + R"([{"type": "function", "function": {"name": "f", "arguments": "{}"}}]}]})",
       R"(key "messages[0].tool_calls[0].id" is required and must be a string)"},
      {assistant + R"([{"id": "c", "type": "x", "function": {"name": "f", "arguments": "{}"}}]}]})",
       R"(key "messages[0].tool_calls[0].type" must be "function")"},
      {assistant + R"([{"id": "c", "function": {"name": "f", "arguments": "{}"}, "n": 1}]}]})",
       R"(key "messages[0].tool_calls[0].n" is not a known tool call key)"},
      {assistant + R"([{"id": "c"}]}]})",
       R"(key "messages[0].tool_calls[0].function" is required and must be an object)"},
      {assistant + R"([{"id": "c", "function": {"arguments": "{}"}}]}]})",
       R"(key "messages[0].tool_calls[0].function.name" is required and must be a string)"},
      {assistant + R"([{"id": "c", "function": {"name": "f"}}]}]})",
       R"(key "messages[0].tool_calls[0].function.arguments" must be a string holding a JSON object)"},
      {assistant + R"([{"id": "c", "function": {"name": "f", "arguments": {"a": 1}}}]}]})",
       R"(key "messages[0].tool_calls[0].function.arguments" must be a string holding a JSON object)"},
      {assistant + R"([{"id": "c", "function": {"name": "f", "arguments": "{\"a\": "}}]}]})",
       R"(key "messages[0].tool_calls[0].function.arguments" must be a string holding a JSON object)"},
      {assistant + R"([{"id": "c", "function": {"name": "f", "arguments": "[1]"}}]}]})",
       R"(key "messages[0].tool_calls[0].function.arguments" must be a string holding a JSON object)"},
      {assistant + R"([{"id": "c", "function": {"name": "f", "arguments": "{}", "x": 1}}]}]})",
       R"(key "messages[0].tool_calls[0].function.x" is not a known function key)"},
      {R"({"messages": [{"role": "user", "content": "x", "tool_call_id": "c"}]})",
       R"(key "messages[0].tool_call_id" is for messages of role "tool" only)"},
      {R"({"messages": [{"role": "tool", "content": "x", "tool_call_id": 5}]})",
       R"(key "messages[0].tool_call_id" must be a string)"},
  };
  for (const auto& [body, expect] : cases) {
    auto call = ParseChatRequest(body, kModel, ToolCallParser::kHermes);
    ASSERT_FALSE(call.ok()) << body;
    EXPECT_EQ(call.status().code(), absl::StatusCode::kInvalidArgument) << body;
    EXPECT_THAT(std::string(call.status().message()), HasSubstr(expect)) << body;
  }
  // Tool calls in the history and tool results need no parser; tools do.
  EXPECT_TRUE(ParseChatRequest(
                  R"({"messages": [{"role": "assistant", "tool_calls": [{"id": "c", "function":
                      {"name": "f", "arguments": "{}"}}]}, {"role": "tool", "content": "1"}]})",
                  kModel)
                  .ok());
  EXPECT_THAT(std::string(ParseChatRequest(ChatBody(tools), kModel).status().message()),
              HasSubstr(R"(key "tools" needs a tool-call parser)"));
}

// response_format on both calls: text is none, json_object, and json_schema whose schema keeps
// the client's key order (the output's property order), compact.
TEST(OpenAiRequest, ResponseFormat) {
  const std::string schema =
      R"({"type": "object", "properties": {"zeta": {"type": "string"}, "alpha": {"enum": [2, 1]},
          "mid": {"type": "object", "properties": {"y": {}, "b": {}}}}, "required": ["zeta"]})";
  const std::string format =
      R"("response_format": {"type": "json_schema", "json_schema": {"name": "Reply_1",
          "description": "d", "strict": true, "schema": )" +
      schema + "}}";
  for (const bool chat : {false, true}) {
    const auto parse = [&](const std::string& extra) {
      return chat ? ParseChatRequest(ChatBody(extra), kModel)
                  : Parse(R"({"prompt": "x", )" + extra + "}");
    };
    auto call = parse(format);
    ASSERT_TRUE(call.ok()) << call.status();
    const v1::GenerateRequest& r = call->request;
    ASSERT_EQ(r.response_format().format_case(), v1::ResponseFormat::kJsonSchema);
    EXPECT_EQ(r.response_format().json_schema().name(), "Reply_1");
    EXPECT_EQ(r.response_format().json_schema().schema_json(),
              R"({"type":"object","properties":{"zeta":{"type":"string"},"alpha":{"enum":[2,1]},)"
              R"("mid":{"type":"object","properties":{"y":{},"b":{}}}},"required":["zeta"]})");
    auto object = parse(R"("response_format": {"type": "json_object"})");
    ASSERT_TRUE(object.ok()) << object.status();
    EXPECT_EQ(object->request.response_format().format_case(), v1::ResponseFormat::kJsonObject);
    for (const char* none :
         {R"("response_format": {"type": "text"})", R"("response_format": null)"}) {
      auto text = parse(none);
      ASSERT_TRUE(text.ok()) << text.status();
      EXPECT_FALSE(text->request.has_response_format()) << none;
    }
  }
}

// vLLM's guided_regex and guided_choice on both calls, each alone.
TEST(OpenAiRequest, GuidedRegexAndChoice) {
  for (const bool chat : {false, true}) {
    const auto parse = [&](const std::string& extra) {
      return chat ? ParseChatRequest(ChatBody(extra), kModel)
                  : Parse(R"({"prompt": "x", )" + extra + "}");
    };
    auto regex = parse(R"("guided_regex": "\\d{3}-[a-z]+")");
    ASSERT_TRUE(regex.ok()) << regex.status();
    EXPECT_EQ(regex->request.response_format().regex().pattern(), R"(\d{3}-[a-z]+)");
    auto choice = parse(R"("guided_choice": ["yes", "no"])");
    ASSERT_TRUE(choice.ok()) << choice.status();
    EXPECT_THAT(choice->request.response_format().choice().choices(),
                ::testing::ElementsAre("yes", "no"));
    const std::pair<const char*, const char*> refusals[] = {
        {R"("guided_regex": 5)", R"(key "guided_regex" must be a string)"},
        {R"("guided_choice": [])", R"(key "guided_choice" must be a non-empty array of strings)"},
        {R"("guided_choice": ["a", 1])", R"(key "guided_choice[1]" must be a string)"},
        {R"("guided_regex": "a", "guided_choice": ["a"])",
         R"(key "guided_regex" cannot be combined with response_format or the other guided_)"},
        {R"("guided_choice": ["a"], "response_format": {"type": "json_object"})",
         R"(key "guided_choice" cannot be combined)"},
    };
    for (const auto& [extra, expect] : refusals) {
      auto r = parse(extra);
      ASSERT_FALSE(r.ok()) << extra;
      EXPECT_THAT(std::string(r.status().message()), HasSubstr(expect)) << extra;
    }
  }
}

TEST(OpenAiRequest, ResponseFormatRefusalsNameTheKey) {
  const std::pair<const char*, const char*> cases[] = {
      {R"("json")", R"(key "response_format" must be an object)"},
      {R"({"type": "xml"})",
       R"(key "response_format.type" must be "text", "json_object" or "json_schema")"},
      {R"({"json_schema": {}})", R"(key "response_format.type" must be)"},
      {R"({"type": "json_object", "schema": {}})",
       R"(key "response_format.schema" is not a known response_format key)"},
      {R"({"type": "json_object", "json_schema": {"name": "a", "schema": {}}})",
       R"(key "response_format.json_schema" is for "type": "json_schema" only)"},
      {R"({"type": "json_schema"})",
       R"(key "response_format.json_schema" is required and must be an object)"},
      {R"({"type": "json_schema", "json_schema": {"schema": {}}})",
       R"(key "response_format.json_schema.name" is required and must be a string)"},
      {R"({"type": "json_schema", "json_schema": {"name": "a b", "schema": {}}})",
       R"(key "response_format.json_schema.name" must be 1-64 characters of a-z, A-Z, 0-9, _ and -)"},
      {R"({"type": "json_schema", "json_schema": {"name": "a"}})",
       R"(key "response_format.json_schema.schema" is required)"},
      {R"({"type": "json_schema", "json_schema": {"name": "a", "schema": null}})",
       R"(key "response_format.json_schema.schema" is required)"},
      {R"({"type": "json_schema", "json_schema": {"name": "a", "schema": "{}"}})",
       R"(key "response_format.json_schema.schema" must be an object (a JSON Schema))"},
      {R"({"type": "json_schema", "json_schema": {"name": "a", "schema": {}, "strict": 1}})",
       R"(key "response_format.json_schema.strict" must be true or false)"},
      {R"({"type": "json_schema", "json_schema": {"name": "a", "schema": {}, "description": 1}})",
       R"(key "response_format.json_schema.description" must be a string)"},
      {R"({"type": "json_schema", "json_schema": {"name": "a", "schema": {}, "x": 1}})",
       R"(key "response_format.json_schema.x" is not a known json_schema key)"},
  };
  for (const auto& [format, expect] : cases) {
    const std::string extra = std::string(R"("response_format": )") + format;
    for (const auto& call :
         {Parse(R"({"prompt": "x", )" + extra + "}"), ParseChatRequest(ChatBody(extra), kModel)}) {
      ASSERT_FALSE(call.ok()) << format;
      EXPECT_EQ(call.status().code(), absl::StatusCode::kInvalidArgument) << format;
      EXPECT_THAT(std::string(call.status().message()), HasSubstr(expect)) << format;
    }
  }
  // Not with tools read for calls; with tool_choice "none" the tools only reach the prompt.
  const std::string tools = R"("tools": [)" + std::string(kWeatherTool) + "], ";
  const std::string object = R"("response_format": {"type": "json_object"})";
  auto both = ParseChatRequest(ChatBody(tools + object), kModel, ToolCallParser::kHermes);
  EXPECT_EQ(both.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(both.status().message()),
              HasSubstr(R"(key "response_format" cannot be combined with tools)"));
  auto none = ParseChatRequest(ChatBody(tools + R"("tool_choice": "none", )" + object), kModel,
                               ToolCallParser::kHermes);
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_TRUE(none->request.response_format().has_json_object());
  auto text = ParseChatRequest(ChatBody(tools + R"("response_format": {"type": "text"})"), kModel,
                               ToolCallParser::kHermes);
  EXPECT_TRUE(text.ok()) << text.status();
  // The gRPC field's name as the HTTP API spells it (in a schema the compiler refused).
  EXPECT_EQ(WithHttpFieldNames(absl::InvalidArgumentError(
                                   "response_format.json_schema.schema_json: #/properties/a: x"))
                .message(),
            "response_format.json_schema.schema: #/properties/a: x");
}

// The bundled model's byte-level BPE tokenizer (for the chat form's "bytes").
std::unique_ptr<Tokenizer> BundledTokenizer() {
  auto t = Tokenizer::FromFile("models/bundled/attnres-tiny-stories/tokenizer.json");
  EXPECT_TRUE(t.ok()) << t.status();
  return t.ok() ? *std::move(t) : nullptr;
}

TEST(OpenAiChatResponse, CompletionAndChunks) {
  std::unique_ptr<Tokenizer> tokenizer = BundledTokenizer();
  ASSERT_NE(tokenizer, nullptr);
  const int h = tokenizer->TokenToId("h").value_or(-1), q = tokenizer->TokenToId("q").value_or(-1);
  ASSERT_GE(h, 0);
  ASSERT_GE(q, 0);
  v1::GenerateResponse r;
  r.set_text("hi!");
  *r.add_logprobs() = Logprob(h, "h", -0.5f);
  r.mutable_logprobs(0)->mutable_top(0)->set_token_id(q);
  r.mutable_logprobs(0)->mutable_top(0)->set_token("q");
  r.set_finish_reason(v1::FINISH_REASON_STOP);
  r.mutable_usage()->set_prompt_tokens(5);
  r.mutable_usage()->set_completion_tokens(3);
  const CompletionMeta meta{
      .chat = true, .id = "chatcmpl-x", .model = "tiny", .created = 4, .logprobs = true};
  const auto j = ChatCompletionJson({r}, meta, *tokenizer);
  EXPECT_EQ(j["object"], "chat.completion");
  EXPECT_EQ(j["id"], "chatcmpl-x");
  const auto& choice = j["choices"][0];
  EXPECT_EQ(choice["message"], nlohmann::ordered_json({{"role", "assistant"}, {"content", "hi!"}}));
  EXPECT_EQ(choice["finish_reason"], "stop");
  const auto& entry = choice["logprobs"]["content"][0];
  EXPECT_EQ(entry["token"], "h");
  EXPECT_FLOAT_EQ(entry["logprob"].get<float>(), -0.5f);
  EXPECT_EQ(entry["bytes"], nlohmann::ordered_json({'h'}));
  EXPECT_EQ(entry["top_logprobs"][0]["token"], "q");
  EXPECT_EQ(entry["top_logprobs"][0]["bytes"], nlohmann::ordered_json({'q'}));
  EXPECT_EQ(j["usage"]["total_tokens"], 8);

  // Chunks: the first carries the role (even with no text yet), later ones only content, the
  // last its finish reason; the usage chunk is a chat.completion.chunk too.
  v1::GenerateStreamResponse first, middle, last;
  middle.set_text("hi");
  last.set_finish_reason(v1::FINISH_REASON_LENGTH);
  const CompletionMeta plain{.chat = true, .id = "chatcmpl-y", .model = "tiny", .created = 4};
  const auto a = ChatChunkJson(first, 0, plain, true, *tokenizer);
  EXPECT_EQ(a["object"], "chat.completion.chunk");
  EXPECT_EQ(a["choices"][0]["delta"],
            nlohmann::ordered_json({{"role", "assistant"}, {"content", ""}}));
  EXPECT_TRUE(a["choices"][0]["logprobs"].is_null());
  EXPECT_TRUE(a["choices"][0]["finish_reason"].is_null());
  EXPECT_EQ(ChatChunkJson(middle, 0, plain, false, *tokenizer)["choices"][0]["delta"],
            nlohmann::ordered_json({{"content", "hi"}}));
  const auto c = ChatChunkJson(last, 2, plain, false, *tokenizer);
  EXPECT_TRUE(c["choices"][0]["delta"].empty());
  EXPECT_EQ(c["choices"][0]["index"], 2);
  EXPECT_EQ(c["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(UsageChunkJson(v1::Usage(), plain)["object"], "chat.completion.chunk");
}

// n choices: one entry each, indexed; the prompt counted once in the usage.
TEST(OpenAiResponse, ChoicesAreIndexedAndTheirUsageSummed) {
  v1::GenerateResponse a, b;
  a.set_text("x");
  b.set_text("yz");
  for (auto* r : {&a, &b}) {
    r->set_finish_reason(v1::FINISH_REASON_LENGTH);
    r->mutable_usage()->set_prompt_tokens(4);
    r->mutable_usage()->set_cached_prompt_tokens(r == &a ? 0 : 4);
  }
  a.mutable_usage()->set_completion_tokens(1);
  b.mutable_usage()->set_completion_tokens(2);
  const CompletionMeta meta{.id = "cmpl-n", .model = "tiny", .created = 1};
  const EchoedPrompt echo{.text = "p ", .first_token = "p"};
  const auto j = CompletionJson({a, b}, meta, 2, {&echo, &echo});
  ASSERT_EQ(j["choices"].size(), 2u);
  EXPECT_EQ(j["choices"][1]["index"], 1);
  EXPECT_EQ(j["choices"][0]["text"], "p x");  // every choice echoes the prompt
  EXPECT_EQ(j["choices"][1]["text"], "p yz");
  EXPECT_EQ(j["usage"]["prompt_tokens"], 4);
  EXPECT_EQ(j["usage"]["completion_tokens"], 3);
  EXPECT_EQ(j["usage"]["total_tokens"], 7);
  const CompletionMeta chat{.chat = true, .id = "chatcmpl-n", .model = "tiny", .created = 1};
  std::unique_ptr<Tokenizer> tokenizer = BundledTokenizer();
  ASSERT_NE(tokenizer, nullptr);
  const auto c = ChatCompletionJson({a, b}, chat, *tokenizer);
  EXPECT_EQ(c["choices"][1]["message"]["content"], "yz");
  EXPECT_EQ(c["usage"]["completion_tokens"], 3);
  EXPECT_EQ(TotalUsage({a.usage(), b.usage()}, 2).completion_tokens(), 3);
}

TEST(OpenAiChatResponse, ChatFieldNamesAndMissingTemplate) {
  EXPECT_EQ(
      WithHttpFieldNames(absl::InvalidArgumentError(
                             "prompt.chat.messages[1].role must be 1-64 bytes; prompt.chat: x"))
          .message(),
      "messages[1].role must be 1-64 bytes; messages: x");
  EXPECT_EQ(WithHttpFieldNames(
                absl::InvalidArgumentError(
                    "prompt.chat.continue_final_message and prompt.chat.add_generation_prompt "
                    "must not both be true; prompt.chat.continue_final_message: x"))
                .message(),
            "continue_final_message and add_generation_prompt must not both be true; "
            "continue_final_message: x");
  EXPECT_EQ(HttpStatusCode(absl::StatusCode::kFailedPrecondition), 400);
}

// "call_" and 24 letters or digits.
bool IsToolCallId(const std::string& id) {
  if (id.size() != 29 || id.rfind("call_", 0) != 0) return false;
  for (char c : id.substr(5)) {
    if (!std::isalnum(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

TEST(OpenAiChatResponse, ToolCallsInTheMessage) {
  std::unique_ptr<Tokenizer> tokenizer = BundledTokenizer();
  ASSERT_NE(tokenizer, nullptr);
  const ToolCallMode hermes{.parser = ToolCallParser::kHermes};
  v1::GenerateResponse calls, plain, cut;
  calls.set_text(
      "Checking.<tool_call>{\"name\": \"get_weather\", \"arguments\": {\"city\": "
      "\"Paris\"}}</tool_call><tool_call>{\"name\": \"now\"}</tool_call>");
  calls.set_finish_reason(v1::FINISH_REASON_STOP);
  plain.set_text("It is sunny.");
  plain.set_finish_reason(v1::FINISH_REASON_STOP);
  cut.set_text("<tool_call>{\"name\": \"now\"}");  // parses, but max_tokens cut it
  cut.set_finish_reason(v1::FINISH_REASON_LENGTH);
  std::vector<std::optional<ParsedToolCalls>> parsed;
  for (const auto* r : {&calls, &plain, &cut}) parsed.push_back(ChoiceToolCalls(*r, hermes));
  EXPECT_TRUE(parsed[0].has_value());
  EXPECT_FALSE(parsed[1].has_value());
  EXPECT_FALSE(parsed[2].has_value());
  const CompletionMeta meta{.chat = true, .id = "chatcmpl-t", .model = "tiny", .created = 4};
  const auto j = ChatCompletionJson({calls, plain, cut}, meta, *tokenizer, parsed);
  const auto& message = j["choices"][0]["message"];
  EXPECT_EQ(message["role"], "assistant");
  EXPECT_EQ(message["content"], "Checking.");
  ASSERT_EQ(message["tool_calls"].size(), 2u);
  const auto& first = message["tool_calls"][0];
  EXPECT_TRUE(IsToolCallId(first["id"])) << first["id"];
  EXPECT_EQ(first["type"], "function");
  EXPECT_EQ(first["function"], nlohmann::ordered_json({{"name", "get_weather"},
                                                       {"arguments", R"({"city":"Paris"})"}}));
  EXPECT_EQ(message["tool_calls"][1]["function"]["arguments"], "{}");
  EXPECT_NE(message["tool_calls"][1]["id"], first["id"]);
  EXPECT_EQ(j["choices"][0]["finish_reason"], "tool_calls");
  EXPECT_EQ(j["choices"][1]["message"],
            nlohmann::ordered_json({{"role", "assistant"}, {"content", "It is sunny."}}));
  EXPECT_EQ(j["choices"][1]["finish_reason"], "stop");
  EXPECT_EQ(j["choices"][2]["message"]["content"], cut.text());
  EXPECT_EQ(j["choices"][2]["finish_reason"], "length");
  // Calls only: the content is null.
  v1::GenerateResponse only;
  only.set_text("<tool_call>{\"name\": \"now\"}</tool_call>");
  only.set_finish_reason(v1::FINISH_REASON_STOP);
  const auto k = ChatCompletionJson({only}, meta, *tokenizer, {ChoiceToolCalls(only, hermes)});
  EXPECT_TRUE(k["choices"][0]["message"]["content"].is_null());
  EXPECT_EQ(k["choices"][0]["message"]["tool_calls"].size(), 1u);
}

TEST(OpenAiChatResponse, ToolCallChunks) {
  const CompletionMeta meta{.chat = true, .id = "chatcmpl-s", .model = "tiny", .created = 4};
  const std::vector<ParsedToolCall> calls = {{"a", R"({"x":1})"}, {"b", "{}"}};
  const auto chunks = ToolCallChunksJson(calls, 1, meta, /*first=*/false, "");
  ASSERT_EQ(chunks.size(), 2u);
  EXPECT_EQ(chunks[0]["object"], "chat.completion.chunk");
  const auto& choice = chunks[0]["choices"][0];
  EXPECT_EQ(choice["index"], 1);
  EXPECT_TRUE(choice["finish_reason"].is_null());
  EXPECT_FALSE(choice["delta"].contains("role"));
  ASSERT_EQ(choice["delta"]["tool_calls"].size(), 2u);
  const auto& call = choice["delta"]["tool_calls"][1];
  EXPECT_EQ(call["index"], 1);
  EXPECT_TRUE(IsToolCallId(call["id"])) << call["id"];
  EXPECT_EQ(call["type"], "function");
  EXPECT_EQ(call["function"], nlohmann::ordered_json({{"name", "b"}, {"arguments", "{}"}}));
  EXPECT_EQ(chunks[1]["choices"][0]["delta"], nlohmann::ordered_json::object());
  EXPECT_EQ(chunks[1]["choices"][0]["finish_reason"], "tool_calls");
  EXPECT_FALSE(chunks[1]["choices"][0].contains("stop_reason"));
  const auto with_role = ToolCallChunksJson(calls, 0, meta, /*first=*/true, "</s>");
  EXPECT_EQ(with_role[0]["choices"][0]["delta"]["role"], "assistant");
  EXPECT_EQ(with_role[1]["choices"][0]["stop_reason"], "</s>");
}

// A streamed choice read for tool calls, response by response as the engine sends them.
TEST(OpenAiChatResponse, StreamReadingToolCalls) {
  std::unique_ptr<Tokenizer> tokenizer = BundledTokenizer();
  ASSERT_NE(tokenizer, nullptr);
  const CompletionMeta meta{.chat = true, .id = "chatcmpl-s", .model = "tiny", .created = 4};
  const ToolCallMode hermes{.parser = ToolCallParser::kHermes};
  // Each response's events, the finish reason on the last.
  const auto run = [&](const std::vector<std::string>& texts, v1::FinishReason finish) {
    ToolCallStream stream(hermes);
    bool first = true;
    std::vector<std::vector<nlohmann::ordered_json>> out;
    for (size_t i = 0; i < texts.size(); ++i) {
      v1::GenerateStreamResponse r;
      r.set_text(texts[i]);
      if (i + 1 == texts.size()) r.set_finish_reason(finish);
      out.push_back(ChatChunksReadingToolCalls(r, 0, meta, &first, &stream, *tokenizer));
    }
    return out;
  };
  const auto calls = run({"", "Sure.", " <tool", "_call>{\"name\": ", "\"a\"}</tool_call>"},
                         v1::FINISH_REASON_STOP);
  ASSERT_EQ(calls.size(), 5u);
  ASSERT_EQ(calls[0].size(), 1u);  // the role, even without text
  EXPECT_EQ(calls[0][0]["choices"][0]["delta"],
            nlohmann::ordered_json({{"role", "assistant"}, {"content", ""}}));
  ASSERT_EQ(calls[1].size(), 1u);
  EXPECT_EQ(calls[1][0]["choices"][0]["delta"], nlohmann::ordered_json({{"content", "Sure."}}));
  ASSERT_EQ(calls[2].size(), 1u);  // " " goes out, "<tool" is held
  EXPECT_EQ(calls[2][0]["choices"][0]["delta"], nlohmann::ordered_json({{"content", " "}}));
  EXPECT_TRUE(calls[3].empty());   // held
  ASSERT_EQ(calls[4].size(), 2u);  // the calls, then the finish
  const auto& delta = calls[4][0]["choices"][0]["delta"];
  EXPECT_FALSE(delta.contains("content"));
  ASSERT_EQ(delta["tool_calls"].size(), 1u);
  EXPECT_EQ(delta["tool_calls"][0]["index"], 0);
  EXPECT_EQ(delta["tool_calls"][0]["function"],
            nlohmann::ordered_json({{"name", "a"}, {"arguments", "{}"}}));
  EXPECT_EQ(calls[4][1]["choices"][0]["finish_reason"], "tool_calls");

  // Cut by length: the held text is flushed as content with "length".
  const auto cut = run({"<tool_call>{\"name\": \"a\"}"}, v1::FINISH_REASON_LENGTH);
  ASSERT_EQ(cut[0].size(), 1u);
  EXPECT_EQ(
      cut[0][0]["choices"][0]["delta"],
      nlohmann::ordered_json({{"role", "assistant"}, {"content", "<tool_call>{\"name\": \"a\"}"}}));
  EXPECT_EQ(cut[0][0]["choices"][0]["finish_reason"], "length");
  // Not a call: the held text comes out at the end, with "stop".
  const auto bad = run({"x", "<tool_call>oops", "</tool_call>"}, v1::FINISH_REASON_STOP);
  EXPECT_TRUE(bad[1].empty());
  ASSERT_EQ(bad[2].size(), 1u);
  EXPECT_EQ(bad[2][0]["choices"][0]["delta"]["content"], "<tool_call>oops</tool_call>");
  EXPECT_EQ(bad[2][0]["choices"][0]["finish_reason"], "stop");
  // A call in the first and only response: the role still comes first, in its own chunk.
  const auto only = run({"<tool_call>{\"name\": \"a\"}</tool_call>"}, v1::FINISH_REASON_STOP);
  ASSERT_EQ(only[0].size(), 3u);  // role (empty content), calls, finish
  EXPECT_EQ(only[0][0]["choices"][0]["delta"]["role"], "assistant");
  EXPECT_EQ(only[0][2]["choices"][0]["finish_reason"], "tool_calls");
}

}  // namespace
}  // namespace attnres
