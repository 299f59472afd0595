// HttpServer over cpp-httplib. (civetweb, which prometheus-cpp's own exposer uses, starts its
// threads with a fixed small stack that cuBLASLt's thread-local storage does not fit in, so it
// cannot start in a process that links the CUDA backend.)
#include "server/http/http_server.h"

#include <sys/socket.h>

#include <chrono>
#include <utility>

#include "absl/strings/str_cat.h"
#include "httplib.h"

namespace attnres {

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(const std::string& host, int port,
                                                              int threads, const Setup& setup) {
  std::unique_ptr<HttpServer> e(new HttpServer());
  e->server_ = std::make_unique<httplib::Server>();
  httplib::Server& s = *e->server_;
  s.new_task_queue = [threads] { return new httplib::ThreadPool(threads); };
  socket_t listener = INVALID_SOCKET;  // the last socket httplib made: the one it binds
  s.set_socket_options([&listener](socket_t sock) {
    int yes = 1;  // reuse a port in TIME_WAIT after a restart, never a live listener's
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
    listener = sock;
  });
  setup(s);
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
  // Debian's httplib listens with a backlog of 5: past that many connections arriving at once,
  // the kernel drops handshakes and clients see resets. listen() again only raises the backlog.
  if (listener != INVALID_SOCKET) ::listen(listener, SOMAXCONN);
  HttpServer* self = e.get();
  e->thread_ = std::thread([self] {
    self->server_->listen_after_bind();
    self->done_.store(true);
  });
  return e;
}

HttpServer::~HttpServer() {
  if (!thread_.joinable()) return;
  // stop() only ends a server already in its accept loop: wait for the thread to get there (or
  // to have given up), else a server destroyed right after Start would never stop.
  while (!server_->is_running() && !done_.load()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  server_->stop();
  thread_.join();
}

}  // namespace attnres
