// HttpEndpoint: one GET path served over HTTP/1.1 on its own thread (cpp-httplib), for the
// Prometheus /metrics scrape. Each request calls the body function; the endpoint stops when
// destroyed. Binds without SO_REUSEPORT, so a port another process listens on is refused.
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

class HttpEndpoint {
 public:
  // Serves GET `path` on host:port (port 0: any free port) with content_type and the text the
  // body function returns; UNAVAILABLE naming the address when it cannot listen.
  static absl::StatusOr<std::unique_ptr<HttpEndpoint>> Start(const std::string& host, int port,
                                                             const std::string& path,
                                                             const std::string& content_type,
                                                             std::function<std::string()> body);
  ~HttpEndpoint();
  HttpEndpoint(const HttpEndpoint&) = delete;
  HttpEndpoint& operator=(const HttpEndpoint&) = delete;

  int port() const { return port_; }

 private:
  HttpEndpoint() = default;
  std::unique_ptr<httplib::Server> server_;
  std::atomic<bool> done_{false};
  std::thread thread_;  // runs server_'s accept loop; sets done_ when it returns
  int port_ = 0;
};

}  // namespace attnres
