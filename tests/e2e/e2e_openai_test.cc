// End-to-end OpenAI-compatible HTTP API (--http-port) against the real attnres-server: a
// completion equals the gRPC API's for the same request; a stream's chunks concatenate to it,
// end with [DONE] and carry usage when asked; refusals are OpenAI error bodies naming the
// field; a client that goes away mid-stream cancels its request; SIGTERM lets an HTTP stream
// finish. Clients are cpp-httplib's.
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <latch>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "e2e_test_util.h"
#include "gmock/gmock.h"
#include "httplib.h"
#include "metrics_client.h"
#include "nlohmann/json.hpp"
#include "server_fixture.h"

namespace attnres::e2e {
namespace {

using nlohmann::json;
using ojson = nlohmann::ordered_json;

constexpr char kHttpMarker[] = "openai api on http://";
// ChatML; refuses roles other than system, user and assistant.
constexpr char kChatTemplate[] = "tests/e2e/data/chatml.jinja";

// The data lines of a server-sent event stream, in order ("[DONE]" included).
std::vector<std::string> Events(const std::string& body) {
  std::vector<std::string> out;
  for (size_t at = 0; (at = body.find("data: ", at)) != std::string::npos;) {
    const size_t end = body.find("\n\n", at);
    out.push_back(body.substr(at + 6, end - at - 6));
    at = end;
  }
  return out;
}

// What one POST /v1/completions got: an HTTP response (ok), or httplib's error.
struct Reply {
  bool ok = false;
  int status = 0;
  std::string body, retry_after, error;
};

// POSTs each body to /v1/completions from its own client, all released at once.
std::vector<Reply> PostTogether(int port, const std::vector<std::string>& bodies) {
  std::vector<Reply> replies(bodies.size());
  std::latch start(static_cast<std::ptrdiff_t>(bodies.size()));
  std::vector<std::thread> threads;
  for (size_t i = 0; i < bodies.size(); ++i) {
    threads.emplace_back([&, i] {
      httplib::Client client("127.0.0.1", port);
      client.set_read_timeout(120, 0);
      start.arrive_and_wait();
      auto res = client.Post("/v1/completions", bodies[i], "application/json");
      if (!res) {
        replies[i].error = httplib::to_string(res.error());
        return;
      }
      replies[i] = {true, res->status, res->body, res->get_header_value("Retry-After"), ""};
    });
  }
  for (std::thread& t : threads) t.join();
  return replies;
}

// The text of a completion's body, whole or streamed (the chunks' texts before [DONE]).
std::string CompletionText(const std::string& body, bool stream) {
  if (!stream) return json::parse(body)["choices"][0]["text"];
  std::string text;
  const std::vector<std::string> events = Events(body);
  for (size_t k = 0; k + 1 < events.size(); ++k) {
    text += json::parse(events[k])["choices"][0]["text"].get<std::string>();
  }
  return text;
}

// A suite's server with the HTTP API on (--http-port 0 and its own flags), started once per
// suite, and a client to it per test.
class HttpServerSuite : public ::testing::Test {
 protected:
  static ServerProcess* StartServer(std::vector<std::string> flags,
                                    const std::string& model_dir = TestModelDir()) {
    flags.insert(flags.begin(), {"--http-port", "0"});
    auto* server = new ServerProcess();
    if (server->Start(model_dir, flags)) return server;
    delete server;
    return nullptr;
  }
  void Connect(const ServerProcess* server) {
    ASSERT_NE(server, nullptr) << "the server did not start";
    port_ = PortFromLog(server->Log(), kHttpMarker);
    ASSERT_GT(port_, 0) << server->Log();
    client_ = std::make_unique<httplib::Client>("127.0.0.1", port_);
    client_->set_read_timeout(120, 0);
  }

