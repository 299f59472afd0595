// Request builders and RPC helpers shared by the end-to-end test files.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "attnres/v1/attnres.grpc.pb.h"
#include "grpcpp/grpcpp.h"

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

}  // namespace attnres::e2e
