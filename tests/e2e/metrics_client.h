// End-to-end test support for the Prometheus endpoint: a free loopback port to pass as
// --metrics-port, a minimal HTTP/1.0 GET, and reading one sample out of the text format.
#pragma once

#include <optional>
#include <string>

namespace attnres::e2e {

// A TCP port that was free on 127.0.0.1 a moment ago (bind to 0, read it, close).
int FreeTcpPort();

// The body of GET http://127.0.0.1:port/path; empty on any failure.
std::string HttpGet(int port, const std::string& path);

// The value of the sample whose name and labels are exactly `series` (e.g.
// "attnres_kv_cache_pages_used"), if present in `exposition`.
std::optional<double> MetricValue(const std::string& exposition, const std::string& series);

}  // namespace attnres::e2e
