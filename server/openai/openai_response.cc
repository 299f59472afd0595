// OpenAI-style JSON rendering (see openai_response.h).
#include "server/openai/openai_response.h"

#include <utility>

#include "absl/strings/str_replace.h"

namespace attnres {
namespace {

using json = nlohmann::ordered_json;

// Token texts may hold U+FFFD for a partial character; they are valid UTF-8 either way.
int64_t CodePoints(const std::string& s) {
  int64_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

json FinishReasonJson(v1::FinishReason reason) {
  switch (reason) {
    case v1::FINISH_REASON_LENGTH:
      return "length";
    case v1::FINISH_REASON_STOP:
      return "stop";
    case v1::FINISH_REASON_CANCELLED:
      return "cancelled";
    default:
      return nullptr;
  }
}

json UsageJson(const v1::Usage& u) {
  return {{"prompt_tokens", u.prompt_tokens()},
          {"completion_tokens", u.completion_tokens()},
          {"total_tokens", u.prompt_tokens() + u.completion_tokens()},
          {"prompt_tokens_details", {{"cached_tokens", u.cached_prompt_tokens()}}}};
}

using Logprobs = google::protobuf::RepeatedPtrField<v1::TokenLogprob>;

// OpenAI's legacy completions logprobs: parallel lists per token.
class LogprobLists {
 public:
  explicit LogprobLists(TextOffset* offset) : offset_(offset) {}

  // A token no logprob is known for (an echoed prompt's first).
  void AddUnscored(const std::string& token) {
    AddToken(token);
    token_logprobs_.push_back(nullptr);
    top_.push_back(nullptr);
  }
  void Add(const Logprobs& logprobs) {
    for (const v1::TokenLogprob& lp : logprobs) {
      AddToken(lp.token());
      token_logprobs_.push_back(lp.logprob());
      json alternatives = json::object();
      for (const v1::TopLogprob& t : lp.top()) alternatives[t.token()] = t.logprob();
      top_.push_back(std::move(alternatives));
    }
  }
  json ToJson() && {
    return {{"tokens", std::move(tokens_)},
            {"token_logprobs", std::move(token_logprobs_)},
            {"top_logprobs", std::move(top_)},
            {"text_offset", std::move(text_offset_)}};
  }

 private:
  void AddToken(const std::string& token) {
    tokens_.push_back(token);
    text_offset_.push_back(offset_->chars);
    offset_->chars += CodePoints(token);
  }

  TextOffset* offset_;
  json tokens_ = json::array(), token_logprobs_ = json::array(), top_ = json::array(),
       text_offset_ = json::array();
};

template <typename Message>
json Choice(const Message& m, int index, const CompletionMeta& meta, TextOffset* offset,
            const EchoedPrompt* echo) {
  json logprobs = nullptr;
  if (meta.logprobs) {
    LogprobLists lists(offset);
    if (echo != nullptr) lists.AddUnscored(echo->first_token);
    if (meta.echo) lists.Add(m.prompt_logprobs());
    lists.Add(m.logprobs());
    logprobs = std::move(lists).ToJson();
  }
  json choice = {{"index", index},
                 {"text", echo != nullptr ? echo->text + m.text() : m.text()},
                 {"logprobs", std::move(logprobs)},
                 {"finish_reason", FinishReasonJson(m.finish_reason())}};
  if (!m.stop_reason().empty()) choice["stop_reason"] = m.stop_reason();
  return choice;
}

json Envelope(const CompletionMeta& meta, bool chunk) {
  return {{"id", meta.id},
          {"object", !meta.chat ? "text_completion"
                     : chunk    ? "chat.completion.chunk"
                                : "chat.completion"},
          {"created", meta.created},
          {"model", meta.model}};
}

json ByteList(const std::string& bytes) {
  json out = json::array();
  for (unsigned char c : bytes) out.push_back(static_cast<int>(c));
  return out;
}

// The chat form of logprobs: one entry per token, with its alternatives.
json ChatLogprobs(const Logprobs& logprobs, const Tokenizer& tokenizer) {
  json content = json::array();
  for (const v1::TokenLogprob& lp : logprobs) {
    json top = json::array();
    for (const v1::TopLogprob& t : lp.top()) {
      top.push_back({{"token", t.token()},
                     {"logprob", t.logprob()},
                     {"bytes", ByteList(tokenizer.TokenBytes(t.token_id()))}});
    }
    content.push_back({{"token", lp.token()},
                       {"logprob", lp.logprob()},
                       {"bytes", ByteList(tokenizer.TokenBytes(lp.token_id()))},
                       {"top_logprobs", std::move(top)}});
  }
  return {{"content", std::move(content)}};
}

// `finish_reason` overrides the message's ("tool_calls").
template <typename Message>
json ChatChoice(const Message& m, int index, const CompletionMeta& meta, const char* message_key,
                json message, const Tokenizer& tokenizer, const char* finish_reason = nullptr) {
  json choice = {{"index", index},
                 {message_key, std::move(message)},
                 {"logprobs", meta.logprobs ? ChatLogprobs(m.logprobs(), tokenizer) : json()},
                 {"finish_reason", finish_reason != nullptr ? json(finish_reason)
                                                            : FinishReasonJson(m.finish_reason())}};
  if (!m.stop_reason().empty()) choice["stop_reason"] = m.stop_reason();
  return choice;
}

}  // namespace

v1::Usage TotalUsage(const std::vector<v1::Usage>& choices, int n) {
  v1::Usage total;
  for (size_t c = 0; c < choices.size(); ++c) {
    if (c % static_cast<size_t>(n) == 0) {  // a prompt's first choice: its prompt, once
      total.set_prompt_tokens(total.prompt_tokens() + choices[c].prompt_tokens());
      total.set_cached_prompt_tokens(total.cached_prompt_tokens() +
                                     choices[c].cached_prompt_tokens());
    }
    total.set_completion_tokens(total.completion_tokens() + choices[c].completion_tokens());
  }
  return total;
}

namespace {

v1::Usage ChoicesUsage(const std::vector<v1::GenerateResponse>& choices, int n) {
  std::vector<v1::Usage> usages;
  for (const v1::GenerateResponse& c : choices) usages.push_back(c.usage());
  return TotalUsage(usages, n);
}

}  // namespace

json CompletionJson(const std::vector<v1::GenerateResponse>& choices, const CompletionMeta& meta,
                    int n, const std::vector<const EchoedPrompt*>& echoes) {
  json j = Envelope(meta, /*chunk=*/false);
  j["choices"] = json::array();
  for (size_t i = 0; i < choices.size(); ++i) {
    TextOffset offset;
    const EchoedPrompt* echo = i < echoes.size() ? echoes[i] : nullptr;
    j["choices"].push_back(Choice(choices[i], static_cast<int>(i), meta, &offset, echo));
  }
  j["usage"] = UsageJson(ChoicesUsage(choices, n));
  return j;
}

json CompletionChunkJson(const v1::GenerateStreamResponse& chunk, int index,
                         const CompletionMeta& meta, TextOffset* offset, const EchoedPrompt* echo) {
  json j = Envelope(meta, /*chunk=*/true);
  j["choices"] = json::array({Choice(chunk, index, meta, offset, echo)});
  return j;
}

namespace {

// {"id", "type": "function", "function": {"name", "arguments"}}, with "index" first in a chunk.
json ToolCallJson(const ParsedToolCall& call, std::optional<int> index) {
  json j = json::object();
  if (index.has_value()) j["index"] = *index;
  j["id"] = NewToolCallId();
  j["type"] = "function";
  j["function"] = {{"name", call.name}, {"arguments", call.arguments_json}};
  return j;
}

}  // namespace

std::optional<ParsedToolCalls> ChoiceToolCalls(const v1::GenerateResponse& choice,
                                               const ToolCallMode& mode) {
  return FinishedToolCalls(choice.finish_reason(), choice.text(), mode);
}

json ChatCompletionJson(const std::vector<v1::GenerateResponse>& choices,
                        const CompletionMeta& meta, const Tokenizer& tokenizer,
                        const std::vector<std::optional<ParsedToolCalls>>& tool_calls) {
  json j = Envelope(meta, /*chunk=*/false);
  j["choices"] = json::array();
  for (size_t i = 0; i < choices.size(); ++i) {
    const ParsedToolCalls* calls =
        i < tool_calls.size() && tool_calls[i].has_value() ? &*tool_calls[i] : nullptr;
    if (calls == nullptr) {
      j["choices"].push_back(ChatChoice(choices[i], static_cast<int>(i), meta, "message",
                                        {{"role", "assistant"}, {"content", choices[i].text()}},
                                        tokenizer));
      continue;
    }
    json list = json::array();
    for (const ParsedToolCall& call : calls->calls) list.push_back(ToolCallJson(call, {}));
    json message = {{"role", "assistant"},
                    {"content", calls->content.has_value() ? json(*calls->content) : json()},
                    {"tool_calls", std::move(list)}};
    j["choices"].push_back(ChatChoice(choices[i], static_cast<int>(i), meta, "message",
                                      std::move(message), tokenizer, "tool_calls"));
  }
  j["usage"] = UsageJson(ChoicesUsage(choices, static_cast<int>(choices.size())));
  return j;
}

json ChatChunkJson(const v1::GenerateStreamResponse& chunk, int index, const CompletionMeta& meta,
                   bool first, const Tokenizer& tokenizer) {
  json delta = json::object();
  if (first) delta["role"] = "assistant";
  if (!chunk.text().empty() || first) delta["content"] = chunk.text();
  json j = Envelope(meta, /*chunk=*/true);
  j["choices"] =
      json::array({ChatChoice(chunk, index, meta, "delta", std::move(delta), tokenizer)});
  return j;
}

std::vector<json> ToolCallChunksJson(const std::vector<ParsedToolCall>& calls, int index,
                                     const CompletionMeta& meta, bool first,
                                     const std::string& stop_reason) {
  json delta = json::object();
  if (first) delta["role"] = "assistant";
  delta["tool_calls"] = json::array();
  for (size_t k = 0; k < calls.size(); ++k) {
    delta["tool_calls"].push_back(ToolCallJson(calls[k], static_cast<int>(k)));
  }
  std::vector<json> out(2, Envelope(meta, /*chunk=*/true));
  out[0]["choices"] = json::array({{{"index", index},
                                    {"delta", std::move(delta)},
                                    {"logprobs", nullptr},
                                    {"finish_reason", nullptr}}});
  json end = {{"index", index},
              {"delta", json::object()},
              {"logprobs", nullptr},
              {"finish_reason", "tool_calls"}};
  if (!stop_reason.empty()) end["stop_reason"] = stop_reason;
  out[1]["choices"] = json::array({std::move(end)});
  return out;
}

std::vector<json> ChatChunksReadingToolCalls(const v1::GenerateStreamResponse& chunk, int index,
                                             const CompletionMeta& meta, bool* first,
                                             ToolCallStream* stream, const Tokenizer& tokenizer) {
  auto next = [&](const v1::GenerateStreamResponse& c) {
    json j = ChatChunkJson(c, index, meta, *first, tokenizer);
    *first = false;
    return j;
  };
  v1::GenerateStreamResponse out = chunk;
  out.set_text(stream->Push(chunk.text()));
  const bool empty = out.text().empty() && out.logprobs_size() == 0 && !*first;
  if (chunk.finish_reason() == v1::FINISH_REASON_UNSPECIFIED) {
    if (empty) return {};  // held text only
    return {next(out)};
  }
  ToolCallStream::End end = stream->Finish(chunk.finish_reason() == v1::FINISH_REASON_STOP);
  if (end.calls.empty()) {
    out.mutable_text()->append(end.content);
    return {next(out)};
  }
  std::vector<json> events;
  out.clear_finish_reason();
  out.clear_stop_reason();
  if (!empty) events.push_back(next(out));
  for (json& j : ToolCallChunksJson(end.calls, index, meta, *first, chunk.stop_reason())) {
    events.push_back(std::move(j));
  }
  *first = false;
  return events;
}

json UsageChunkJson(const v1::Usage& usage, const CompletionMeta& meta) {
  json j = Envelope(meta, /*chunk=*/true);
  j["choices"] = json::array();
  j["usage"] = UsageJson(usage);
  return j;
}

json ModelListJson(std::string_view model, int64_t created, int max_model_len) {
  return {{"object", "list"},
          {"data", json::array({{{"id", model},
                                 {"object", "model"},
                                 {"created", created},
                                 {"owned_by", "attnres"},
                                 {"max_model_len", max_model_len}}})}};
}

json TokenizeJson(const v1::TokenizeResponse& response, int max_model_len) {
  return {{"count", response.token_ids_size()},
          {"max_model_len", max_model_len},
          {"tokens", response.token_ids()}};
}

json DetokenizeJson(const v1::DetokenizeResponse& response) {
  return {{"prompt", response.text()}};
}

absl::Status WithHttpFieldNames(const absl::Status& status) {
  if (status.ok()) return status;
  return absl::Status(
      status.code(),
      absl::StrReplaceAll(
          status.message(),
          {{"sampling.", ""},
           {"prompt.token_ids.ids", "prompt"},
           {"prompt.token_ids", "prompt"},
           {"prompt.text", "prompt"},
           {"prompt.chat.messages", "messages"},
           {"prompt.chat.add_generation_prompt", "add_generation_prompt"},
           {"prompt.chat.continue_final_message", "continue_final_message"},
           {"prompt.chat.tools", "tools"},
           {".parameters_json", ".function.parameters"},
           {"prompt.chat.tool_choice_function", "tool_choice.function.name"},
           {"prompt.chat.tool_choice", "tool_choice"},
           {"prompt.chat.parallel_tool_calls", "parallel_tool_calls"},
           {"prompt.chat", "messages"},
           {"response_format.json_schema.schema_json", "response_format.json_schema.schema"},
           {"response_format.regex.pattern", "guided_regex"},
           {"response_format.choice.choices", "guided_choice"}}));
}

int HttpStatusCode(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk:
      return 200;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
    case absl::StatusCode::kFailedPrecondition:  // e.g. a chat request without a chat template
      return 400;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kResourceExhausted:
      return 429;
    case absl::StatusCode::kUnavailable:
      return 503;
    case absl::StatusCode::kDeadlineExceeded:
      return 504;
    default:
      return 500;
  }
}

json ErrorJson(const absl::Status& status) {
  const int http = HttpStatusCode(status.code());
  const char* type = http == 429  ? "rate_limit_error"
                     : http < 500 ? "invalid_request_error"
                                  : "server_error";
  return {{"error",
           {{"message", std::string(status.message())},
            {"type", type},
            {"param", nullptr},
            {"code", absl::StatusCodeToString(status.code())}}}};
}

}  // namespace attnres