  int port_ = 0;
  std::unique_ptr<httplib::Client> client_;
};

class OpenAiE2eTest : public HttpServerSuite {
 protected:
  static void SetUpTestSuite() {
    server_ = StartServer({"--log-level", "debug", "--chat-template", kChatTemplate});
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override { Connect(server_); }

  httplib::Result Post(const json& body) {
    return client_->Post("/v1/completions", body.dump(), "application/json");
  }
  // The greedy completion (EOS ignored) of a prompt a chat template wrote, tokenized without
  // special tokens as chat prompts are: its body, or null after a failed expectation.
  json TemplatedCompletion(const std::string& templated, int max_tokens) {
    auto res = Post({{"prompt", templated},
                     {"max_tokens", max_tokens},
                     {"temperature", 0},
                     {"ignore_eos", true},
                     {"add_special_tokens", false}});
    EXPECT_TRUE(res && res->status == 200) << (res ? res->body : "no response");
    return res && res->status == 200 ? json::parse(res->body) : json();
  }

  static ServerProcess* server_;
};
ServerProcess* OpenAiE2eTest::server_ = nullptr;

TEST_F(OpenAiE2eTest, CompletionEqualsTheGrpcApis) {
  v1::GenerateResponse grpc_response;
  ASSERT_TRUE(Generate(server_->Stub().get(), GreedyRequest("Once upon", 12), &grpc_response).ok());
  auto res = Post({{"prompt", "Once upon"},
                   {"max_tokens", 12},
                   {"temperature", 0},
                   {"ignore_eos", true},
                   {"logprobs", 1}});
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  const json j = json::parse(res->body);
  EXPECT_EQ(j["object"], "text_completion");
  EXPECT_EQ(j["choices"][0]["text"], grpc_response.text());
  EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(j["choices"][0]["logprobs"]["tokens"].size(), 12u);
  EXPECT_EQ(j["usage"]["completion_tokens"], 12);
  EXPECT_EQ(j["usage"]["prompt_tokens"], grpc_response.usage().prompt_tokens());
}

TEST_F(OpenAiE2eTest, StreamConcatenatesToTheCompletion) {
  const json body = {
      {"prompt", "A stream"}, {"max_tokens", 10}, {"temperature", 0}, {"ignore_eos", true}};
  auto whole = Post(body);
  ASSERT_TRUE(whole);
  ASSERT_EQ(whole->status, 200);
  json streamed = body;
  streamed["stream"] = true;
  streamed["stream_options"] = {{"include_usage", true}};
  auto res = Post(streamed);
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200);
  EXPECT_EQ(res->get_header_value("Content-Type"), "text/event-stream");
  const std::vector<std::string> events = Events(res->body);
  ASSERT_GE(events.size(), 3u) << res->body;
  EXPECT_EQ(events.back(), "[DONE]");
  std::string text;
  for (size_t i = 0; i + 2 < events.size(); ++i) {
    text += json::parse(events[i])["choices"][0]["text"].get<std::string>();
  }
  const json last = json::parse(events[events.size() - 3]);
  EXPECT_EQ(last["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(text, json::parse(whole->body)["choices"][0]["text"]);
  const json usage = json::parse(events[events.size() - 2]);
  EXPECT_TRUE(usage["choices"].empty());
  EXPECT_EQ(usage["usage"]["completion_tokens"], 10);
}

// The evaluation harnesses' scoring call: echo, logprobs and max_tokens 0 give the prompt's
// logprobs (the first token's null), equal to the gRPC API's prompt_logprobs.
TEST_F(OpenAiE2eTest, ScoringEchoesThePromptWithItsLogprobs) {
  v1::GenerateRequest request = GreedyRequest("Score this text please", 0);
  request.set_prompt_logprobs(1);
  v1::GenerateResponse grpc_response;
  ASSERT_TRUE(Generate(server_->Stub().get(), request, &grpc_response).ok());
  EXPECT_EQ(grpc_response.token_ids_size(), 0);
  const int n = grpc_response.usage().prompt_tokens();
  ASSERT_EQ(grpc_response.prompt_logprobs_size(), n - 1);
  for (bool stream : {false, true}) {
    auto res = Post({{"prompt", "Score this text please"},
                     {"max_tokens", 0},
                     {"echo", true},
                     {"logprobs", 1},
                     {"stream", stream}});
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 200) << res->body;
    json choice;
    if (stream) {
      const std::vector<std::string> events = Events(res->body);
      ASSERT_EQ(events.size(), 2u) << res->body;  // the one chunk, then [DONE]
      choice = json::parse(events[0])["choices"][0];
    } else {
      choice = json::parse(res->body)["choices"][0];
    }
    EXPECT_EQ(choice["text"], "Score this text please");
    const json& lp = choice["logprobs"];
    ASSERT_EQ(lp["tokens"].size(), static_cast<size_t>(n));
    EXPECT_TRUE(lp["token_logprobs"][0].is_null());
    for (int k = 1; k < n; ++k) {
      EXPECT_NEAR(lp["token_logprobs"][k].get<double>(),
                  grpc_response.prompt_logprobs(k - 1).logprob(), 1e-6);
    }
  }
}

TEST_F(OpenAiE2eTest, RefusalsAreOpenAiErrorsNamingTheField) {
  const std::vector<std::tuple<std::string, int, std::string>> cases = {
      {R"({"prompt": "x", "top_p": 2})", 400, "top_p must be in (0, 1], got 2"},
      {R"({"prompt": [99999999]})", 400, "prompt[0] must be in [0, vocab_size="},
      {R"({"prompt": "x", "logit_bias": {"3": 500}})", 400, "logit_bias[3] must be in [-100, 100]"},
      {R"({"prompt": "x", "max_tokens": 100000})", 400, "max_tokens must be in [0, max_model_len"},
      {R"({"prompt": "x", "n": 17})", 400, R"(key "n" must be in [1, 16], got 17)"},
      {R"({"prompt": "x", "model": "other"})", 404, R"(model "other" is not served here)"},
      {R"({"prompt": )", 400, "not valid JSON"},
  };
  for (const auto& [body, status, message] : cases) {
    auto res = client_->Post("/v1/completions", body, "application/json");
    ASSERT_TRUE(res) << body;
    EXPECT_EQ(res->status, status) << body << " -> " << res->body;
    const json j = json::parse(res->body, nullptr, false);
    ASSERT_TRUE(j.contains("error")) << res->body;
    EXPECT_THAT(j["error"]["message"].get<std::string>(), ::testing::HasSubstr(message));
  }
}

TEST_F(OpenAiE2eTest, ConcurrentRequestsEachGetTheirSoloCompletion) {
  constexpr int kRequests = 24;  // more than a backlog of 5 (HttpServer raises it)
  auto body = [](int i) {
    return json({{"prompt", "Request " + std::to_string(i % 4)},
                 {"max_tokens", 8 + i},
                 {"temperature", 0},
                 {"ignore_eos", true},
                 {"stream", i % 2 == 1}});
  };
  // Solo texts, unary (streams concatenate to the same text, see above).
  std::vector<std::string> solo(kRequests);
  for (int i = 0; i < kRequests; ++i) {
    json unary = body(i);
    unary["stream"] = false;
    auto res = Post(unary);
    ASSERT_TRUE(res && res->status == 200);
    solo[i] = json::parse(res->body)["choices"][0]["text"];
  }
  // Rounds of requests released at once: more connections arrive together than httplib's
  // default listen backlog of 5, which HttpServer raises (a full backlog resets connections).
  std::vector<std::string> bodies;
  for (int i = 0; i < kRequests; ++i) bodies.push_back(body(i).dump());
  for (int round = 0; round < 12; ++round) {
    const std::vector<Reply> replies = PostTogether(port_, bodies);
    for (int i = 0; i < kRequests; ++i) {
      const Reply& r = replies[i];
      ASSERT_TRUE(r.ok) << "round " << round << " request " << i << ": " << r.error;
      ASSERT_EQ(r.status, 200) << r.body;
      // bf16 GPU batches are not bit-invariant at near ties (see LoadE2eTest): exact on the CPU.
      const std::string text = CompletionText(r.body, i % 2 == 1);
      EXPECT_FALSE(text.empty()) << "round " << round << " request " << i;
      if (E2eDevice() == "cpu") {
        EXPECT_EQ(text, solo[i]) << "round " << round << " request " << i;
      }
    }
  }
}

TEST_F(OpenAiE2eTest, TokenizeAndDetokenizeMatchTheGrpcApi) {
  grpc::ClientContext context;
  v1::TokenizeRequest request;
  request.set_text("Hello there, tokens");
  v1::TokenizeResponse grpc_tokens;
  ASSERT_TRUE(server_->Stub()->Tokenize(&context, request, &grpc_tokens).ok());
  auto res = client_->Post("/tokenize", R"({"prompt": "Hello there, tokens"})", "application/json");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  const json tokens = json::parse(res->body);
  EXPECT_EQ(tokens["tokens"].get<std::vector<int32_t>>(), Ids(grpc_tokens.token_ids()));
  EXPECT_EQ(tokens["count"], grpc_tokens.token_ids_size());
  auto text =
      client_->Post("/detokenize", json({{"tokens", tokens["tokens"]}}).dump(), "application/json");
  ASSERT_TRUE(text);
  ASSERT_EQ(text->status, 200) << text->body;
  EXPECT_EQ(json::parse(text->body)["prompt"], "Hello there, tokens");
  auto bad = client_->Post("/detokenize", R"({"tokens": [5, 99999999]})", "application/json");
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
  EXPECT_THAT(json::parse(bad->body)["error"]["message"].get<std::string>(),
              ::testing::HasSubstr("tokens[1] must be in [0, vocab_size="));
}

TEST_F(OpenAiE2eTest, ModelsAndHealth) {
  auto models = client_->Get("/v1/models");
  ASSERT_TRUE(models);
  ASSERT_EQ(models->status, 200);
  const json m = json::parse(models->body);
  ASSERT_EQ(m["data"].size(), 1u);
  auto named = Post({{"prompt", "x"}, {"max_tokens", 1}, {"model", m["data"][0]["id"]}});
  ASSERT_TRUE(named);
  EXPECT_EQ(named->status, 200) << named->body;
  auto health = client_->Get("/health");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
}

TEST_F(OpenAiE2eTest, ClientGoingAwayCancelsTheStream) {
  const json body = {{"prompt", "away"},
                     {"max_tokens", 400},
                     {"ignore_eos", true},
                     {"stream", true},
                     {"temperature", 0}};
  int chunks = 0;
  httplib::Request req;
  req.method = "POST";
  req.path = "/v1/completions";
  req.body = body.dump();
  req.set_header("Content-Type", "application/json");
  req.content_receiver = [&](const char*, size_t, uint64_t, uint64_t) {
    return ++chunks < 3;  // hang up after 3 pieces
  };
  httplib::Client client("127.0.0.1", port_);
  EXPECT_FALSE(client.send(req));  // the client cancelled the transfer
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  bool cancelled = false;
  while (!cancelled && std::chrono::steady_clock::now() < end) {
    cancelled = server_->Log().find("finish=cancelled") != std::string::npos;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(cancelled) << server_->Log();
}

// n choices are n requests: choice i is the completion with the request's seed + i, streamed or
// whole; the prompt is counted once.
TEST_F(OpenAiE2eTest, ChoicesAreTheCompletionsOfConsecutiveSeeds) {
  const json body = {{"prompt", "Once upon a time"}, {"max_tokens", 8}, {"temperature", 1.0},
                     {"ignore_eos", true},           {"seed", 41},      {"n", 3}};
  auto res = Post(body);
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  const json j = json::parse(res->body);
  ASSERT_EQ(j["choices"].size(), 3u);
  for (int i = 0; i < 3; ++i) {
    json one = body;
    one["n"] = 1;
    one["seed"] = 41 + i;
    auto solo = Post(one);
    ASSERT_TRUE(solo && solo->status == 200);
    const json s = json::parse(solo->body);
    EXPECT_EQ(j["choices"][i]["index"], i);
    if (E2eDevice() == "cpu") {  // bf16 batches are not bit-invariant (see LoadE2eTest)
      EXPECT_EQ(j["choices"][i]["text"], s["choices"][0]["text"]) << i;
    }
    EXPECT_EQ(j["usage"]["prompt_tokens"], s["usage"]["prompt_tokens"]);
  }
  EXPECT_EQ(j["usage"]["completion_tokens"], 24);

  json streamed = body;
  streamed["stream"] = true;
  streamed["stream_options"] = {{"include_usage", true}};
  auto stream = Post(streamed);
  ASSERT_TRUE(stream);
  ASSERT_EQ(stream->status, 200) << stream->body;
  const std::vector<std::string> events = Events(stream->body);
  ASSERT_GE(events.size(), 5u);
  EXPECT_EQ(events.back(), "[DONE]");
  std::vector<std::string> texts(3);
  int finished = 0;
  for (size_t k = 0; k + 2 < events.size(); ++k) {
    const json choice = json::parse(events[k])["choices"][0];
    texts.at(choice["index"].get<int>()) += choice["text"].get<std::string>();
    finished += !choice["finish_reason"].is_null();
  }
  EXPECT_EQ(finished, 3);
  for (int i = 0; i < 3; ++i) {
    if (E2eDevice() == "cpu") {
      EXPECT_EQ(texts[i], j["choices"][i]["text"]) << i;
    }
  }
  EXPECT_EQ(json::parse(events[events.size() - 2])["usage"]["completion_tokens"], 24);
}

// A list of prompts: choice p * n + j completes prompt p; each prompt counted once in the usage.
// Batched scoring (echo, logprobs, max_tokens 0), as evaluation harnesses send it, gives each
// prompt its solo scores.
TEST_F(OpenAiE2eTest, PromptListsGiveEachPromptItsChoices) {
  const std::vector<std::string> prompts = {"Once upon a time", "The dog", "A red ball"};
  auto res = Post({{"prompt", json(prompts)},
                   {"max_tokens", 6},
                   {"temperature", 0},
                   {"ignore_eos", true},
                   {"n", 2}});
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  const json j = json::parse(res->body);
  ASSERT_EQ(j["choices"].size(), 6u);
  int prompt_tokens = 0;
  for (size_t p = 0; p < prompts.size(); ++p) {
    auto solo =
        Post({{"prompt", prompts[p]}, {"max_tokens", 6}, {"temperature", 0}, {"ignore_eos", true}});
    ASSERT_TRUE(solo && solo->status == 200);
    const json s = json::parse(solo->body);
    prompt_tokens += s["usage"]["prompt_tokens"].get<int>();
    for (size_t k = 0; k < 2; ++k) {  // greedy: both choices are the solo completion
      const json& choice = j["choices"][2 * p + k];
      EXPECT_EQ(choice["index"], 2 * p + k);
      if (E2eDevice() == "cpu") {
        EXPECT_EQ(choice["text"], s["choices"][0]["text"]) << p;
      }
    }
  }
  EXPECT_EQ(j["usage"]["prompt_tokens"], prompt_tokens);
  EXPECT_EQ(j["usage"]["completion_tokens"], 36);

  auto scored =
      Post({{"prompt", json(prompts)}, {"max_tokens", 0}, {"echo", true}, {"logprobs", 0}});
  ASSERT_TRUE(scored);
  ASSERT_EQ(scored->status, 200) << scored->body;
  const json sj = json::parse(scored->body);
  ASSERT_EQ(sj["choices"].size(), 3u);
  for (size_t p = 0; p < prompts.size(); ++p) {
    auto solo = Post({{"prompt", prompts[p]}, {"max_tokens", 0}, {"echo", true}, {"logprobs", 0}});
    ASSERT_TRUE(solo && solo->status == 200);
    const json want = json::parse(solo->body)["choices"][0];
    const json& got = sj["choices"][p];
    EXPECT_EQ(got["text"], prompts[p]);
    ASSERT_EQ(got["logprobs"]["tokens"], want["logprobs"]["tokens"]) << p;
    // The prompts are computed in one step together: exact on the CPU (batch-invariant), within
    // bf16 rounding on the GPU (GEMM shapes differ with the batch).
    const double tolerance = E2eDevice() == "cpu" ? 1e-5 : 0.1;
    for (size_t k = 1; k < want["logprobs"]["token_logprobs"].size(); ++k) {
      EXPECT_NEAR(got["logprobs"]["token_logprobs"][k].get<double>(),
                  want["logprobs"]["token_logprobs"][k].get<double>(), tolerance)
          << p << " " << k;
    }
  }
  auto bad = Post({{"prompt", json::array({"fine", ""})}, {"max_tokens", 2}});
  ASSERT_TRUE(bad);
  EXPECT_EQ(bad->status, 400);
  EXPECT_THAT(json::parse(bad->body)["error"]["message"].get<std::string>(),
              ::testing::HasSubstr("prompt[1]: prompt must not be empty"));
}

// A conversation: (role, content) messages.
using Conversation = std::vector<std::pair<std::string, std::string>>;

// What tests/e2e/data/chatml.jinja writes for these messages, with the assistant's header.
std::string ChatMl(const Conversation& messages) {
  std::string text;
  for (const auto& [role, content] : messages) {
    text += "<|im_start|>" + role + "\n" + content + "<|im_end|>\n";
  }
  return text + "<|im_start|>assistant\n";
}

// The conversation as /v1/chat/completions messages.
json MessagesJson(const Conversation& messages) {
  json out = json::array();
  for (const auto& [role, content] : messages)
    out.push_back({{"role", role}, {"content", content}});
  return out;
}

// A greedy gRPC request (GreedyRequest's settings) whose prompt is the conversation.
v1::GenerateRequest GreedyChatRequest(const Conversation& messages, int max_tokens) {
  v1::GenerateRequest request = GreedyRequest("", max_tokens);
  v1::Chat* chat = request.mutable_prompt()->mutable_chat();
  for (const auto& [role, content] : messages) {
    v1::ChatMessage* message = chat->add_messages();
    message->set_role(role);
    message->set_content(content);
  }
  return request;
}

// A chat completion is the completion of the prompt its template writes (tokenized without
// special tokens), over HTTP and over gRPC's prompt.chat alike.
TEST_F(OpenAiE2eTest, ChatCompletionIsTheCompletionOfTheTemplatedPrompt) {
  const Conversation conversation = {{"system", "Tell stories."}, {"user", "Once upon a time"}};
  const json expected = TemplatedCompletion(ChatMl(conversation), 12);
  ASSERT_FALSE(expected.is_null());
  auto chat = client_->Post("/v1/chat/completions",
                            json({{"messages", MessagesJson(conversation)},
                                  {"max_completion_tokens", 12},
                                  {"temperature", 0},
                                  {"ignore_eos", true},
                                  {"logprobs", true},
                                  {"top_logprobs", 2}})
                                .dump(),
                            "application/json");
  ASSERT_TRUE(chat);
  ASSERT_EQ(chat->status, 200) << chat->body;
  const json j = json::parse(chat->body);
  EXPECT_EQ(j["object"], "chat.completion");
  EXPECT_THAT(j["id"].get<std::string>(), ::testing::StartsWith("chatcmpl-"));
  const json& choice = j["choices"][0];
  EXPECT_EQ(choice["message"]["role"], "assistant");
  EXPECT_EQ(choice["message"]["content"], expected["choices"][0]["text"]);
  EXPECT_EQ(choice["finish_reason"], "length");
  ASSERT_EQ(choice["logprobs"]["content"].size(), 12u);
  EXPECT_EQ(choice["logprobs"]["content"][0]["top_logprobs"].size(), 2u);
  EXPECT_EQ(j["usage"]["prompt_tokens"], expected["usage"]["prompt_tokens"]);

  v1::GenerateResponse grpc_response;
  ASSERT_TRUE(
      Generate(server_->Stub().get(), GreedyChatRequest(conversation, 12), &grpc_response).ok());
  EXPECT_EQ(grpc_response.text(), choice["message"]["content"]);
  EXPECT_EQ(grpc_response.usage().prompt_tokens(), expected["usage"]["prompt_tokens"]);
  grpc::ClientContext context;
  v1::ModelInfo info;
  ASSERT_TRUE(server_->Stub()->GetModelInfo(&context, v1::GetModelInfoRequest(), &info).ok());
  EXPECT_TRUE(info.has_chat_template());
}

// continue_final_message: a conversation ending in a started assistant answer is completed as
// the text its template writes without the generation prompt, cut right after that answer (its
// trailing space kept: ChatML keeps it), over HTTP (text parts joined), gRPC and the CLI alike.
TEST_F(OpenAiE2eTest, ContinueFinalMessageCompletesTheCutTemplatedPrompt) {
  const Conversation asked = {{"system", "Tell stories."}, {"user", "Once upon a time"}};
  Conversation started = asked;
  started.emplace_back("assistant", "there was a ");
  const json expected = TemplatedCompletion(ChatMl(asked) + "there was a ", 8);
  ASSERT_FALSE(expected.is_null());
  json body = {{"messages", MessagesJson(started)},
               {"continue_final_message", true},
               {"max_tokens", 8},
               {"temperature", 0},
               {"ignore_eos", true}};
  auto chat = client_->Post("/v1/chat/completions", body.dump(), "application/json");
  ASSERT_TRUE(chat);
  ASSERT_EQ(chat->status, 200) << chat->body;
  const json j = json::parse(chat->body);
  EXPECT_EQ(j["choices"][0]["message"]["content"], expected["choices"][0]["text"]);
  EXPECT_EQ(j["usage"]["prompt_tokens"], expected["usage"]["prompt_tokens"]);
  // Text parts "there", "was a " are joined by a newline before the template sees them.
  body["messages"][2]["content"] = {{{"type", "text"}, {"text", "there"}},
                                    {{"type", "text"}, {"text", "was a "}}};
  auto parts = client_->Post("/v1/chat/completions", body.dump(), "application/json");
  ASSERT_TRUE(parts);
  ASSERT_EQ(parts->status, 200) << parts->body;
  const json parts_text = TemplatedCompletion(ChatMl(asked) + "there\nwas a ", 8);
  ASSERT_FALSE(parts_text.is_null());
  EXPECT_EQ(json::parse(parts->body)["choices"][0]["message"]["content"],
            parts_text["choices"][0]["text"]);

  v1::GenerateRequest request = GreedyChatRequest(started, 8);
  v1::Chat* grpc_chat = request.mutable_prompt()->mutable_chat();
  grpc_chat->set_continue_final_message(true);
  v1::GenerateResponse grpc_response;
  ASSERT_TRUE(Generate(server_->Stub().get(), request, &grpc_response).ok());
  EXPECT_EQ(grpc_response.text(), expected["choices"][0]["text"]);

  CommandResult cli =
      RunCommand({EnvPath("ATTNRES_CLI"), "--target", server_->target(), "generate", "--message",
                  "system:Tell stories.", "--message", "user:Once upon a time", "--message",
                  "assistant:there was a ", "--continue-final-message", "--max-tokens", "8",
                  "--temperature", "0", "--ignore-eos"},
                 60);
  ASSERT_EQ(cli.exit_code, 0) << cli.err;
  EXPECT_EQ(cli.out, expected["choices"][0]["text"].get<std::string>() + "\n");

  // Not with the generation prompt; the final message must be in the text.
  body["add_generation_prompt"] = true;
  auto both = client_->Post("/v1/chat/completions", body.dump(), "application/json");
  ASSERT_TRUE(both);
  EXPECT_EQ(both->status, 400) << both->body;
  EXPECT_THAT(json::parse(both->body)["error"]["message"].get<std::string>(),
              ::testing::HasSubstr(
                  "continue_final_message and add_generation_prompt must not both be true"));
  grpc_chat->set_add_generation_prompt(true);
  grpc::Status status = Generate(server_->Stub().get(), request, &grpc_response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(),
              ::testing::HasSubstr("prompt.chat.continue_final_message and "
                                   "prompt.chat.add_generation_prompt must not both be true"));
}

// attnres-cli chat: each stdin line is a user turn; each answer is the completion of the whole
// conversation so far (its earlier answers included) as the template writes it.
TEST_F(OpenAiE2eTest, CliChatKeepsTheConversation) {
  const std::string target = server_->target();
  CommandResult r = RunCommand({EnvPath("ATTNRES_CLI"), "--target", target, "chat", "--system",
                                "Tell stories.", "--max-tokens", "5", "--temperature", "0"},
                               60, "Hello there\n\nWhat next?\n");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(r.err, "");  // no "> " prompt: stdin is not a terminal
  auto complete = [&](const std::string& templated) {
    auto res = Post({{"prompt", templated},
                     {"max_tokens", 5},
                     {"temperature", 0},
                     {"add_special_tokens", false}});
    EXPECT_TRUE(res && res->status == 200);
    return res ? json::parse(res->body)["choices"][0]["text"].get<std::string>() : "";
  };
  const std::string first =
      complete(ChatMl({{"system", "Tell stories."}, {"user", "Hello there"}}));
  const std::string second = complete(ChatMl({{"system", "Tell stories."},
                                              {"user", "Hello there"},
                                              {"assistant", first},
                                              {"user", "What next?"}}));
  EXPECT_EQ(r.out, first + "\n" + second + "\n");  // the empty line was no turn
}

// attnres-cli chat --json-schema FILE: each answer is JSON the schema accepts.
TEST_F(OpenAiE2eTest, CliChatKeepsToTheResponseFormat) {
  const std::string schema_file = ::testing::TempDir() + "/attnres-chat-small-schema.json";
  std::ofstream(schema_file) << kSmallSchema;
  CommandResult r = RunCommand(
      {EnvPath("ATTNRES_CLI"), "--target", server_->target(), "chat", "--max-tokens",
       std::to_string(kJsonMaxTokens), "--temperature", "0", "--json-schema", schema_file},
      60, "A record, please\n");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_FALSE(r.out.empty());
  EXPECT_EQ(r.out.back(), '\n');
  EXPECT_TRUE(IsSmallSchemaJson(r.out.substr(0, r.out.size() - 1)));
}

TEST_F(OpenAiE2eTest, ChatStreamStartsWithTheRoleAndConcatenatesToTheCompletion) {
  json body = {{"messages", {{{"role", "user"}, {"content", "A stream, please"}}}},
               {"max_tokens", 10},
               {"temperature", 0},
               {"ignore_eos", true}};
  auto whole = client_->Post("/v1/chat/completions", body.dump(), "application/json");
  ASSERT_TRUE(whole);
  ASSERT_EQ(whole->status, 200) << whole->body;
  body["stream"] = true;
  body["stream_options"] = {{"include_usage", true}};
  auto res = client_->Post("/v1/chat/completions", body.dump(), "application/json");
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  const std::vector<std::string> events = Events(res->body);
  ASSERT_GE(events.size(), 3u) << res->body;
  EXPECT_EQ(events.back(), "[DONE]");
  std::string text;
  for (size_t i = 0; i + 2 < events.size(); ++i) {
    const json chunk = json::parse(events[i]);
    EXPECT_EQ(chunk["object"], "chat.completion.chunk");
    EXPECT_EQ(chunk["choices"][0]["delta"].contains("role"), i == 0) << events[i];
    text += chunk["choices"][0]["delta"].value("content", "");
  }
  EXPECT_EQ(json::parse(events[events.size() - 3])["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(text, json::parse(whole->body)["choices"][0]["message"]["content"]);
  const json usage = json::parse(events[events.size() - 2]);
  EXPECT_EQ(usage["object"], "chat.completion.chunk");
  EXPECT_EQ(usage["usage"]["completion_tokens"], 10);
}

TEST_F(OpenAiE2eTest, ChatRefusalsNameTheMessageOrQuoteTheTemplate) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"messages": [{"role": "tool", "content": "x"}]})",
       "messages: the model's chat template refused the conversation: Unknown role: tool"},
      {R"({"messages": [{"role": "", "content": "x"}]})", "messages[0].role must be 1-64 bytes"},
      // Without --tool-call-parser, tools are refused.
      {R"({"messages": [{"role": "user", "content": "x"}],
           "tools": [{"type": "function", "function": {"name": "f"}}]})",
       R"(key "tools" needs a tool-call parser: start the server with --tool-call-parser)"},
  };
  for (const auto& [body, message] : cases) {
    auto res = client_->Post("/v1/chat/completions", body, "application/json");
    ASSERT_TRUE(res) << body;
    EXPECT_EQ(res->status, 400) << body << " -> " << res->body;
    EXPECT_THAT(json::parse(res->body)["error"]["message"].get<std::string>(),
                ::testing::HasSubstr(message));
  }
  v1::GenerateRequest request = GreedyRequest("", 4);
  request.mutable_prompt()->mutable_chat()->add_messages()->set_role("tool");
  v1::GenerateResponse response;
  const grpc::Status status = Generate(server_->Stub().get(), request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(),
              ::testing::HasSubstr("prompt.chat: the model's chat template refused the "
                                   "conversation: Unknown role: tool"));
}

