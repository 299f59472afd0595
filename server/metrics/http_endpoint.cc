// HttpEndpoint over cpp-httplib. (civetweb, which prometheus-cpp's own exposer uses, starts its
// threads with a fixed small stack that cuBLASLt's thread-local storage does not fit in, so it
// cannot start in a process that links the CUDA backend.)
#include "server/metrics/http_endpoint.h"

#include <sys/socket.h>

#include <chrono>
#include <utility>

#include "absl/strings/str_cat.h"
#include "httplib.h"

namespace attnres {

absl::StatusOr<std::unique_ptr<HttpEndpoint>> HttpEndpoint::Start(
    const std::string& host, int port, const std::string& path, const std::string& content_type,
    std::function<std::string()> body) {
  std::unique_ptr<HttpEndpoint> e(new HttpEndpoint());
  e->server_ = std::make_unique<httplib::Server>();
  httplib::Server& s = *e->server_;
  // One worker: scrapes are rare and cheap.
  s.new_task_queue = [] { return new httplib::ThreadPool(1); };
  s.set_socket_options([](socket_t sock) {
    int yes = 1;  // reuse a port in TIME_WAIT after a restart, never a live listener's
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  s.Get(path, [body = std::move(body), content_type](const httplib::Request&,
                                                     httplib::Response& res) {
    res.set_content(body(), content_type);
  });
  const std::string address = absl::StrCat(host, ":", port);
  if (port == 0) {
    e->port_ = s.bind_to_any_port(host);
    if (e->port_ <= 0) {
      return absl::UnavailableError(absl::StrCat("cannot listen for HTTP on ", address));
    }
  } else {
    if (!s.bind_to_port(host, port)) {
      return absl::UnavailableError(
          absl::StrCat("cannot listen for HTTP on ", address, " (in use, or not a local address)"));
    }
    e->port_ = port;
  }
  HttpEndpoint* self = e.get();
  e->thread_ = std::thread([self] {
    self->server_->listen_after_bind();
    self->done_.store(true);
  });
  return e;
}

HttpEndpoint::~HttpEndpoint() {
  if (!thread_.joinable()) return;
  // stop() only ends a server already in its accept loop: wait for the thread to get there (or
  // to have given up), else an endpoint destroyed right after Start would never stop.
  while (!server_->is_running() && !done_.load()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  server_->stop();
  thread_.join();
}

}  // namespace attnres
