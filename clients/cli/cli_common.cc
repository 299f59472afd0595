// Shared pieces of attnres-cli commands (see cli_common.h).
#include "cli_common.h"

#include <cerrno>
#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "google/protobuf/util/json_util.h"

namespace attnres::cli {

std::shared_ptr<grpc::Channel> MakeChannel(const CliState& state) {
  grpc::ChannelArguments args;
  args.SetMaxReceiveMessageSize(256 << 20);
  return grpc::CreateCustomChannel(state.target, grpc::InsecureChannelCredentials(), args);
}

std::unique_ptr<v1::AttnRes::Stub> MakeStub(const CliState& state) {
  return v1::AttnRes::NewStub(MakeChannel(state));
}

void ConfigureContext(const CliState& state, grpc::ClientContext* context) {
  if (state.timeout_s > 0) {
    context->set_deadline(std::chrono::system_clock::now() +
                          std::chrono::microseconds(static_cast<int64_t>(state.timeout_s * 1e6)));
  }
}

const char* StatusCodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return "OK";
    case grpc::StatusCode::CANCELLED:
      return "CANCELLED";
    case grpc::StatusCode::UNKNOWN:
      return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND:
      return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS:
      return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION:
      return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED:
      return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE:
      return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED:
      return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL:
      return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE:
      return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS:
      return "DATA_LOSS";
    case grpc::StatusCode::UNAUTHENTICATED:
      return "UNAUTHENTICATED";
    default:
      return "UNKNOWN";
  }
}

int PrintRpcError(const grpc::Status& status) {
  std::cout.flush();
  std::cerr << "error: " << StatusCodeName(status.error_code()) << ": " << status.error_message()
            << std::endl;
  return kExitRpcError;
}

int PrintUsageError(const std::string& message) {
  std::cerr << "error: " << message << std::endl;
  return kExitUsage;
}

nlohmann::json ProtoToJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  options.always_print_enums_as_ints = false;
  std::string text;
  if (!google::protobuf::util::MessageToJsonString(message, &text, options).ok()) {
    return nlohmann::json::object();
  }
  return nlohmann::json::parse(text, nullptr, /*allow_exceptions=*/false);
}

void AddResponseFormatOptions(CLI::App* cmd, ResponseFormatFlags* flags) {
  CLI::Option* object =
      cmd->add_flag("--json-object", flags->json_object, "Constrain the output to a JSON object");
  CLI::Option* schema =
      cmd->add_option("--json-schema", flags->json_schema_file,
                      "Constrain the output to JSON that a JSON Schema (in FILE) accepts")
          ->type_name("FILE")
          ->excludes(object);
  CLI::Option* regex =
      cmd->add_option("--regex", flags->regex,
                      "Constrain the output to text the regular expression matches whole")
          ->type_name("PATTERN")
          ->excludes(object)
          ->excludes(schema);
  cmd->add_option("--choice", flags->choices,
                  "Constrain the output to one of these strings (repeat the option)")
      ->type_name("TEXT")
      ->excludes(object)
      ->excludes(schema)
      ->excludes(regex);
}

std::string SetResponseFormat(const ResponseFormatFlags& flags, v1::GenerateRequest* request) {
  if (flags.json_object) request->mutable_response_format()->mutable_json_object();
  if (!flags.regex.empty())
    request->mutable_response_format()->mutable_regex()->set_pattern(flags.regex);
  for (const std::string& choice : flags.choices) {
    request->mutable_response_format()->mutable_choice()->add_choices(choice);
  }
  if (flags.json_schema_file.empty()) return "";
  const std::string& path = flags.json_schema_file;
  std::error_code error;
  if (std::filesystem::is_directory(path, error)) {
    return "--json-schema: cannot read " + path + ": it is a directory";
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return "--json-schema: cannot read " + path + ": " + std::strerror(errno);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return "--json-schema: cannot read " + path;
  request->mutable_response_format()->mutable_json_schema()->set_schema_json(std::move(text));
  return "";
}

bool ParseIdList(const std::string& text, std::vector<int32_t>* ids) {
  ids->clear();
  for (absl::string_view piece : absl::StrSplit(text, ',', absl::SkipWhitespace())) {
    int32_t id = 0;
    if (!absl::SimpleAtoi(absl::StripAsciiWhitespace(piece), &id)) return false;
    ids->push_back(id);
  }
  return true;
}

bool ParseIdValue(const std::string& text, int32_t* id, float* value) {
  const std::pair<absl::string_view, absl::string_view> parts =
      absl::StrSplit(text, absl::MaxSplits('=', 1));
  return absl::SimpleAtoi(absl::StripAsciiWhitespace(parts.first), id) &&
         absl::SimpleAtof(absl::StripAsciiWhitespace(parts.second), value);
}

}  // namespace attnres::cli
