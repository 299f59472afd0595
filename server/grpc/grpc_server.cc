// GrpcServer (see grpc_server.h).
#include "server/grpc/grpc_server.h"

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/security/server_credentials.h"
#include "grpcpp/server_builder.h"
#include "spdlog/spdlog.h"

namespace attnres {
namespace {

constexpr char kServiceName[] = "attnres.v1.AttnRes";

std::string HostPort(const std::string& host, int port) {
  // IPv6 literals need brackets in a gRPC address.
  if (absl::StrContains(host, ':') && !absl::StartsWith(host, "[")) {
    return absl::StrCat("[", host, "]:", port);
  }
  return absl::StrCat(host, ":", port);
}

}  // namespace

absl::StatusOr<std::unique_ptr<GrpcServer>> GrpcServer::Start(const GrpcServerOptions& options,
                                                              AttnResService* service) {
  if (options.port < 0 || options.port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("--port must be in [0, 65535], got ", options.port));
  }
  // Both are process-wide switches that must be set before the builder exists.
  grpc::EnableDefaultHealthCheckService(true);
  grpc::reflection::InitProtoReflectionServerBuilderPlugin();

  grpc::ServerBuilder builder;
  int selected_port = 0;
  const std::string requested = HostPort(options.host, options.port);
  builder.AddListeningPort(requested, grpc::InsecureServerCredentials(), &selected_port);
  builder.SetMaxReceiveMessageSize(options.max_receive_message_bytes);
  builder.RegisterService(service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (server == nullptr || selected_port == 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", requested, " (address in use or not local?)"));
  }
  auto result = std::unique_ptr<GrpcServer>(
      new GrpcServer(std::move(server), selected_port, HostPort(options.host, selected_port)));
  result->SetServing(true);
  return result;
}

GrpcServer::GrpcServer(std::unique_ptr<grpc::Server> server, int port, std::string address)
    : server_(std::move(server)), port_(port), address_(std::move(address)) {}

GrpcServer::~GrpcServer() {
  if (!shut_down_) {
    server_->Shutdown(std::chrono::system_clock::now());
    server_->Wait();
  }
}

void GrpcServer::SetServing(bool serving) {
  grpc::HealthCheckServiceInterface* health = server_->GetHealthCheckService();
  if (health == nullptr) return;
  health->SetServingStatus(serving);  // every registered name, "" included
  health->SetServingStatus(kServiceName, serving);
}

void GrpcServer::DrainAndShutdown(Engine* engine, absl::Duration grace) {
  if (shut_down_) return;
  SetServing(false);
  spdlog::info("draining: new requests get UNAVAILABLE, in-flight requests finish");
  engine->Drain();
  spdlog::info("engine drained; shutting down the gRPC server ({} s grace)",
               absl::ToDoubleSeconds(grace));
  server_->Shutdown(absl::ToChronoTime(absl::Now() + grace));
  server_->Wait();
  shut_down_ = true;
}

}  // namespace attnres