// response_format over HTTP: completions and chat, whole and streamed, greedy and sampled, give
// JSON the schema accepts (or an object, steered to close its strings), finished with "stop"; the
// completion is the gRPC
// API's for the same request. The schema's key order is the client's, so ojson bodies.
TEST_F(OpenAiE2eTest, ResponseFormatGivesJsonOverBothCalls) {
  const ojson format = {
      {"type", "json_schema"},
      {"json_schema",
       {{"name", "small"}, {"strict", true}, {"schema", ojson::parse(kSmallSchema)}}}};
  const ojson object = {{"type", "json_object"}};
  v1::GenerateRequest request = GreedyRequest("A record:", kJsonMaxTokens);
  request.set_ignore_eos(false);
  *request.mutable_response_format() = SmallSchemaFormat();
  v1::GenerateResponse grpc_response;
  ASSERT_TRUE(Generate(server_->Stub().get(), request, &grpc_response).ok());
  for (const bool chat : {false, true}) {
    const std::string path = chat ? "/v1/chat/completions" : "/v1/completions";
    // The text of a choice, whole or streamed (deltas concatenated), and its finish reason.
    const auto complete = [&](ojson body, bool stream) -> std::pair<std::string, std::string> {
      body["stream"] = stream;
      auto res = client_->Post(path, body.dump(), "application/json");
      EXPECT_TRUE(res && res->status == 200) << (res ? res->body : "no response");
      if (!res || res->status != 200) return {};
      if (!stream) {
        const json choice = json::parse(res->body)["choices"][0];
        return {(chat ? choice["message"]["content"] : choice["text"]).get<std::string>(),
                choice["finish_reason"].get<std::string>()};
      }
      std::string text, finish;
      const std::vector<std::string> events = Events(res->body);
      EXPECT_EQ(events.back(), "[DONE]");
      for (size_t i = 0; i + 1 < events.size(); ++i) {
        const json choice = json::parse(events[i])["choices"][0];
        text += chat ? choice["delta"].value("content", "") : choice["text"].get<std::string>();
        if (!choice["finish_reason"].is_null()) finish = choice["finish_reason"].get<std::string>();
      }
      return {text, finish};
    };
    ojson body = {{"max_tokens", kJsonMaxTokens}, {"temperature", 0}, {"response_format", format}};
    if (chat) {
      body["messages"] = {{{"role", "user"}, {"content", "A record, please"}}};
    } else {
      body["prompt"] = "A record:";
    }
    for (const ojson& sampling : {ojson{{"temperature", 0}}, ojson{{"temperature", 1}, {"seed", 5}},
                                  ojson{{"temperature", 0.8}, {"seed", 9}}}) {
      body.update(sampling);
      for (const bool stream : {false, true}) {
        const auto [text, finish] = complete(body, stream);
        EXPECT_TRUE(IsSmallSchemaJson(text)) << path << " " << sampling.dump() << " " << stream;
        EXPECT_EQ(finish, "stop") << text;
        if (!chat && sampling["temperature"] == 0) {
          EXPECT_EQ(text, grpc_response.text());
        }
      }
      ojson any = body;
      any["response_format"] = object;
      any["logit_bias"] = {{std::to_string(kQuoteToken), 100},
                           {std::to_string(kCloseBraceToken), 50}};
      for (const bool stream : {false, true}) {
        const auto [text, finish] = complete(any, stream);
        EXPECT_TRUE(IsJsonObject(text)) << path << " " << sampling.dump() << " " << stream;
        EXPECT_EQ(finish, "stop") << text;
      }
    }
  }
}

