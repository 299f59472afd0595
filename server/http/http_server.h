// HttpServer: an HTTP/1.1 server (cpp-httplib) accepting on its own thread, its handlers on a
// pool of worker threads. Serves Prometheus /metrics and the OpenAI-compatible API. Binds without
// SO_REUSEPORT, so a port another process listens on is refused; stops when destroyed.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"

namespace httplib {
class Server;
}

namespace attnres {

class HttpServer {
 public:
  // Adds the routes (and any settings) to the server before it starts listening.
  using Setup = std::function<void(httplib::Server&)>;

  // Listens on host:port (port 0: any free port) with `threads` handler threads; UNAVAILABLE
  // naming the address when it cannot listen.
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(const std::string& host, int port,
                                                           int threads, const Setup& setup);
  // Stops accepting, then waits for the handlers in flight.
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  int port() const { return port_; }

 private:
  HttpServer() = default;
  std::unique_ptr<httplib::Server> server_;
  std::atomic<bool> done_{false};
  std::thread thread_;  // runs server_'s accept loop; sets done_ when it returns
  int port_ = 0;
};

}  // namespace attnres
