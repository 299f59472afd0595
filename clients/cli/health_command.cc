// `attnres-cli health [--service NAME]`: the standard grpc.health.v1 Check. Prints the serving
// status; exits 0 only when SERVING.
#include <iostream>
#include <string>

#include "cli_common.h"
#include "commands.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace attnres::cli {
namespace {

int RunHealth(const CliState& state, const std::string& service) {
  auto stub = grpc::health::v1::Health::NewStub(MakeChannel(state));
  grpc::ClientContext context;
  ConfigureContext(state, &context);
  grpc::health::v1::HealthCheckRequest request;
  request.set_service(service);
  grpc::health::v1::HealthCheckResponse response;
  grpc::Status status = stub->Check(&context, request, &response);
  if (!status.ok()) return PrintRpcError(status);
  std::cout << grpc::health::v1::HealthCheckResponse::ServingStatus_Name(response.status())
            << std::endl;
  return response.status() == grpc::health::v1::HealthCheckResponse::SERVING ? kExitOk
                                                                             : kExitRpcError;
}

}  // namespace

void AddHealthCommands(CLI::App& app, CliState& state) {
  CLI::App* cmd = app.add_subcommand("health", "Check the server's health (grpc.health.v1)");
  auto service = std::make_shared<std::string>();
  cmd->add_option("--service", *service, "Service name (empty: the whole server)");
  cmd->callback(
      [&state, service] { state.run = [&state, service] { return RunHealth(state, *service); }; });
}

}  // namespace attnres::cli