TEST_F(OpenAiE2eTest, ResponseFormatRefusalsNameTheField) {
  const std::string format =
      R"("response_format": {"type": "json_schema", "json_schema": {"name": "s", "schema": )";
  const std::string bad_schema =
      format + R"({"type": "object", "properties": {"id": {"type": "integer", "not": {}}}}}})";
  const std::vector<std::tuple<std::string, std::string, std::string>> cases = {
      {"/v1/completions", R"({"prompt": "x", )" + bad_schema + "}",
       "response_format.json_schema.schema: "},
      {"/v1/chat/completions",
       R"({"messages": [{"role": "user", "content": "x"}], )" + bad_schema + "}",
       "response_format.json_schema.schema: "},
      {"/v1/completions", R"({"prompt": "x", )" + format + "null}}}",
       R"(key "response_format.json_schema.schema" is required)"},
      {"/v1/completions", R"({"prompt": "x", "response_format": {"type": "yaml"}})",
       R"(key "response_format.type" must be "text", "json_object" or "json_schema")"},
      {"/v1/completions",
       R"({"prompt": "x", "max_tokens": 0, "echo": true, "logprobs": 1,
           "response_format": {"type": "json_object"}})",
       "response_format must not be set with max_tokens 0"},
  };
  for (const auto& [path, body, message] : cases) {
    auto res = client_->Post(path, body, "application/json");
    ASSERT_TRUE(res) << body;
    EXPECT_EQ(res->status, 400) << body << " -> " << res->body;
    EXPECT_THAT(json::parse(res->body)["error"]["message"].get<std::string>(),
                ::testing::HasSubstr(message))
        << body;
  }
}

