// Aggregation and printing of `attnres-cli bench` results (see bench_report.h).
#include "bench_report.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <numeric>

namespace attnres::cli {
namespace {

double Percentile(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return 0;
  const double rank = q * static_cast<double>(sorted.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(rank));
  const size_t hi = std::min(lo + 1, sorted.size() - 1);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (rank - static_cast<double>(lo));
}

std::string Line(const char* name, double value, const char* fmt = "%.2f") {
  char buf[128];
  char num[64];
  std::snprintf(num, sizeof(num), fmt, value);
  std::snprintf(buf, sizeof(buf), "%-40s %12s\n", name, num);
  return buf;
}

std::string LatencyLines(const char* title, const char* key, const LatencySummary& s) {
  std::string out = std::string("---------------") + title + "----------------\n";
  for (const auto& [label, v] : {std::pair{"Mean", s.mean}, std::pair{"P50", s.p50},
                                 std::pair{"P90", s.p90}, std::pair{"P99", s.p99}}) {
    const std::string name = std::string(label) + " " + key + " (ms):";
    out += Line(name.c_str(), v * 1e3);
  }
  return out;
}

nlohmann::json LatencyJson(const LatencySummary& s) {
  return {{"mean_ms", s.mean * 1e3},
          {"p50_ms", s.p50 * 1e3},
          {"p90_ms", s.p90 * 1e3},
          {"p99_ms", s.p99 * 1e3},
          {"count", s.count}};
}

}  // namespace

LatencySummary Summarize(std::vector<double> values) {
  LatencySummary s;
  s.count = static_cast<int>(values.size());
  if (values.empty()) return s;
  std::sort(values.begin(), values.end());
  s.mean = std::accumulate(values.begin(), values.end(), 0.0) / static_cast<double>(values.size());
  s.p50 = Percentile(values, 0.50);
  s.p90 = Percentile(values, 0.90);
  s.p99 = Percentile(values, 0.99);
  return s;
}

BenchReport BuildReport(const std::vector<BenchRequestResult>& results, int concurrency,
                        double duration_s) {
  BenchReport r;
  r.concurrency = concurrency;
  r.num_requests = static_cast<int>(results.size());
  r.duration_s = duration_s;
  std::vector<double> ttft, tpot, itl, e2e;
  for (const BenchRequestResult& x : results) {
    if (!x.ok) {
      ++r.errors[x.error_code];
      continue;
    }
    ++r.completed;
    r.total_input_tokens += x.prompt_tokens;
    r.total_output_tokens += x.output_tokens;
    r.total_cached_tokens += x.cached_prompt_tokens;
    if (x.ttft_s >= 0) ttft.push_back(x.ttft_s);
    if (x.output_tokens > 1 && x.ttft_s >= 0) {
      tpot.push_back((x.e2e_s - x.ttft_s) / (x.output_tokens - 1));
    }
    itl.insert(itl.end(), x.itl_s.begin(), x.itl_s.end());
    e2e.push_back(x.e2e_s);
  }
  if (duration_s > 0) {
    r.request_throughput = r.completed / duration_s;
    r.output_throughput = static_cast<double>(r.total_output_tokens) / duration_s;
    r.total_token_throughput =
        static_cast<double>(r.total_input_tokens + r.total_output_tokens) / duration_s;
  }
  r.ttft = Summarize(std::move(ttft));
  r.tpot = Summarize(std::move(tpot));
  r.itl = Summarize(std::move(itl));
  r.e2e = Summarize(std::move(e2e));
  return r;
}

std::string FormatReport(const BenchReport& r) {
  std::string out = "============ Serving Benchmark Result ============\n";
  out += Line("Concurrency:", r.concurrency, "%.0f");
  out += Line("Successful requests:", r.completed, "%.0f");
  out += Line("Failed requests:", r.num_requests - r.completed, "%.0f");
  for (const auto& [code, n] : r.errors) {
    out += Line(("  " + code + ":").c_str(), n, "%.0f");
  }
  out += Line("Benchmark duration (s):", r.duration_s);
  out += Line("Total input tokens:", static_cast<double>(r.total_input_tokens), "%.0f");
  out += Line("Total generated tokens:", static_cast<double>(r.total_output_tokens), "%.0f");
  out += Line("Prefix-cached input tokens:", static_cast<double>(r.total_cached_tokens), "%.0f");
  out += Line("Request throughput (req/s):", r.request_throughput);
  out += Line("Output token throughput (tok/s):", r.output_throughput);
  out += Line("Total token throughput (tok/s):", r.total_token_throughput);
  out += LatencyLines("Time to First Token", "TTFT", r.ttft);
  out += LatencyLines("Time per Output Token (excl. 1st token)", "TPOT", r.tpot);
  out += LatencyLines("Inter-token Latency", "ITL", r.itl);
  out += LatencyLines("End-to-end Latency", "E2EL", r.e2e);
  out += "==================================================\n";
  return out;
}

nlohmann::json ReportToJson(const BenchReport& r) {
  nlohmann::json errors = nlohmann::json::object();
  for (const auto& [code, n] : r.errors) errors[code] = n;
  return {{"concurrency", r.concurrency},
          {"num_requests", r.num_requests},
          {"completed", r.completed},
          {"failed", r.num_requests - r.completed},
          {"errors", errors},
          {"duration_s", r.duration_s},
          {"total_input_tokens", r.total_input_tokens},
          {"total_output_tokens", r.total_output_tokens},
          {"total_cached_tokens", r.total_cached_tokens},
          {"request_throughput", r.request_throughput},
          {"output_throughput", r.output_throughput},
          {"total_token_throughput", r.total_token_throughput},
          {"ttft", LatencyJson(r.ttft)},
          {"tpot", LatencyJson(r.tpot)},
          {"itl", LatencyJson(r.itl)},
          {"e2e_latency", LatencyJson(r.e2e)}};
}

}  // namespace attnres::cli
