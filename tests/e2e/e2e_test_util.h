// Request builders and RPC helpers shared by the end-to-end test files.
#pragma once

#include <chrono>
#include <cmath>
#include <cstdio>
#include <regex>
#include <string>
#include <vector>

#include "attnres/v1/attnres.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"

namespace attnres::e2e {

// Greedy, EOS ignored: deterministic and exactly max_tokens long.
inline v1::GenerateRequest GreedyRequest(const std::string& text, int max_tokens) {
  v1::GenerateRequest r;
  r.mutable_prompt()->set_text(text);
  r.set_max_tokens(max_tokens);
  r.mutable_sampling()->set_temperature(0.0f);
  r.set_ignore_eos(true);
  return r;
}

inline v1::GenerateRequest SeededRequest(const std::string& text, int max_tokens, uint64_t seed) {
  v1::GenerateRequest r;
  r.mutable_prompt()->set_text(text);
  r.set_max_tokens(max_tokens);
  r.mutable_sampling()->set_temperature(1.0f);
  r.mutable_sampling()->set_seed(seed);
  r.set_ignore_eos(true);
  return r;
}

inline void SetTimeout(grpc::ClientContext* context, std::chrono::milliseconds timeout) {
  context->set_deadline(std::chrono::system_clock::now() + timeout);
}

inline grpc::Status Generate(v1::AttnRes::Stub* stub, const v1::GenerateRequest& request,
                             v1::GenerateResponse* response) {
  grpc::ClientContext context;
  SetTimeout(&context, std::chrono::seconds(60));
  return stub->Generate(&context, request, response);
}

struct StreamResult {
  grpc::Status status;
  std::vector<v1::GenerateStreamResponse> chunks;
  std::string text;                // deltas concatenated
  std::vector<int32_t> token_ids;  // idem
};

inline StreamResult GenerateStream(v1::AttnRes::Stub* stub, const v1::GenerateRequest& request) {
  grpc::ClientContext context;
  SetTimeout(&context, std::chrono::seconds(60));
  StreamResult result;
  auto reader = stub->GenerateStream(&context, request);
  v1::GenerateStreamResponse chunk;
  while (reader->Read(&chunk)) {
    result.text += chunk.text();
    result.token_ids.insert(result.token_ids.end(), chunk.token_ids().begin(),
                            chunk.token_ids().end());
    result.chunks.push_back(chunk);
  }
  result.status = reader->Finish();
  return result;
}

inline std::vector<int32_t> Ids(const google::protobuf::RepeatedField<int32_t>& ids) {
  return std::vector<int32_t>(ids.begin(), ids.end());
}

// Structured outputs: a small schema (a boolean, a bounded integer, an enum, a string held to a
// pattern and a date, all required), the response_format that asks for it, and the checks that
// a text is JSON it accepts / any object. Room for the whitespace a model may write between JSON
// tokens (the test model writes plenty); within the test model's 512-token context with a short
// prompt.
inline constexpr int kJsonMaxTokens = 400;
inline constexpr char kSmallSchema[] =
    R"({"type":"object","properties":{"ok":{"type":"boolean"},)"
    R"("n":{"type":"integer","minimum":-5,"maximum":99},"tag":{"enum":["a","b"]},)"
    R"("code":{"type":"string","pattern":"^[a-z]{1,4}[0-9]$"},)"
    R"("day":{"type":"string","format":"date"}},"required":["ok","n","tag","code","day"]})";

inline v1::ResponseFormat SmallSchemaFormat() {
  v1::ResponseFormat format;
  format.mutable_json_schema()->set_schema_json(kSmallSchema);
  format.mutable_json_schema()->set_name("small");
  return format;
}

inline ::testing::AssertionResult IsSmallSchemaJson(const std::string& text) {
  const nlohmann::json j = nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return ::testing::AssertionFailure() << "not a JSON object: " << text;
  const auto n = j.find("n");
  // An integer of any size (one past 64 bits reads as an integral float).
  const bool integer =
      n != j.end() && (n->is_number_integer() ||
                       (n->is_number_float() && std::floor(n->get<double>()) == n->get<double>()));
  int year = 0;
  unsigned month = 0, day = 0;
  const bool date =
      j.contains("day") && j["day"].is_string() &&
      std::sscanf(j["day"].get<std::string>().c_str(), "%4d-%2u-%2u", &year, &month, &day) == 3 &&
      (std::chrono::year(year) / std::chrono::month(month) / std::chrono::day(day)).ok();
  if (!j.contains("ok") || !j["ok"].is_boolean() || !integer || *n < -5 || *n > 99 ||
      !j.contains("tag") || (j["tag"] != "a" && j["tag"] != "b") || !j.contains("code") ||
      !j["code"].is_string() ||
      !std::regex_match(j["code"].get<std::string>(), std::regex("[a-z]{1,4}[0-9]")) || !date) {
    return ::testing::AssertionFailure() << "not what the schema accepts: " << text;
  }
  return ::testing::AssertionSuccess();
}

// A random model never ends a free JSON string by itself (it repeats a character), so the
// json_object tests steer it among the tokens the grammar allows: '"' above all (empty keys and
// strings), then '}' (closing) above ',' and whitespace: {"":""} in some spacing. The test model's
// vocabulary is byte-level: a byte's token id is the byte.
inline constexpr int32_t kQuoteToken = '"';
inline constexpr int32_t kCloseBraceToken = '}';

inline void SteerToCloseJson(v1::SamplingParams* sampling) {
  (*sampling->mutable_logit_bias())[kQuoteToken] = 100.0f;
  (*sampling->mutable_logit_bias())[kCloseBraceToken] = 50.0f;
}

inline ::testing::AssertionResult IsJsonObject(const std::string& text) {
  if (nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false).is_object()) {
    return ::testing::AssertionSuccess();
  }
  return ::testing::AssertionFailure() << "not a JSON object: " << text;
}

}  // namespace attnres::e2e