// A server with --tool-call-parser hermes and a Hermes-style template
// (tests/e2e/data/chatml_tools.jinja): tools, calls and results are written into the prompt as
// the template writes them; the bundled model does not call tools, so its output comes back as
// content, whole and streamed, unless tool_choice forces calls (then it is calls of the tools).
// The small-block model: its 2048-token context leaves room for calls after a prompt of tools,
// which the byte-level tokenizer spells a token per byte.
class OpenAiToolsE2eTest : public HttpServerSuite {
 protected:
  static void SetUpTestSuite() {
    server_ = StartServer(
        {"--chat-template", "tests/e2e/data/chatml_tools.jinja", "--tool-call-parser", "hermes"},
        SlowModelDir());
  }
  static void TearDownTestSuite() {
    delete server_;
    server_ = nullptr;
  }
  void SetUp() override { Connect(server_); }
  // Bodies keep their keys in order (nlohmann::json would sort a tool's parameters).
  httplib::Result Post(const std::string& path, const ojson& body) {
    return client_->Post(path, body.dump(), "application/json");
  }

  static ServerProcess* server_;
};
ServerProcess* OpenAiToolsE2eTest::server_ = nullptr;

TEST_F(OpenAiToolsE2eTest, ToolsAndCallsAreTemplatedAndPlainOutputIsContent) {
  // Small: a tiny vocabulary spells the prompt a token per byte.
  const ojson tools = ojson::parse(R"([
      {"type": "function", "function": {"name": "r", "parameters": {"type": "object",
                                                                    "properties": {"c": {}}}}},
      {"function": {"name": "t", "description": "d"}}])");
  const ojson messages = ojson::parse(R"([
      {"role": "user", "content": "Rain?"},
      {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function",
          "function": {"name": "r", "arguments": "{\"c\": \"Oslo\"}"}}]},
      {"role": "tool", "tool_call_id": "c1", "content": "yes"},
      {"role": "user", "content": "Hi"}])");
  // What the template writes: tool | tojson is json.dumps (", " and ": "), keys in the client's
  // order, unset description and parameters null; the call's arguments parsed into an object.
  const std::string templated =
      "<|im_start|>system\n# Tools\n<tools>\n"
      R"({"type": "function", "function": {"name": "r", "description": null, )"
      R"("parameters": {"type": "object", "properties": {"c": {}}}}})"
      "\n"
      R"({"type": "function", "function": {"name": "t", "description": "d", )"
      R"("parameters": null}})"
      "\n</tools><|im_end|>\n"
      "<|im_start|>user\nRain?<|im_end|>\n"
      "<|im_start|>assistant\n<tool_call>\n"
      R"({"name": "r", "arguments": {"c": "Oslo"}})"
      "\n</tool_call><|im_end|>\n"
      "<|im_start|>tool\nc1: yes<|im_end|>\n"
      "<|im_start|>user\nHi<|im_end|>\n"
      "<|im_start|>assistant\n";
  // The same prompt as text; special tokens kept, as the chat request with tools keeps them.
  auto text = Post("/v1/completions", {{"prompt", templated},
                                       {"max_tokens", 12},
                                       {"temperature", 0},
                                       {"add_special_tokens", false},
                                       {"skip_special_tokens", false}});
  ASSERT_TRUE(text);
  ASSERT_EQ(text->status, 200) << text->body;
  const json expected = json::parse(text->body);
  const ojson body = {
      {"messages", messages}, {"tools", tools}, {"max_tokens", 12}, {"temperature", 0}};
  auto chat = Post("/v1/chat/completions", body);
  ASSERT_TRUE(chat);
  ASSERT_EQ(chat->status, 200) << chat->body;
  const json j = json::parse(chat->body);
  const json& choice = j["choices"][0];
  EXPECT_EQ(j["usage"]["prompt_tokens"], expected["usage"]["prompt_tokens"]);
  EXPECT_EQ(choice["message"]["content"], expected["choices"][0]["text"]);
  EXPECT_FALSE(choice["message"].contains("tool_calls")) << chat->body;
  EXPECT_EQ(choice["finish_reason"], expected["choices"][0]["finish_reason"]);
  EXPECT_THAT(choice["finish_reason"].get<std::string>(), ::testing::AnyOf("stop", "length"));

  // Streamed: content deltas concatenate to the same text, the same finish reason.
  ojson streamed = body;
  streamed["stream"] = true;
  auto res = Post("/v1/chat/completions", streamed);
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  const std::vector<std::string> events = Events(res->body);
  ASSERT_GE(events.size(), 2u) << res->body;
  EXPECT_EQ(events.back(), "[DONE]");
  std::string content;
  json finish;
  for (size_t i = 0; i + 1 < events.size(); ++i) {
    const json delta = json::parse(events[i])["choices"][0];
    EXPECT_FALSE(delta["delta"].contains("tool_calls")) << events[i];
    content += delta["delta"].value("content", "");
    if (!delta["finish_reason"].is_null()) finish = delta["finish_reason"];
  }
  EXPECT_EQ(content, expected["choices"][0]["text"]);
  EXPECT_EQ(finish, expected["choices"][0]["finish_reason"]);

  // tool_choice "none" writes the same prompt.
  ojson none = body;
  none["tool_choice"] = "none";
  auto plain = Post("/v1/chat/completions", none);
  ASSERT_TRUE(plain);
  ASSERT_EQ(plain->status, 200) << plain->body;
  EXPECT_EQ(json::parse(plain->body)["usage"]["prompt_tokens"], expected["usage"]["prompt_tokens"]);

  // The same conversation over gRPC's prompt.chat.
  v1::GenerateRequest request = GreedyRequest("", 12);
  request.set_skip_special_tokens(false);
  request.set_ignore_eos(false);
  v1::Chat* grpc_chat = request.mutable_prompt()->mutable_chat();
  for (const ojson& m : messages) {
    v1::ChatMessage* message = grpc_chat->add_messages();
    message->set_role(m["role"]);
    if (m["content"].is_string()) message->set_content(m["content"]);
    if (m.contains("tool_call_id")) message->set_tool_call_id(m["tool_call_id"]);
    for (const ojson& c : m.value("tool_calls", ojson::array())) {
      v1::ToolCall* call = message->add_tool_calls();
      call->set_id(c["id"]);
      call->set_name(c["function"]["name"]);
      call->set_arguments_json(c["function"]["arguments"]);
    }
  }
  for (const ojson& t : tools) {
    v1::Tool* tool = grpc_chat->add_tools();
    tool->set_name(t["function"]["name"]);
    if (t["function"].contains("description")) tool->set_description(t["function"]["description"]);
    if (t["function"].contains("parameters")) {
      tool->set_parameters_json(t["function"]["parameters"].dump());
    }
  }
  v1::GenerateResponse grpc_response;
  ASSERT_TRUE(Generate(server_->Stub().get(), request, &grpc_response).ok());
  EXPECT_EQ(grpc_response.usage().prompt_tokens(), expected["usage"]["prompt_tokens"]);
  EXPECT_EQ(grpc_response.text(), expected["choices"][0]["text"]);
  // The server has --tool-call-parser, so gRPC reads the text too; the bundled model never
  // writes a call, so there are none and the finish reason is HTTP's.
  const v1::FinishReason grpc_finish =
      choice["finish_reason"] == "stop" ? v1::FINISH_REASON_STOP : v1::FINISH_REASON_LENGTH;
  EXPECT_EQ(grpc_response.tool_calls_size(), 0);
  EXPECT_EQ(grpc_response.finish_reason(), grpc_finish);

  // Streamed over gRPC: the same text, no calls on the final response.
  const StreamResult grpc_stream = GenerateStream(server_->Stub().get(), request);
  ASSERT_TRUE(grpc_stream.status.ok()) << grpc_stream.status.error_message();
  ASSERT_FALSE(grpc_stream.chunks.empty());
  EXPECT_EQ(grpc_stream.text, expected["choices"][0]["text"]);
  EXPECT_EQ(grpc_stream.chunks.back().finish_reason(), grpc_finish);
  for (const v1::GenerateStreamResponse& chunk : grpc_stream.chunks) {
    EXPECT_EQ(chunk.tool_calls_size(), 0);
  }
}

