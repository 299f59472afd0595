// Shared pieces of attnres-cli commands: channel and stubs, per-call context with the global
// --timeout, error printing ("error: <STATUS_CODE>: <message>" on stderr), JSON output of proto
// messages, the response-format flags, and list parsing. Exit codes: 0 ok, 1 RPC/server error, 2
// usage error.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "attnres/v1/attnres.grpc.pb.h"
#include "commands.h"
#include "google/protobuf/message.h"
#include "grpcpp/grpcpp.h"
#include "nlohmann/json.hpp"

namespace attnres::cli {

inline constexpr int kExitOk = 0;
inline constexpr int kExitRpcError = 1;
inline constexpr int kExitUsage = 2;

std::shared_ptr<grpc::Channel> MakeChannel(const CliState& state);
std::unique_ptr<v1::AttnRes::Stub> MakeStub(const CliState& state);
// Applies --timeout to a fresh call context.
void ConfigureContext(const CliState& state, grpc::ClientContext* context);

// "INVALID_ARGUMENT" etc.
const char* StatusCodeName(grpc::StatusCode code);
// Prints "error: CODE: message" to stderr and returns kExitRpcError.
int PrintRpcError(const grpc::Status& status);
// Prints "error: message" to stderr and returns kExitUsage.
int PrintUsageError(const std::string& message);

// A proto message as JSON with the .proto field names and every field present.
nlohmann::json ProtoToJson(const google::protobuf::Message& message);

// --json-object, --json-schema FILE, --regex PATTERN and --choice TEXT... (mutually exclusive):
// the request's response_format.
struct ResponseFormatFlags {
  bool json_object = false;
  std::string json_schema_file;
  std::string regex;                 // --regex: the whole output matches it
  std::vector<std::string> choices;  // --choice (repeated): the output is one of them
};
void AddResponseFormatOptions(CLI::App* cmd, ResponseFormatFlags* flags);
// Sets request->response_format from the flags (the schema file's text as it is); returns an
// empty string, or a usage error naming the file when it cannot be read.
std::string SetResponseFormat(const ResponseFormatFlags& flags, v1::GenerateRequest* request);

// "1,2, 3" -> {1,2,3}; false on a malformed list.
bool ParseIdList(const std::string& text, std::vector<int32_t>* ids);
// "ID=VALUE" (a token id and a number, e.g. "42=-100").
bool ParseIdValue(const std::string& text, int32_t* id, float* value);

}  // namespace attnres::cli
