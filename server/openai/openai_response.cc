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
json Choice(const Message& m, const CompletionMeta& meta, TextOffset* offset,
            const EchoedPrompt* echo) {
  json logprobs = nullptr;
  if (meta.logprobs) {
    LogprobLists lists(offset);
    if (echo != nullptr) lists.AddUnscored(echo->first_token);
    if (meta.echo) lists.Add(m.prompt_logprobs());
    lists.Add(m.logprobs());
    logprobs = std::move(lists).ToJson();
  }
  json choice = {{"index", 0},
                 {"text", echo != nullptr ? echo->text + m.text() : m.text()},
                 {"logprobs", std::move(logprobs)},
                 {"finish_reason", FinishReasonJson(m.finish_reason())}};
  if (!m.stop_reason().empty()) choice["stop_reason"] = m.stop_reason();
  return choice;
}

json Envelope(const CompletionMeta& meta) {
  return {{"id", meta.id},
          {"object", "text_completion"},
          {"created", meta.created},
          {"model", meta.model}};
}

}  // namespace

json CompletionJson(const v1::GenerateResponse& response, const CompletionMeta& meta,
                    const EchoedPrompt* echo) {
  TextOffset offset;
  json j = Envelope(meta);
  j["choices"] = json::array({Choice(response, meta, &offset, echo)});
  j["usage"] = UsageJson(response.usage());
  return j;
}

json CompletionChunkJson(const v1::GenerateStreamResponse& chunk, const CompletionMeta& meta,
                         TextOffset* offset, const EchoedPrompt* echo) {
  json j = Envelope(meta);
  j["choices"] = json::array({Choice(chunk, meta, offset, echo)});
  return j;
}

json UsageChunkJson(const v1::Usage& usage, const CompletionMeta& meta) {
  json j = Envelope(meta);
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
  return absl::Status(status.code(),
                      absl::StrReplaceAll(status.message(), {{"sampling.", ""},
                                                             {"prompt.token_ids.ids", "prompt"},
                                                             {"prompt.token_ids", "prompt"},
                                                             {"prompt.text", "prompt"}}));
}

int HttpStatusCode(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk:
      return 200;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kOutOfRange:
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