// Forced calls (tool_choice "required" or a named function) need tools whose arguments are few
// (an enum, a short string, a boolean): the random test model's output, constrained to calls, is
// then whole well within max_tokens. "strict" is taken where calls are forced.
constexpr char kForcedTools[] = R"([
    {"type": "function", "function": {"name": "w", "strict": true, "parameters": {
        "type": "object", "properties": {"u": {"enum": ["c", "f"]},
        "c": {"type": "string", "maxLength": 4}}, "required": ["u", "c"]}}},
    {"type": "function", "function": {"name": "b", "parameters": {"type": "object",
        "properties": {"x": {"type": "boolean"}}, "required": ["x"]}}}])";

// Whether a call names one of kForcedTools (`only` when set) with arguments its schema accepts.
::testing::AssertionResult IsForcedToolCall(const std::string& name, const std::string& arguments,
                                            const std::string& only = "") {
  const json args = json::parse(arguments, nullptr, /*allow_exceptions=*/false);
  bool ok = args.is_object() && (only.empty() || name == only);
  if (ok && name == "w") {
    const auto chars = [](const std::string& s) {  // UTF-8 code points
      return std::count_if(s.begin(), s.end(), [](char c) { return (c & 0xC0) != 0x80; });
    };
    ok = args.size() == 2 && args.contains("u") && (args["u"] == "c" || args["u"] == "f") &&
         args.contains("c") && args["c"].is_string() && chars(args["c"].get<std::string>()) <= 4;
  } else if (ok && name == "b") {
    ok = args.size() == 1 && args.contains("x") && args["x"].is_boolean();
  } else {
    ok = false;
  }
  if (ok) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "not a call of the tools: " << name << " " << arguments;
}

// A chat completion's calls (name and arguments), content and finish reason, whole or streamed.
struct ChatCalls {
  std::vector<std::pair<std::string, std::string>> calls;
  std::string content;
  std::string finish;
};

