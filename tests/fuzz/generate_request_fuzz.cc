// Fuzz target: one serialized attnres.v1.GenerateRequest through everything a Generate call does
// after gRPC hands it over: validation, conversion (tokenizing, defaults), Engine::Submit on the
// real CPU engine with the tiny Block AttnRes test model, and MergeDelta into the response
// (fuzz_server.h). A bad request must end in INVALID_ARGUMENT with a message; a good one in a
// final delta and a response that checks out, or a structured output's failure that says why
// (CheckOutcome).
#include <cstdint>
#include <memory>

#include "tests/fuzz/fuzz_check.h"
#include "tests/fuzz/fuzz_server.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace attnres;
  // Never destroyed: the engine thread lives for the whole fuzzing process.
  static const fuzz::FuzzServer* server = fuzz::StartFuzzServer(int64_t{8} << 20).release();
  auto request = fuzz::PrepareRequest(data, size, server->ctx());
  if (!request.ok()) return 0;
  const GenerationRequest expected = *request;
  auto sink = std::make_shared<fuzz::ResponseSink>(server->ctx());
  auto handle = server->engine->Submit(std::move(*request), sink);
  if (!handle.ok()) {
    FUZZ_CHECK(handle.status().code() == absl::StatusCode::kInvalidArgument,
               "the engine refuses a lone request only as INVALID_ARGUMENT");
    return 0;
  }
  fuzz::CheckOutcome(sink->Wait(), expected);
  FUZZ_CHECK(server->engine->healthy(), "the engine stays healthy");
  return 0;
}
