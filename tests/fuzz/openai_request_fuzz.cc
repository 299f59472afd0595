// Fuzz target: the same bytes as /tokenize and /detokenize bodies (answered or refused with a
// reason), then as a /v1/completions body (else a /v1/chat/completions one, its messages
// written out by a ChatML template) through what the OpenAI-compatible API does with it:
// ParseCompletionRequest, then (as a serialized GenerateRequest) the gRPC API's validation and
// conversion, the real CPU engine, and the completion's JSON. Checks: a refusal is
// INVALID_ARGUMENT or NOT_FOUND with a message, and its error body is JSON; an accepted body's
// response checks out (CheckOutcome: or a structured output's failure, whose error body is JSON)
// and renders as JSON whose text is the response's.
#include <cstdint>
#include <string>

#include "nlohmann/json.hpp"
#include "server/grpc/tokenization.h"
#include "server/openai/openai_request.h"
#include "server/openai/openai_response.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/fuzz/fuzz_server.h"

namespace {

std::string Dump(const nlohmann::ordered_json& j) {
  return j.dump(-1, ' ', false, nlohmann::ordered_json::error_handler_t::replace);
}

bool IsJson(const std::string& text) {
  return !nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false).is_discarded();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace attnres;
  // Never destroyed: the engine thread lives for the whole fuzzing process.
  static const fuzz::FuzzServer* server = fuzz::StartFuzzServer(int64_t{8} << 20).release();
  const ServingContext& ctx = server->ctx();
  const std::string body(reinterpret_cast<const char*>(data), size);
  // The same bytes as /tokenize and /detokenize bodies: refused with a reason, or answered.
  if (auto t = ParseTokenizeRequest(body, ctx.model_name); t.ok()) {
    auto tokens = TokenizeText(*t, ctx);
    FUZZ_CHECK(tokens.ok(), "any tokenize body that parses is answered");
    FUZZ_CHECK(IsJson(Dump(TokenizeJson(*tokens, 512))), "the tokens render as JSON");
  } else {
    FUZZ_CHECK(!t.status().message().empty(), "a refusal says why");
  }
  if (auto d = ParseDetokenizeRequest(body, ctx.model_name); d.ok()) {
    auto text = DetokenizeIds(*d, ctx);
    FUZZ_CHECK(text.ok() || text.status().code() == absl::StatusCode::kInvalidArgument,
               "detokenize refuses only ids outside the vocabulary");
    if (text.ok()) FUZZ_CHECK(IsJson(Dump(DetokenizeJson(*text))), "the text renders as JSON");
  }
  auto check_refusal = [](const absl::Status& status) {
    FUZZ_CHECK(status.code() == absl::StatusCode::kInvalidArgument ||
                   status.code() == absl::StatusCode::kNotFound,
               "a body is refused as INVALID_ARGUMENT or NOT_FOUND");
    FUZZ_CHECK(!status.message().empty(), "a refusal says why");
    FUZZ_CHECK(IsJson(Dump(ErrorJson(status))), "the error body is JSON");
  };
  // A completions body, else a chat completions one (no body is both: prompt vs messages).
  bool chat = false;
  absl::StatusOr<CompletionCall> call = ParseCompletionRequest(body, ctx.model_name);
  if (!call.ok()) {
    check_refusal(call.status());
    call = ParseChatRequest(body, ctx.model_name, ToolCallParser::kHermes);
    if (!call.ok()) {
      check_refusal(call.status());
      return 0;
    }
    chat = true;
  }
  const std::string wire = call->request.SerializeAsString();
  auto request =
      fuzz::PrepareRequest(reinterpret_cast<const uint8_t*>(wire.data()), wire.size(), ctx);
  if (!request.ok()) {
    FUZZ_CHECK(IsJson(Dump(ErrorJson(WithHttpFieldNames(request.status())))),
               "the error body is JSON");
    return 0;
  }
  const GenerationRequest expected = *request;
  auto sink = std::make_shared<fuzz::ResponseSink>(ctx);
  auto handle = server->engine->Submit(*std::move(request), sink);
  if (!handle.ok()) {
    FUZZ_CHECK(handle.status().code() == absl::StatusCode::kInvalidArgument,
               "the engine refuses a lone request only as INVALID_ARGUMENT");
    return 0;
  }
  const absl::StatusOr<v1::GenerateResponse> outcome = sink->Wait();
  fuzz::CheckOutcome(outcome, expected);
  if (!outcome.ok()) {
    FUZZ_CHECK(IsJson(Dump(ErrorJson(outcome.status()))), "the error body is JSON");
    return 0;
  }
  const v1::GenerateResponse& response = *outcome;
  if (chat) {
    const CompletionMeta meta{.chat = true,
                              .id = "chatcmpl-fuzz",
                              .model = ctx.model_name,
                              .created = 0,
                              .logprobs = call->request.has_logprobs()};
    std::optional<ParsedToolCalls> calls;
    if (call->tool_calls.has_value()) {
      calls = ChoiceToolCalls(response, *call->tool_calls);
      // Streamed in pieces of 3 bytes: the content released plus the end is the text, or the
      // same calls.
      ToolCallStream stream(*call->tool_calls);
      std::string released;
      for (size_t at = 0; at < response.text().size(); at += 3) {
        released += stream.Push(std::string_view(response.text()).substr(at, 3));
      }
      const ToolCallStream::End end =
          stream.Finish(response.finish_reason() == v1::FINISH_REASON_STOP);
      FUZZ_CHECK(end.calls.size() == (calls.has_value() ? calls->calls.size() : 0),
                 "a stream reads the calls the whole text has");
      if (end.calls.empty()) {
        FUZZ_CHECK(released + end.content == response.text(), "a stream without calls is its text");
      }
    }
    const nlohmann::json rendered = nlohmann::json::parse(
        Dump(ChatCompletionJson({response}, meta, *ctx.tokenizer, {calls})), nullptr, false);
    FUZZ_CHECK(!rendered.is_discarded(), "the chat completion renders as JSON");
    FUZZ_CHECK(calls.has_value() || rendered["choices"][0]["message"]["content"] == response.text(),
               "the rendered message is the response's text");
    FUZZ_CHECK(!meta.logprobs || rendered["choices"][0]["logprobs"]["content"].size() ==
                                     static_cast<size_t>(response.token_ids_size()),
               "one logprob entry per token");
    return 0;
  }
  const CompletionMeta meta{.id = "cmpl-fuzz",
                            .model = ctx.model_name,
                            .created = 0,
                            .logprobs = call->request.has_logprobs(),
                            .echo = call->echo && call->request.has_logprobs()};
  const EchoedPrompt echo{.text = "<prompt>", .first_token = "<first>"};
  const nlohmann::json rendered = nlohmann::json::parse(
      Dump(CompletionJson({response}, meta, 1, {call->echo ? &echo : nullptr})), nullptr, false);
  FUZZ_CHECK(!rendered.is_discarded(), "the completion renders as JSON");
  FUZZ_CHECK(rendered["choices"][0]["text"] == (call->echo ? echo.text : "") + response.text(),
             "the rendered text is the (echoed prompt and the) response's");
  // With echo: the first prompt token, then one per later prompt token, then the completion's.
  const size_t expected_entries =
      response.token_ids_size() +
      (meta.echo ? 1 + static_cast<size_t>(response.prompt_logprobs_size()) : 0);
  FUZZ_CHECK(
      !meta.logprobs || rendered["choices"][0]["logprobs"]["tokens"].size() == expected_entries,
      "one logprob entry per token");
  FUZZ_CHECK(!meta.echo || response.prompt_logprobs_size() == response.usage().prompt_tokens() - 1,
             "every prompt token after the first is scored");
  return 0;
}