ChatCalls ReadChatCalls(const std::string& body, bool stream) {
  ChatCalls out;
  const auto add_calls = [&](const json& calls) {
    for (const json& c : calls) {
      out.calls.emplace_back(c["function"]["name"], c["function"]["arguments"]);
      EXPECT_EQ(c["type"], "function");
      EXPECT_EQ(c["id"].get<std::string>().rfind("call_", 0), 0u) << c;
    }
  };
  if (!stream) {
    const json choice = json::parse(body)["choices"][0];
    out.finish = choice["finish_reason"];
    const json& message = choice["message"];
    if (message["content"].is_string()) out.content = message["content"];
    if (message.contains("tool_calls")) add_calls(message["tool_calls"]);
    return out;
  }
  const std::vector<std::string> events = Events(body);
  EXPECT_EQ(events.back(), "[DONE]");
  for (size_t i = 0; i + 1 < events.size(); ++i) {
    const json choice = json::parse(events[i])["choices"][0];
    out.content += choice["delta"].value("content", "");
    if (choice["delta"].contains("tool_calls")) add_calls(choice["delta"]["tool_calls"]);
    if (!choice["finish_reason"].is_null()) out.finish = choice["finish_reason"];
  }
  return out;
}

// The test models' EOS (attnres-make-model's <|endoftext|>). With parallel calls the grammar
// lets another call follow each one, and a random model keeps adding them until max_tokens; a
// bias on EOS, which the grammar allows only where the calls are whole, ends the output after a
// call instead (unless min_tokens holds it back: then another call follows).
constexpr int kEosToken = 256;

// tool_choice "required" and a named function over HTTP: whatever the (random) model samples,
// the output is calls of the tools (the named one only, once) with arguments their schemas
// accept, finished with "tool_calls"; parallel_tool_calls false gives one call, true one or more;
// a stream gives the same calls as the whole completion.
TEST_F(OpenAiToolsE2eTest, ForcedToolChoiceGivesCallsOfTheTools) {
  const ojson tools = ojson::parse(kForcedTools);
  const ojson messages = {{{"role", "user"}, {"content", "Hi"}}};
  const ojson named = {{"type", "function"}, {"function", {{"name", "b"}}}};
  struct Calls {
    bool parallel;
    int min_tokens;  // past one call (~65 tokens): two calls or more
  };
  for (const ojson& choice : {ojson("required"), named}) {
    const std::string only = choice.is_object() ? "b" : "";
    for (const Calls calls : {Calls{true, 0}, Calls{true, 100}, Calls{false, 0}}) {
      for (const ojson& sampling :
           {ojson{{"temperature", 0}}, ojson{{"temperature", 1}, {"seed", 3}},
            ojson{{"temperature", 0.8}, {"seed", 11}}}) {
        ojson body = {
            {"messages", messages}, {"tools", tools}, {"tool_choice", choice}, {"max_tokens", 300}};
        body.update(sampling);
        if (calls.parallel) {
          body["logit_bias"] = {{std::to_string(kEosToken), 100}};
          body["min_tokens"] = calls.min_tokens;
        } else {
          body["parallel_tool_calls"] = false;
        }
        const std::string what = body.dump();
        std::vector<std::pair<std::string, std::string>> whole_calls;
        for (const bool stream : {false, true}) {
          body["stream"] = stream;
          auto res = Post("/v1/chat/completions", body);
          ASSERT_TRUE(res) << what;
          ASSERT_EQ(res->status, 200) << what << " -> " << res->body;
          const ChatCalls got = ReadChatCalls(res->body, stream);
          EXPECT_EQ(got.finish, "tool_calls") << what << " -> " << res->body;
          EXPECT_EQ(got.content, "") << what;
          if (!calls.parallel || !only.empty()) {
            EXPECT_EQ(got.calls.size(), 1u) << what << " -> " << res->body;
          } else {
            EXPECT_GE(got.calls.size(), calls.min_tokens > 0 ? 2u : 1u)
                << what << " -> " << res->body;
          }
          for (const auto& [name, arguments] : got.calls) {
            EXPECT_TRUE(IsForcedToolCall(name, arguments, only)) << what;
          }
          if (stream) {
            EXPECT_EQ(got.calls, whole_calls) << what;
          } else {
            whole_calls = got.calls;
          }
        }
      }
    }
  }
}

