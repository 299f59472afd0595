// End-to-end test support for the HTTP endpoints: the port a server started with
// --metrics-port 0 or --http-port 0 picked (from its log), a minimal HTTP/1.0 GET, and reading
// one Prometheus sample out of the text format.
#pragma once

#include <optional>
#include <string>

namespace attnres::e2e {

// The port in the server's "<marker>HOST:PORT..." log line; 0 when absent.
int PortFromLog(const std::string& log, const std::string& marker);
// The port in the server's "metrics on http://HOST:PORT/metrics" log line; 0 when absent.
inline int MetricsPortFromLog(const std::string& log) {
  return PortFromLog(log, "metrics on http://");
}

// The body of GET http://127.0.0.1:port/path; empty on any failure.
std::string HttpGet(int port, const std::string& path);

// The value of the sample whose name and labels are exactly `series` (e.g.
// "attnres_kv_cache_pages_used"), if present in `exposition`.
std::optional<double> MetricValue(const std::string& exposition, const std::string& series);

}  // namespace attnres::e2e
