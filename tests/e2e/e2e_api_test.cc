// End-to-end API surface through C++ stubs against the real attnres-server: health,
// reflection, model info, tokenize/detokenize, request validation (INVALID_ARGUMENT naming the
// field), client cancellation and deadlines; the server must keep serving after each.
#include <chrono>
#include <functional>
#include <thread>

#include "e2e_test_util.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpc/reflection/v1alpha/reflection.grpc.pb.h"
#include "server_fixture.h"

namespace attnres::e2e {
namespace {

using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;

class ApiE2eTest : public SharedServerTest {
 protected:
  void ExpectStillServing() {
    v1::GenerateResponse r;
    grpc::Status status = Generate(stub_.get(), GreedyRequest("still alive?", 4), &r);
    ASSERT_TRUE(status.ok()) << status.error_message();
    EXPECT_EQ(r.token_ids_size(), 4);
  }
};

TEST_F(ApiE2eTest, HealthIsServing) {
  auto health = grpc::health::v1::Health::NewStub(server().Channel());
  for (const char* service : {"", "attnres.v1.AttnRes"}) {
    grpc::ClientContext context;
    HealthCheckRequest request;
    request.set_service(service);
    HealthCheckResponse response;
    ASSERT_TRUE(health->Check(&context, request, &response).ok()) << service;
    EXPECT_EQ(response.status(), HealthCheckResponse::SERVING) << service;
  }
}

TEST_F(ApiE2eTest, ReflectionListsTheService) {
  auto reflection = grpc::reflection::v1alpha::ServerReflection::NewStub(server().Channel());
  grpc::ClientContext context;
  SetTimeout(&context, std::chrono::seconds(10));
  auto stream = reflection->ServerReflectionInfo(&context);
  grpc::reflection::v1alpha::ServerReflectionRequest request;
  request.set_list_services("");
  ASSERT_TRUE(stream->Write(request));
  grpc::reflection::v1alpha::ServerReflectionResponse response;
  ASSERT_TRUE(stream->Read(&response));
  std::vector<std::string> names;
  for (const auto& s : response.list_services_response().service()) names.push_back(s.name());
  EXPECT_NE(std::find(names.begin(), names.end(), "attnres.v1.AttnRes"), names.end());
  EXPECT_NE(std::find(names.begin(), names.end(), "grpc.health.v1.Health"), names.end());
  // The service's file descriptor is served too (what grpcurl needs).
  request.set_file_containing_symbol("attnres.v1.AttnRes");
  ASSERT_TRUE(stream->Write(request));
  ASSERT_TRUE(stream->Read(&response));
  EXPECT_GT(response.file_descriptor_response().file_descriptor_proto_size(), 0);
  stream->WritesDone();
  EXPECT_TRUE(stream->Finish().ok());
}

TEST_F(ApiE2eTest, ModelInfoDescribesTheTinyBlockModel) {
  grpc::ClientContext context;
  v1::ModelInfo info;
  ASSERT_TRUE(stub_->GetModelInfo(&context, v1::GetModelInfoRequest(), &info).ok());
  const bool cpu = E2eDevice() == "cpu";
  EXPECT_EQ(info.device().rfind(cpu ? "cpu" : "cuda", 0), 0u) << info.device();
  EXPECT_EQ(info.dtype(), cpu ? "float32" : "bfloat16");
  EXPECT_GT(info.num_parameters(), 0);
  EXPECT_GT(info.vocab_size(), 0);
  EXPECT_GT(info.num_layers(), 0);
  EXPECT_TRUE(info.attn_res().enabled());
  EXPECT_EQ(info.attn_res().mode(), "block");
  const int layers = info.num_layers(), bs = info.attn_res().block_size();
  ASSERT_GT(bs, 0);
  EXPECT_EQ(info.attn_res().num_blocks(), (layers + bs - 1) / bs);
  EXPECT_EQ(info.attn_res().num_mixes(), 2 * layers + 1);
  EXPECT_EQ(info.attn_res().sources_per_mix_size(), 2 * layers + 1);
  EXPECT_GT(info.limits().max_model_len(), 0);
  EXPECT_GT(info.limits().kv_num_pages(), 0);
  EXPECT_EQ(info.limits().max_stop_strings(), 16);
  EXPECT_EQ(info.limits().max_logprobs(), 20);
  EXPECT_EQ(info.limits().max_logit_bias(), 1024);
  EXPECT_FALSE(info.has_chat_template());  // the bundled model ships none
}

TEST_F(ApiE2eTest, TokenizeDetokenizeRoundTrip) {
  const std::string text = "Hello, world! Grüße 123";
  grpc::ClientContext c1;
  v1::TokenizeRequest tok;
  tok.set_text(text);
  tok.set_add_special_tokens(false);
  v1::TokenizeResponse ids;
  ASSERT_TRUE(stub_->Tokenize(&c1, tok, &ids).ok());
  ASSERT_GT(ids.token_ids_size(), 0);
  EXPECT_EQ(ids.tokens_size(), ids.token_ids_size());
  grpc::ClientContext c2;
  v1::DetokenizeRequest detok;
  detok.mutable_token_ids()->CopyFrom(ids.token_ids());
  v1::DetokenizeResponse back;
  ASSERT_TRUE(stub_->Detokenize(&c2, detok, &back).ok());
  EXPECT_EQ(back.text(), text);
}

struct BadCase {
  const char* name;
  std::function<void(v1::GenerateRequest*)> mutate;
  const char* field;  // must appear in the error message
};

TEST_F(ApiE2eTest, BadRequestsAreInvalidArgumentNamingTheField) {
  const std::vector<BadCase> cases = {
      {"no prompt", [](auto* r) { r->clear_prompt(); }, "prompt"},
      {"empty text", [](auto* r) { r->mutable_prompt()->set_text(""); }, "prompt.text"},
      {"empty ids", [](auto* r) { r->mutable_prompt()->mutable_token_ids(); }, "prompt.token_ids"},
      {"id out of range",
       [](auto* r) { r->mutable_prompt()->mutable_token_ids()->add_ids(1 << 30); },
       "prompt.token_ids.ids[0]"},
      {"negative id", [](auto* r) { r->mutable_prompt()->mutable_token_ids()->add_ids(-1); },
       "prompt.token_ids.ids[0]"},
      {"max_tokens -1", [](auto* r) { r->set_max_tokens(-1); }, "max_tokens must be >= 0"},
      {"max_tokens too big", [](auto* r) { r->set_max_tokens(1 << 20); }, "max_tokens"},
      {"temperature", [](auto* r) { r->mutable_sampling()->set_temperature(-1); },
       "sampling.temperature"},
      {"temperature nan", [](auto* r) { r->mutable_sampling()->set_temperature(NAN); },
       "sampling.temperature"},
      {"top_p 0", [](auto* r) { r->mutable_sampling()->set_top_p(0); }, "sampling.top_p"},
      {"top_p 1.5", [](auto* r) { r->mutable_sampling()->set_top_p(1.5); },
       "sampling.top_p must be in (0, 1], got 1.5"},
      {"top_k", [](auto* r) { r->mutable_sampling()->set_top_k(-3); }, "sampling.top_k"},
      {"min_p", [](auto* r) { r->mutable_sampling()->set_min_p(2); }, "sampling.min_p"},
      {"repetition", [](auto* r) { r->mutable_sampling()->set_repetition_penalty(0); },
       "sampling.repetition_penalty"},
      {"presence", [](auto* r) { r->mutable_sampling()->set_presence_penalty(3); },
       "sampling.presence_penalty"},
      {"frequency", [](auto* r) { r->mutable_sampling()->set_frequency_penalty(-3); },
       "sampling.frequency_penalty"},
      {"too many stops",
       [](auto* r) {
         for (int i = 0; i < 17; ++i) r->add_stop(std::string(1, 'x'));
       },
       "stop"},
      {"empty stop", [](auto* r) { r->add_stop(""); }, "stop[0]"},
      {"long stop", [](auto* r) { r->add_stop(std::string(257, 'a')); }, "stop[0]"},
      {"stop id", [](auto* r) { r->add_stop_token_ids(-5); }, "stop_token_ids[0]"},
      {"too many stop ids",
       [](auto* r) {
         for (int i = 0; i < 65; ++i) r->add_stop_token_ids(1);
       },
       "stop_token_ids"},
      {"logit_bias id",
       [](auto* r) { (*r->mutable_sampling()->mutable_logit_bias())[1 << 20] = 1; },
       "sampling.logit_bias keys must be token ids"},
      {"logit_bias value", [](auto* r) { (*r->mutable_sampling()->mutable_logit_bias())[3] = 101; },
       "sampling.logit_bias[3] must be in [-100, 100], got 101"},
      {"too many logit_bias",
       [](auto* r) {
         for (int i = 0; i < 1025; ++i) (*r->mutable_sampling()->mutable_logit_bias())[i] = 1;
       },
       "sampling.logit_bias must have at most 1024 entries"},
      {"min_tokens negative", [](auto* r) { r->set_min_tokens(-1); }, "min_tokens must be >= 0"},
      {"min_tokens past max_tokens", [](auto* r) { r->set_min_tokens(5); },
       "min_tokens must be in [0, max_tokens=4], got 5"},
      {"logprobs", [](auto* r) { r->set_logprobs(21); }, "logprobs"},
      {"prompt_logprobs", [](auto* r) { r->set_prompt_logprobs(-1); }, "prompt_logprobs"},
      {"request_id", [](auto* r) { r->set_request_id(std::string(300, 'r')); }, "request_id"},
  };
  for (const BadCase& c : cases) {
    v1::GenerateRequest request = GreedyRequest("valid prompt", 4);
    c.mutate(&request);  // setting token_ids replaces the text (a oneof)
    v1::GenerateResponse response;
    grpc::Status status = Generate(stub_.get(), request, &response);
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT)
        << c.name << ": " << status.error_message();
    EXPECT_NE(status.error_message().find(c.field), std::string::npos)
        << c.name << ": '" << status.error_message() << "' does not name " << c.field;
    // The stream RPC validates the same way.
    StreamResult s = GenerateStream(stub_.get(), request);
    EXPECT_EQ(s.status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << c.name;
    EXPECT_TRUE(s.chunks.empty()) << c.name;
  }
  grpc::ClientContext context;
  v1::DetokenizeRequest detok;
  detok.add_token_ids(-7);
  v1::DetokenizeResponse text;
  grpc::Status status = stub_->Detokenize(&context, detok, &text);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(status.error_message().find("token_ids[0]"), std::string::npos);
  ExpectStillServing();
}

TEST_F(ApiE2eTest, ClientCancelStopsTheStreamOnTheServer) {
  v1::GenerateRequest request = GreedyRequest("cancel me", 100000);
  request.clear_max_tokens();  // up to the context limit
  request.set_request_id("e2e-cancel-1");
  grpc::ClientContext context;
  auto reader = stub_->GenerateStream(&context, request);
  v1::GenerateStreamResponse chunk;
  ASSERT_TRUE(reader->Read(&chunk));
  context.TryCancel();
  while (reader->Read(&chunk)) {
  }
  EXPECT_EQ(reader->Finish().error_code(), grpc::StatusCode::CANCELLED);
  // The server saw the cancel and finished the request as cancelled (not by length).
  bool seen = false;
  for (int i = 0; i < 200 && !seen; ++i) {
    seen = server().Log().find("stream e2e-cancel-1 finished: cancelled") != std::string::npos;
    if (!seen) std::this_thread::sleep_for(std::chrono::milliseconds(25));
  }
  EXPECT_TRUE(seen) << "no server-side cancellation logged for e2e-cancel-1";
  ExpectStillServing();
}

TEST_F(ApiE2eTest, DeadlineExceededEndsTheRequest) {
  v1::GenerateRequest request = GreedyRequest("deadline", 1);
  request.clear_max_tokens();
  for (bool stream : {false, true}) {
    grpc::ClientContext context;
    SetTimeout(&context, std::chrono::milliseconds(30));
    grpc::Status status;
    if (stream) {
      auto reader = stub_->GenerateStream(&context, request);
      v1::GenerateStreamResponse chunk;
      while (reader->Read(&chunk)) {
      }
      status = reader->Finish();
    } else {
      v1::GenerateResponse response;
      status = stub_->Generate(&context, request, &response);
    }
    EXPECT_EQ(status.error_code(), grpc::StatusCode::DEADLINE_EXCEEDED)
        << (stream ? "stream" : "unary") << ": " << status.error_message();
  }
  ExpectStillServing();
}

}  // namespace
}  // namespace attnres::e2e