// The same over gRPC: TOOL_CHOICE_REQUIRED and tool_choice_function give FINISH_REASON_TOOL_CALLS
// with calls of the tools, the text the model's (the calls in the hermes format), unary and
// streamed alike; greedy, the calls are the HTTP API's.
TEST_F(OpenAiToolsE2eTest, ForcedToolChoiceOverGrpc) {
  const ojson tools = ojson::parse(kForcedTools);
  v1::GenerateRequest request = GreedyRequest("", 300);
  request.set_ignore_eos(false);
  request.set_skip_special_tokens(false);
  v1::Chat* chat = request.mutable_prompt()->mutable_chat();
  v1::ChatMessage* message = chat->add_messages();
  message->set_role("user");
  message->set_content("Hi");
  for (const ojson& t : tools) {
    v1::Tool* tool = chat->add_tools();
    tool->set_name(t["function"]["name"]);
    tool->set_parameters_json(t["function"]["parameters"].dump());
  }
  for (const std::string only : {"", "w"}) {
    chat->set_tool_choice(only.empty() ? v1::Chat::TOOL_CHOICE_REQUIRED
                                       : v1::Chat::TOOL_CHOICE_AUTO);
    chat->set_tool_choice_function(only);
    chat->set_parallel_tool_calls(false);
    v1::GenerateResponse response;
    const grpc::Status status = Generate(server_->Stub().get(), request, &response);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(response.finish_reason(), v1::FINISH_REASON_TOOL_CALLS) << response.text();
    ASSERT_EQ(response.tool_calls_size(), 1) << response.text();
    EXPECT_TRUE(IsForcedToolCall(response.tool_calls(0).name(),
                                 response.tool_calls(0).arguments_json(), only));
    EXPECT_EQ(response.text().rfind("<tool_call>\n{\"name\": \"", 0), 0u) << response.text();

    const StreamResult stream = GenerateStream(server_->Stub().get(), request);
    ASSERT_TRUE(stream.status.ok()) << stream.status.error_message();
    EXPECT_EQ(stream.text, response.text());
    EXPECT_EQ(stream.chunks.back().finish_reason(), v1::FINISH_REASON_TOOL_CALLS);
    ASSERT_EQ(stream.chunks.back().tool_calls_size(), 1);
    EXPECT_EQ(stream.chunks.back().tool_calls(0).name(), response.tool_calls(0).name());
    EXPECT_EQ(stream.chunks.back().tool_calls(0).arguments_json(),
              response.tool_calls(0).arguments_json());

    // Greedy over HTTP: the same call.
    ojson body = {{"messages", {{{"role", "user"}, {"content", "Hi"}}}},
                  {"tools", tools},
                  {"temperature", 0},
                  {"max_tokens", 300},
                  {"parallel_tool_calls", false}};
    body["tool_choice"] = only.empty()
                              ? ojson("required")
                              : ojson{{"type", "function"}, {"function", {{"name", only}}}};
    auto res = Post("/v1/chat/completions", body);
    ASSERT_TRUE(res);
    ASSERT_EQ(res->status, 200) << res->body;
    const ChatCalls http = ReadChatCalls(res->body, false);
    ASSERT_EQ(http.calls.size(), 1u) << res->body;
    EXPECT_EQ(http.calls[0].first, response.tool_calls(0).name());
    EXPECT_EQ(http.calls[0].second, response.tool_calls(0).arguments_json());
  }
  // With parallel calls allowed (and EOS steered to end them), one or more.
  chat->set_tool_choice(v1::Chat::TOOL_CHOICE_REQUIRED);
  chat->clear_tool_choice_function();
  chat->clear_parallel_tool_calls();
  (*request.mutable_sampling()->mutable_logit_bias())[kEosToken] = 100.0f;
  for (const uint64_t seed : {1, 2}) {
    request.mutable_sampling()->set_temperature(1.0f);
    request.mutable_sampling()->set_seed(seed);
    v1::GenerateResponse response;
    ASSERT_TRUE(Generate(server_->Stub().get(), request, &response).ok());
    EXPECT_EQ(response.finish_reason(), v1::FINISH_REASON_TOOL_CALLS) << response.text();
    ASSERT_GE(response.tool_calls_size(), 1) << response.text();
    for (const v1::ToolCall& call : response.tool_calls()) {
      EXPECT_TRUE(IsForcedToolCall(call.name(), call.arguments_json()));
    }
  }

  // Refused: response_format with tools read for calls, a function not among the tools, a
  // schema that cannot be enforced (named by its location).
  const auto refused = [&](v1::GenerateRequest bad, const std::string& expect) {
    v1::GenerateResponse response;
    const grpc::Status status = Generate(server_->Stub().get(), bad, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << expect;
    EXPECT_THAT(status.error_message(), ::testing::HasSubstr(expect));
  };
  v1::GenerateRequest bad = request;
  bad.mutable_response_format()->mutable_json_object();
  refused(bad, "response_format cannot be combined with prompt.chat.tools that are read for calls");
  bad.mutable_prompt()->mutable_chat()->set_tool_choice(v1::Chat::TOOL_CHOICE_AUTO);
  refused(bad, "response_format cannot be combined with prompt.chat.tools that are read for calls");
  bad.mutable_prompt()->mutable_chat()->set_tool_choice(v1::Chat::TOOL_CHOICE_NONE);
  bad.set_max_tokens(4);
  v1::GenerateResponse not_read;
  EXPECT_TRUE(Generate(server_->Stub().get(), bad, &not_read).ok());  // NONE: the text is JSON
  EXPECT_EQ(not_read.tool_calls_size(), 0);
  bad = request;
  bad.mutable_prompt()->mutable_chat()->set_tool_choice_function("x");
  refused(bad, R"(prompt.chat.tool_choice_function must name one of prompt.chat.tools, got "x")");
  bad = request;
  bad.mutable_prompt()->mutable_chat()->mutable_tools(1)->set_parameters_json(
      R"({"type": "object", "properties": {"n": {"type": "integer", "not": {}}}})");
  refused(bad, "prompt.chat.tools[1].parameters_json: #/properties/n/not");
}

TEST_F(OpenAiToolsE2eTest, RefusalsNameTheField) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {R"({"messages": [{"role": "user", "content": "x"}],
           "tools": [{"type": "function", "function": {"name": "f", "strict": true}}]})",
       "tools[0].function.strict\" must be false with tool_choice \"auto\""},
      {R"({"messages": [{"role": "user", "content": "x"}],
           "tools": [{"type": "function", "function": {"name": "f"}}],
           "tool_choice": {"type": "function", "function": {"name": "g"}}})",
       "tool_choice.function.name\" must name one of tools, got \"g\""},
      {R"({"messages": [{"role": "user", "content": "x"}], "tool_choice": "required",
           "tools": [{"type": "function", "function": {"name": "f", "strict": true,
               "parameters": {"type": "object", "properties": {"s": {"not": {}}}}}}]})",
       "tools[0].function.parameters: #/properties/s/not"},
      {R"({"messages": [{"role": "user", "content": "x"}], "tool_choice": "required",
           "tools": [{"type": "function", "function": {"name": "f"}}],
           "response_format": {"type": "json_object"}})",
       "response_format\" cannot be combined with tools"},
      {R"({"messages": [{"role": "assistant", "tool_calls": [{"id": "c", "type": "function",
           "function": {"name": "f", "arguments": "not json"}}]}]})",
       "messages[0].tool_calls[0].function.arguments\" must be a string holding a JSON object"},
      {R"({"messages": [{"role": "assistant", "tool_calls": [{"id": ")" + std::string(300, 'i') +
           R"(", "function": {"name": "f", "arguments": "{}"}}]}]})",
       "messages[0].tool_calls[0].id must be at most 256 bytes"},
  };
  for (const auto& [body, message] : cases) {
    auto res = client_->Post("/v1/chat/completions", body, "application/json");
    ASSERT_TRUE(res) << body;
    EXPECT_EQ(res->status, 400) << body << " -> " << res->body;
    EXPECT_THAT(json::parse(res->body)["error"]["message"].get<std::string>(),
                ::testing::HasSubstr(message));
  }
}

// A full queue answers 429 with Retry-After (whole seconds) and OpenAI's rate-limit error body.
TEST(OpenAiShutdownE2eTest, FullQueueIsTooManyRequestsWithRetryAfter) {
  ServerProcess server;
  ASSERT_TRUE(server.Start(SlowModelDir(), {"--http-port", "0", "--max-model-len", "1024",
                                            "--max-num-seqs", "1", "--max-queued-requests", "1"}));
  const int port = PortFromLog(server.Log(), kHttpMarker);
  ASSERT_GT(port, 0);
  // One long stream holds the only sequence slot; a burst then finds room for one in the queue
  // (as LoadE2eTest's gRPC burst, released at once so that it beats the stream on a GPU too).
  auto stub = server.Stub();
  grpc::ClientContext long_context;
  auto long_reader = stub->GenerateStream(&long_context, GreedyRequest("hold the slot", 1000));
  v1::GenerateStreamResponse chunk;
  ASSERT_TRUE(long_reader->Read(&chunk));
  constexpr int kBurst = 6;
  const std::vector<Reply> replies = PostTogether(
      port, std::vector<std::string>(kBurst, R"({"prompt": "one too many", "max_tokens": 2})"));
  long_context.TryCancel();
  while (long_reader->Read(&chunk)) {
  }
  long_reader->Finish();
  int refused = 0;
  for (const Reply& reply : replies) {
    ASSERT_TRUE(reply.ok) << reply.error;
    if (reply.status == 200) continue;
    ++refused;
    EXPECT_EQ(reply.status, 429) << reply.body;
    ASSERT_FALSE(reply.retry_after.empty());
    EXPECT_GE(std::stoi(reply.retry_after), 1);
    const json error = json::parse(reply.body)["error"];
    EXPECT_EQ(error["type"], "rate_limit_error");
    EXPECT_THAT(error["message"].get<std::string>(), ::testing::HasSubstr("queue is full"));
  }
  EXPECT_GE(refused, 1) << "the burst never found the queue full";
}

TEST(OpenAiShutdownE2eTest, SigtermLetsAnHttpStreamFinish) {
  ServerProcess server;
  ASSERT_TRUE(server.Start(TestModelDir(), {"--http-port", "0"}));
  const int port = PortFromLog(server.Log(), kHttpMarker);
  ASSERT_GT(port, 0);
  httplib::Client client("127.0.0.1", port);
  client.set_read_timeout(120, 0);
  std::mutex mu;
  std::string body;
  std::atomic<bool> first_chunk{false};
  httplib::Request req;
  req.method = "POST";
  req.path = "/v1/completions";
  req.body =
      json({{"prompt", "drain"}, {"max_tokens", 480}, {"ignore_eos", true}, {"stream", true}})
          .dump();
  req.set_header("Content-Type", "application/json");
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    std::lock_guard<std::mutex> lock(mu);
    body.append(data, n);
    first_chunk.store(true);
    return true;
  };
  int status = 0;
  std::thread reader([&] {
    if (auto res = client.send(req)) status = res->status;
  });
  const auto end = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (!first_chunk.load() && std::chrono::steady_clock::now() < end) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  server.Signal(SIGTERM);
  reader.join();
  EXPECT_EQ(server.WaitForExit(60), 0) << server.Log();
  EXPECT_EQ(status, 200);
  const std::string log = server.Log();
  EXPECT_LT(log.find("draining"), log.find("finish=length")) << "the stream ended before SIGTERM";
  const std::vector<std::string> events = Events(body);
  ASSERT_FALSE(events.empty()) << server.Log();
  EXPECT_EQ(events.back(), "[DONE]");
  EXPECT_EQ(json::parse(events[events.size() - 2])["choices"][0]["finish_reason"], "length");
}

}  // namespace
}  // namespace attnres::e2e
