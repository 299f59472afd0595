// GrpcServer: builds and runs the gRPC server around AttnResService, with the standard health
// service (grpc.health.v1) and server reflection (v1alpha in gRPC 1.51), and the graceful
// shutdown sequence (NOT_SERVING -> engine drain -> server shutdown with a deadline).
// Does not parse flags or handle signals (server/main.cc does).
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "grpcpp/server.h"
#include "server/engine/engine.h"
#include "server/grpc/attnres_service.h"

namespace attnres {

struct GrpcServerOptions {
  std::string host = "127.0.0.1";
  int port = 50051;                          // 0: pick a free port (see GrpcServer::port())
  int max_receive_message_bytes = 64 << 20;  // long token-id prompts
};

class GrpcServer {
 public:
  // Starts serving `service` (which must outlive the server). Health starts as SERVING.
  static absl::StatusOr<std::unique_ptr<GrpcServer>> Start(const GrpcServerOptions& options,
                                                           AttnResService* service);
  ~GrpcServer();

  int port() const { return port_; }                       // the bound port, also when 0 was asked
  const std::string& address() const { return address_; }  // "host:port" with the bound port

  // Flips every health entry ("" and "attnres.v1.AttnRes").
  void SetServing(bool serving);

  // Health NOT_SERVING, engine->Drain() (in-flight requests finish and their streams flush),
  // then Shutdown with `grace` for the last writes; cancels whatever is left after that.
  void DrainAndShutdown(Engine* engine, absl::Duration grace);

 private:
  GrpcServer(std::unique_ptr<grpc::Server> server, int port, std::string address);

  std::unique_ptr<grpc::Server> server_;
  int port_;
  std::string address_;
  bool shut_down_ = false;
};

}  // namespace attnres
