// End-to-end generation semantics through the C++ stub against the real attnres-server:
// determinism, stream == unary, seeds, stop strings and ids, max_tokens, min_tokens, logit bias,
// logprobs, mix weights, structured outputs (response_format).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <regex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "e2e_test_util.h"
#include "gmock/gmock.h"
#include "server_fixture.h"

namespace attnres::e2e {
namespace {

class GenerateE2eTest : public SharedServerTest {
 protected:
  v1::GenerateResponse MustGenerate(const v1::GenerateRequest& request) {
    v1::GenerateResponse response;
    grpc::Status status = Generate(stub_.get(), request, &response);
    EXPECT_TRUE(status.ok()) << status.error_code() << ": " << status.error_message();
    return response;
  }

  // A seeded sample whose text's first char is followed by a different ASCII char at `*at`.
  v1::GenerateResponse SampleWithTwoChars(uint64_t* seed_out, size_t* at) {
    for (uint64_t seed = 1; seed <= 40; ++seed) {
      *seed_out = seed;
      v1::GenerateResponse r = MustGenerate(SeededRequest("Hello", 40, seed));
      const std::string& t = r.text();
      for (size_t i = 1; i < t.size(); ++i) {
        if (static_cast<unsigned char>(t[i]) >= 0x80 || static_cast<unsigned char>(t[0]) >= 0x80)
          break;
        if (t[i] != t[0]) {
          *at = i;
          return r;
        }
      }
    }
    ADD_FAILURE() << "no seed gave a text with two distinct leading ASCII chars";
    return {};
  }
};

TEST_F(GenerateE2eTest, GreedyIsDeterministicAndHonorsMaxTokens) {
  const v1::GenerateRequest request = GreedyRequest("The quick brown fox", 24);
  const v1::GenerateResponse a = MustGenerate(request);
  const v1::GenerateResponse b = MustGenerate(request);
  EXPECT_EQ(a.token_ids_size(), 24);
  EXPECT_EQ(a.finish_reason(), v1::FINISH_REASON_LENGTH);
  EXPECT_EQ(a.usage().completion_tokens(), 24);
  EXPECT_GT(a.usage().prompt_tokens(), 0);
  EXPECT_EQ(Ids(a.token_ids()), Ids(b.token_ids()));
  EXPECT_EQ(a.text(), b.text());
  EXPECT_FALSE(a.request_id().empty());
}

TEST_F(GenerateE2eTest, UsageCountsPromptTokensAndEchoesRequestId) {
  v1::GenerateRequest request = GreedyRequest("abc", 5);
  request.set_request_id("my-request-1");
  const v1::GenerateResponse r = MustGenerate(request);
  EXPECT_EQ(r.request_id(), "my-request-1");
  grpc::ClientContext context;
  v1::TokenizeRequest tok;
  tok.set_text("abc");
  v1::TokenizeResponse ids;
  ASSERT_TRUE(stub_->Tokenize(&context, tok, &ids).ok());
  EXPECT_EQ(r.usage().prompt_tokens(), ids.token_ids_size());
  EXPECT_EQ(r.usage().completion_tokens(), 5);
}

TEST_F(GenerateE2eTest, TokenIdPromptMatchesTextPrompt) {
  grpc::ClientContext context;
  v1::TokenizeRequest tok;
  tok.set_text("Once upon a time");
  v1::TokenizeResponse ids;
  ASSERT_TRUE(stub_->Tokenize(&context, tok, &ids).ok());
  v1::GenerateRequest by_ids = GreedyRequest("", 12);
  by_ids.mutable_prompt()->mutable_token_ids()->mutable_ids()->CopyFrom(ids.token_ids());
  const v1::GenerateResponse a = MustGenerate(by_ids);
  const v1::GenerateResponse b = MustGenerate(GreedyRequest("Once upon a time", 12));
  EXPECT_EQ(Ids(a.token_ids()), Ids(b.token_ids()));
  EXPECT_EQ(a.usage().prompt_tokens(), ids.token_ids_size());
}

TEST_F(GenerateE2eTest, StreamDeltasConcatenateToUnaryResult) {
  for (const v1::GenerateRequest& request :
       {GreedyRequest("Streaming test", 40), SeededRequest("Streaming test", 40, 11)}) {
    const v1::GenerateResponse unary = MustGenerate(request);
    const StreamResult stream = GenerateStream(stub_.get(), request);
    ASSERT_TRUE(stream.status.ok()) << stream.status.error_message();
    ASSERT_FALSE(stream.chunks.empty());
    EXPECT_EQ(stream.text, unary.text());
    EXPECT_EQ(stream.token_ids, Ids(unary.token_ids()));
    // Only the last chunk carries finish_reason and usage.
    for (size_t i = 0; i + 1 < stream.chunks.size(); ++i) {
      EXPECT_EQ(stream.chunks[i].finish_reason(), v1::FINISH_REASON_UNSPECIFIED);
      EXPECT_FALSE(stream.chunks[i].has_usage());
    }
    const v1::GenerateStreamResponse& last = stream.chunks.back();
    EXPECT_EQ(last.finish_reason(), v1::FINISH_REASON_LENGTH);
    EXPECT_EQ(last.usage().completion_tokens(), 40);
    EXPECT_FALSE(last.request_id().empty());
  }
}

TEST_F(GenerateE2eTest, SlowReaderGetsEveryTokenExactlyOnce) {
  // The server coalesces deltas while a write is pending; nothing may be lost or duplicated.
  v1::GenerateRequest request = GreedyRequest("slow reader", 300);
  request.set_logprobs(1);
  const v1::GenerateResponse unary = MustGenerate(request);
  grpc::ClientContext context;
  SetTimeout(&context, std::chrono::seconds(60));
  auto reader = stub_->GenerateStream(&context, request);
  v1::GenerateStreamResponse chunk;
  std::string text;
  std::vector<int32_t> ids;
  int chunks = 0, logprobs = 0;
  while (reader->Read(&chunk)) {
    ++chunks;
    text += chunk.text();
    ids.insert(ids.end(), chunk.token_ids().begin(), chunk.token_ids().end());
    logprobs += chunk.logprobs_size();
    if (chunks < 10) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  ASSERT_TRUE(reader->Finish().ok());
  EXPECT_EQ(ids, Ids(unary.token_ids()));
  EXPECT_EQ(text, unary.text());
  EXPECT_EQ(logprobs, 300);
  EXPECT_LE(chunks, 300);
}

TEST_F(GenerateE2eTest, SameSeedSameTextDifferentSeedsDiffer) {
  const v1::GenerateResponse a = MustGenerate(SeededRequest("Random", 32, 1234));
  const v1::GenerateResponse b = MustGenerate(SeededRequest("Random", 32, 1234));
  EXPECT_EQ(Ids(a.token_ids()), Ids(b.token_ids()));
  EXPECT_EQ(a.text(), b.text());
  std::set<std::vector<int32_t>> distinct;
  for (uint64_t seed = 1; seed <= 8; ++seed) {
    distinct.insert(Ids(MustGenerate(SeededRequest("Random", 32, seed)).token_ids()));
  }
  EXPECT_GE(distinct.size(), 2u) << "8 seeds all sampled the same 32 tokens";
}

TEST_F(GenerateE2eTest, StopStringEndsTextBeforeTheStop) {
  size_t at = 0;
  uint64_t seed = 0;
  const v1::GenerateResponse full = SampleWithTwoChars(&seed, &at);
  ASSERT_GT(at, 0u);
  const std::string stop = full.text().substr(at, 1);
  // The same seeded request, now with the stop string.
  v1::GenerateRequest request = SeededRequest("Hello", 40, seed);
  request.add_stop("never-appears-zzz");
  request.add_stop(stop);
  const v1::GenerateResponse r = MustGenerate(request);
  EXPECT_EQ(r.text(), full.text().substr(0, at));
  EXPECT_EQ(r.finish_reason(), v1::FINISH_REASON_STOP);
  EXPECT_EQ(r.stop_reason(), stop);
  const StreamResult s = GenerateStream(stub_.get(), request);
  ASSERT_TRUE(s.status.ok());
  EXPECT_EQ(s.text, r.text());
  EXPECT_EQ(s.chunks.back().finish_reason(), v1::FINISH_REASON_STOP);
}

TEST_F(GenerateE2eTest, StopTokenIdIsKeptAndEndsGeneration) {
  const v1::GenerateResponse full = MustGenerate(SeededRequest("Stop ids", 40, 5));
  const std::vector<int32_t> ids = Ids(full.token_ids());
  ASSERT_EQ(ids.size(), 40u);
  size_t at = 1;
  while (at < ids.size() && ids[at] == ids[0]) ++at;
  if (at == ids.size()) at = 0;  // all equal: stop at the first token
  v1::GenerateRequest request = SeededRequest("Stop ids", 40, 5);
  request.add_stop_token_ids(ids[at]);
  const v1::GenerateResponse r = MustGenerate(request);
  EXPECT_EQ(Ids(r.token_ids()), std::vector<int32_t>(ids.begin(), ids.begin() + at + 1));
  EXPECT_EQ(r.finish_reason(), v1::FINISH_REASON_STOP);
  EXPECT_EQ(r.stop_reason(), "token:" + std::to_string(ids[at]));
}

TEST_F(GenerateE2eTest, LogitBiasForcesATokenAndLogprobsStayUnbiased) {
  const v1::GenerateResponse full = MustGenerate(GreedyRequest("Bias", 10));
  const int32_t forced = full.token_ids(0) == 11 ? 12 : 11;
  v1::GenerateRequest request = GreedyRequest("Bias", 10);
  (*request.mutable_sampling()->mutable_logit_bias())[forced] = 100.0f;
  request.set_logprobs(1);
  const v1::GenerateResponse r = MustGenerate(request);
  EXPECT_EQ(Ids(r.token_ids()), std::vector<int32_t>(10, forced));
  ASSERT_EQ(r.logprobs_size(), 10);
  EXPECT_NE(r.logprobs(0).top(0).token_id(), forced) << "the top alternative is the model's";
}

TEST_F(GenerateE2eTest, MinTokensHoldsOffAStopTokenId) {
  const v1::GenerateResponse full = MustGenerate(SeededRequest("Stop ids", 40, 5));
  const std::vector<int32_t> ids = Ids(full.token_ids());
  ASSERT_EQ(ids.size(), 40u);
  v1::GenerateRequest request = SeededRequest("Stop ids", 40, 5);
  request.add_stop_token_ids(ids[0]);
  request.set_min_tokens(8);
  const v1::GenerateResponse r = MustGenerate(request);
  const std::vector<int32_t> got = Ids(r.token_ids());
  ASSERT_GE(got.size(), 8u);
  EXPECT_EQ(std::count(got.begin(), got.begin() + 8, ids[0]), 0);
  if (r.finish_reason() == v1::FINISH_REASON_STOP) {
    EXPECT_EQ(got.back(), ids[0]);
  }
  EXPECT_EQ(r.usage().completion_tokens(), static_cast<int>(got.size()));
}

TEST_F(GenerateE2eTest, LogprobsArePresentAndNotPositive) {
  v1::GenerateRequest request = GreedyRequest("Logprobs", 8);
  request.set_logprobs(3);
  const v1::GenerateResponse r = MustGenerate(request);
  ASSERT_EQ(r.logprobs_size(), r.token_ids_size());
  for (int i = 0; i < r.logprobs_size(); ++i) {
    const v1::TokenLogprob& lp = r.logprobs(i);
    EXPECT_EQ(lp.token_id(), r.token_ids(i));
    EXPECT_LE(lp.logprob(), 0.0f);
    EXPECT_FALSE(std::isnan(lp.logprob()));
    ASSERT_EQ(lp.top_size(), 3);
    EXPECT_EQ(lp.top(0).token_id(), lp.token_id()) << "greedy picks the top token";
    for (int k = 0; k < lp.top_size(); ++k) {
      EXPECT_LE(lp.top(k).logprob(), 0.0f);
      if (k > 0) {
        EXPECT_LE(lp.top(k).logprob(), lp.top(k - 1).logprob());
      }
    }
  }
  // Streamed: one logprob per streamed token, equal to the unary ones.
  const StreamResult s = GenerateStream(stub_.get(), request);
  ASSERT_TRUE(s.status.ok());
  int n = 0;
  for (const auto& chunk : s.chunks) {
    EXPECT_EQ(chunk.logprobs_size(), chunk.token_ids_size());
    for (const auto& lp : chunk.logprobs()) {
      EXPECT_NEAR(lp.logprob(), r.logprobs(n).logprob(), 1e-4);
      ++n;
    }
  }
  EXPECT_EQ(n, r.logprobs_size());
}

TEST_F(GenerateE2eTest, MixWeightsHaveTheLayoutCountsAndSumToOne) {
  grpc::ClientContext context;
  v1::ModelInfo info;
  ASSERT_TRUE(stub_->GetModelInfo(&context, v1::GetModelInfoRequest(), &info).ok());
  ASSERT_TRUE(info.attn_res().enabled());
  v1::GenerateRequest request = GreedyRequest("Depth attention", 6);
  request.set_return_mix_weights(true);
  const v1::GenerateResponse r = MustGenerate(request);
  ASSERT_EQ(r.mix_weights_size(), r.token_ids_size());
  for (const v1::TokenMixWeights& token : r.mix_weights()) {
    ASSERT_EQ(token.mixes_size(), info.attn_res().num_mixes());
    for (int m = 0; m < token.mixes_size(); ++m) {
      const v1::MixWeights& mix = token.mixes(m);
      EXPECT_EQ(mix.weights_size(), info.attn_res().sources_per_mix(m)) << "mix " << m;
      double sum = 0;
      for (float w : mix.weights()) {
        EXPECT_GE(w, 0.0f);
        sum += w;
      }
      EXPECT_NEAR(sum, 1.0, 1e-4) << "mix " << m;
    }
    EXPECT_EQ(token.mixes(0).site(), "attn");
    EXPECT_EQ(token.mixes(0).layer(), 0);
    EXPECT_EQ(token.mixes(1).site(), "mlp");
    EXPECT_EQ(token.mixes(token.mixes_size() - 1).site(), "final");
    EXPECT_EQ(token.mixes(token.mixes_size() - 1).layer(), -1);
  }
  // Not asked: none.
  EXPECT_EQ(MustGenerate(GreedyRequest("Depth attention", 6)).mix_weights_size(), 0);
}

// response_format: greedy and sampled outputs are JSON the schema accepts (or an object, steered
// to close its strings), end with STOP once whole (EOS ignored: nothing can follow), and stream
// as they come unary.
TEST_F(GenerateE2eTest, ResponseFormatOutputsJsonThatEndsItself) {
  std::vector<v1::GenerateRequest> requests = {GreedyRequest("A record:", kJsonMaxTokens)};
  for (uint64_t seed : {1, 2, 3})
    requests.push_back(SeededRequest("A record:", kJsonMaxTokens, seed));
  for (v1::GenerateRequest& request : requests) {
    *request.mutable_response_format() = SmallSchemaFormat();
    const v1::GenerateResponse r = MustGenerate(request);
    EXPECT_TRUE(IsSmallSchemaJson(r.text())) << "seed " << request.sampling().seed();
    EXPECT_EQ(r.finish_reason(), v1::FINISH_REASON_STOP) << r.text();
    EXPECT_LT(r.token_ids_size(), kJsonMaxTokens);
    const StreamResult s = GenerateStream(stub_.get(), request);
    ASSERT_TRUE(s.status.ok()) << s.status.error_message();
    EXPECT_EQ(s.text, r.text());
    EXPECT_EQ(s.chunks.back().finish_reason(), v1::FINISH_REASON_STOP);

    request.mutable_response_format()->mutable_json_object();
    SteerToCloseJson(request.mutable_sampling());
    const v1::GenerateResponse object = MustGenerate(request);
    EXPECT_TRUE(IsJsonObject(object.text())) << "seed " << request.sampling().seed();
    EXPECT_EQ(object.finish_reason(), v1::FINISH_REASON_STOP) << object.text();
  }
}

// response_format regex and choice: greedy and sampled outputs are texts the pattern matches
// whole (std::regex on the decoded text) or one of the choices, ending with STOP; a pattern the
// compiler refuses is InvalidArgument naming the field and the byte.
TEST_F(GenerateE2eTest, RegexAndChoiceOutputsMatchWhole) {
  const std::string pattern = "(yes|no|maybe), [a-z]{2,6}-[0-9]{1,3}!";
  const std::vector<std::string> choices = {"alpha", "beta gamma", "d\xc3\xa9lta"};
  std::vector<v1::GenerateRequest> requests = {GreedyRequest("Say:", 40)};
  for (uint64_t seed : {1, 2, 3}) requests.push_back(SeededRequest("Say:", 40, seed));
  for (v1::GenerateRequest& request : requests) {
    request.mutable_response_format()->mutable_regex()->set_pattern(pattern);
    const v1::GenerateResponse r = MustGenerate(request);
    EXPECT_TRUE(std::regex_match(r.text(), std::regex(pattern))) << r.text();
    EXPECT_EQ(r.finish_reason(), v1::FINISH_REASON_STOP) << r.text();
    for (const std::string& c : choices) {
      request.mutable_response_format()->mutable_choice()->add_choices(c);
    }
    const v1::GenerateResponse one = MustGenerate(request);
    EXPECT_THAT(choices, ::testing::Contains(one.text()));
    EXPECT_EQ(one.finish_reason(), v1::FINISH_REASON_STOP) << one.text();
  }
  v1::GenerateRequest bad = GreedyRequest("Say:", 10);
  bad.mutable_response_format()->mutable_regex()->set_pattern("(a)\\1");
  v1::GenerateResponse response;
  const grpc::Status status = Generate(stub_.get(), bad, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_EQ(status.error_message(),
            "response_format.regex.pattern: regex at byte 3: backreferences are not supported");
}

TEST_F(GenerateE2eTest, ResponseFormatRefusalsAreInvalidArgument) {
  v1::GenerateRequest request = GreedyRequest("A record:", 20);
  // "not" is a keyword the compiler does not enforce: refused, naming where it is.
  request.mutable_response_format()->mutable_json_schema()->set_schema_json(
      R"({"type":"object","properties":{"id":{"type":"string","not":{"const":"x"}}}})");
  v1::GenerateResponse response;
  grpc::Status status = Generate(stub_.get(), request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(),
              ::testing::StartsWith("response_format.json_schema.schema_json: "));
  EXPECT_THAT(status.error_message(), ::testing::HasSubstr("#/properties/id"));
  request.mutable_response_format()->mutable_json_schema()->set_schema_json("{\"type\":");
  status = Generate(stub_.get(), request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(),
              ::testing::StartsWith("response_format.json_schema.schema_json: "));
  const StreamResult stream = GenerateStream(stub_.get(), request);
  EXPECT_EQ(stream.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  request.mutable_response_format()->mutable_json_schema()->clear_schema_json();
  status = Generate(stub_.get(), request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(
      status.error_message(),
      ::testing::HasSubstr("response_format.json_schema.schema_json must be 1-65536 bytes"));
  request.mutable_response_format()->mutable_json_object();
  request.set_max_tokens(0);
  status = Generate(stub_.get(), request, &response);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_THAT(status.error_message(),
              ::testing::HasSubstr("response_format must not be set with max_tokens 0"));
}

}  // namespace
}  // namespace attnres::e2e
