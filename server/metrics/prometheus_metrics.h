// PrometheusMetrics: the EngineObserver that keeps Prometheus metrics (names in the convention
// of other serving engines, prefixed attnres_, no colons) and serves them over HTTP /metrics.
// Owns only metric state; the engine never depends on it.
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "prometheus/counter.h"
#include "prometheus/family.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"
#include "server/engine/engine_observer.h"

namespace attnres {

class HttpServer;

class PrometheusMetrics final : public EngineObserver {
 public:
  PrometheusMetrics();  // metrics only; nothing served (tests read Serialize())
  ~PrometheusMetrics() override;

  // Serves GET /metrics on host:port (port 0: any free port; see port()).
  absl::Status Serve(const std::string& host, int port);
  int port() const;  // the bound port (0 before Serve)
  // The text exposition format, as /metrics returns it.
  std::string Serialize() const;

  void OnStep(const StepStats& step) override;
  void OnState(const EngineState& state) override;
  void OnFirstToken(double ttft_s) override;
  void OnInterTokenLatency(double seconds) override;
  void OnRequestFinished(const RequestStats& request) override;
  void OnRejected(absl::StatusCode code) override;

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<HttpServer> endpoint_;  // null until Serve

  // Gauges: the engine's state after its latest iteration.
  prometheus::Gauge& running_;
  prometheus::Gauge& waiting_;
  prometheus::Gauge& kv_pages_used_;
  prometheus::Gauge& kv_pages_total_;
  prometheus::Gauge& kv_usage_;
  prometheus::Gauge& prefix_cached_pages_;
  // Counters.
  prometheus::Counter& prompt_tokens_;
  prometheus::Counter& generation_tokens_;
  prometheus::Counter& prefix_queries_;
  prometheus::Counter& prefix_hits_;
  prometheus::Counter& preemptions_;
  prometheus::Family<prometheus::Counter>& finished_;  // {finish_reason, code}
  prometheus::Family<prometheus::Counter>& rejected_;  // {code}
  // Histograms.
  prometheus::Histogram& ttft_;
  prometheus::Histogram& itl_;
  prometheus::Histogram& e2e_;
  prometheus::Histogram& queue_;
  prometheus::Histogram& step_;
  prometheus::Histogram& batch_seqs_;
  prometheus::Histogram& batch_tokens_;
  prometheus::Histogram& request_prompt_tokens_;
  prometheus::Histogram& request_generation_tokens_;
};

}  // namespace attnres
