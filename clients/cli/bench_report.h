// The numbers `attnres-cli bench` reports, with the definitions of vLLM's benchmark_serving:
// TTFT (request sent -> first streamed token), TPOT ((e2e - TTFT) / (output tokens - 1), per
// request with more than one token), ITL (gaps between streamed chunks that carry tokens),
// E2E latency, and throughput over the whole run's wall time. Pure computation; no RPCs.
#pragma once

#include <map>
#include <string>
#include <vector>

#include "nlohmann/json.hpp"

namespace attnres::cli {

// What one request measured (times in seconds from sending it).
struct BenchRequestResult {
  bool ok = false;
  std::string error_code;  // "RESOURCE_EXHAUSTED" etc. when !ok
  int prompt_tokens = 0;
  int output_tokens = 0;
  int cached_prompt_tokens = 0;
  double ttft_s = -1;  // -1: no token arrived
  double e2e_s = 0;
  std::vector<double> itl_s;  // one per chunk after the first that carried tokens
};

struct LatencySummary {
  double mean = 0, p50 = 0, p90 = 0, p99 = 0;
  int count = 0;
};
// Percentiles by linear interpolation between closest ranks (numpy's default).
LatencySummary Summarize(std::vector<double> values);

struct BenchReport {
  int concurrency = 0;
  int num_requests = 0;
  int completed = 0;
  std::map<std::string, int> errors;  // status code name -> count
  double duration_s = 0;
  long total_input_tokens = 0;
  long total_output_tokens = 0;
  long total_cached_tokens = 0;
  double request_throughput = 0;        // completed requests / s
  double output_throughput = 0;         // output tokens / s
  double total_token_throughput = 0;    // (input + output) tokens / s
  LatencySummary ttft, tpot, itl, e2e;  // seconds
};

BenchReport BuildReport(const std::vector<BenchRequestResult>& results, int concurrency,
                        double duration_s);
std::string FormatReport(const BenchReport& report);     // the human table
nlohmann::json ReportToJson(const BenchReport& report);  // latencies in milliseconds

}  // namespace attnres::cli
