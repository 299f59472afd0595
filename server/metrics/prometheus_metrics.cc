// PrometheusMetrics (see prometheus_metrics.h). Bucket bounds follow vLLM's where one exists,
// extended down to 1 ms since small models on this server are fast.
#include "server/metrics/prometheus_metrics.h"

#include <sstream>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "httplib.h"
#include "prometheus/text_serializer.h"
#include "server/http/http_server.h"

namespace attnres {
namespace {

using prometheus::Histogram;

prometheus::Gauge& MakeGauge(prometheus::Registry& r, const std::string& name,
                             const std::string& help) {
  return prometheus::BuildGauge().Name(name).Help(help).Register(r).Add({});
}

prometheus::Counter& MakeCounter(prometheus::Registry& r, const std::string& name,
                                 const std::string& help) {
  return prometheus::BuildCounter().Name(name).Help(help).Register(r).Add({});
}

Histogram& MakeHistogram(prometheus::Registry& r, const std::string& name, const std::string& help,
                         Histogram::BucketBoundaries buckets) {
  return prometheus::BuildHistogram().Name(name).Help(help).Register(r).Add({}, std::move(buckets));
}

Histogram::BucketBoundaries LatencyBuckets() {
  return {0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1,  0.25, 0.5,
          0.75,  1.0,   2.5,  5.0,  7.5,  10.0, 20.0, 40.0, 80.0};
}

Histogram::BucketBoundaries E2eBuckets() {
  return {0.01, 0.05, 0.1,  0.3,  0.5,  0.8,  1.0,  1.5,  2.0,   2.5,
          5.0,  10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 300.0};
}

Histogram::BucketBoundaries PowersOfTwo(double max) {
  Histogram::BucketBoundaries b;
  for (double x = 1; x <= max; x *= 2) b.push_back(x);
  return b;
}

}  // namespace

PrometheusMetrics::PrometheusMetrics()
    : registry_(std::make_shared<prometheus::Registry>()),
      running_(MakeGauge(*registry_, "attnres_requests_running",
                         "Requests in the running batch (prefilling or decoding)")),
      waiting_(MakeGauge(*registry_, "attnres_requests_waiting",
                         "Requests queued for admission (new or preempted)")),
      kv_pages_used_(MakeGauge(*registry_, "attnres_kv_cache_pages_used",
                               "KV pages referenced by a request (free cached pages excluded)")),
      kv_pages_total_(
          MakeGauge(*registry_, "attnres_kv_cache_pages_total", "KV pages in the pool")),
      kv_usage_(MakeGauge(*registry_, "attnres_kv_cache_usage_ratio",
                          "Fraction of KV pages referenced by requests, in [0, 1]")),
      prefix_cached_pages_(MakeGauge(*registry_, "attnres_prefix_cache_pages",
                                     "KV pages published in the prefix cache")),
      prompt_tokens_(MakeCounter(*registry_, "attnres_prompt_tokens_total",
                                 "Prompt tokens computed (prefill and recompute)")),
      generation_tokens_(
          MakeCounter(*registry_, "attnres_generation_tokens_total", "Tokens generated")),
      prefix_queries_(MakeCounter(*registry_, "attnres_prefix_cache_queries_total",
                                  "Prompt tokens looked up in the prefix cache at admission")),
      prefix_hits_(MakeCounter(*registry_, "attnres_prefix_cache_hits_total",
                               "Prompt tokens whose KV came from the prefix cache")),
      preemptions_(MakeCounter(*registry_, "attnres_num_preemptions_total",
                               "Requests preempted (pages freed, recomputed later)")),
      finished_(prometheus::BuildCounter()
                    .Name("attnres_requests_finished_total")
                    .Help("Finished requests by finish reason and status code")
                    .Register(*registry_)),
      rejected_(prometheus::BuildCounter()
                    .Name("attnres_requests_rejected_total")
                    .Help("Requests refused at submission, by status code")
                    .Register(*registry_)),
      ttft_(MakeHistogram(*registry_, "attnres_time_to_first_token_seconds",
                          "Arrival to first generated token", LatencyBuckets())),
      itl_(MakeHistogram(*registry_, "attnres_inter_token_latency_seconds",
                         "Time between consecutive generated tokens of a request",
                         LatencyBuckets())),
      e2e_(MakeHistogram(*registry_, "attnres_e2e_request_latency_seconds", "Arrival to finish",
                         E2eBuckets())),
      queue_(MakeHistogram(*registry_, "attnres_request_queue_time_seconds",
                           "Arrival to first scheduled", LatencyBuckets())),
      step_(MakeHistogram(*registry_, "attnres_step_duration_seconds",
                          "Engine step (schedule, forward, sample, emit)", LatencyBuckets())),
      batch_seqs_(MakeHistogram(*registry_, "attnres_batch_size", "Sequences per engine step",
                                PowersOfTwo(1024))),
      batch_tokens_(MakeHistogram(*registry_, "attnres_batch_tokens", "Tokens per engine step",
                                  PowersOfTwo(65536))),
      request_prompt_tokens_(MakeHistogram(*registry_, "attnres_request_prompt_tokens",
                                           "Prompt tokens per request", PowersOfTwo(131072))),
      request_generation_tokens_(MakeHistogram(*registry_, "attnres_request_generation_tokens",
                                               "Generated tokens per request",
                                               PowersOfTwo(131072))) {}

PrometheusMetrics::~PrometheusMetrics() = default;

absl::Status PrometheusMetrics::Serve(const std::string& host, int port) {
  // One worker: scrapes are rare and cheap.
  auto endpoint = HttpServer::Start(host, port, 1, [this](httplib::Server& s) {
    s.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
      res.set_content(Serialize(), "text/plain; version=0.0.4; charset=utf-8");
    });
  });
  if (!endpoint.ok()) {
    return absl::UnavailableError(
        absl::StrCat("cannot serve metrics: ", endpoint.status().message()));
  }
  endpoint_ = std::move(*endpoint);
  return absl::OkStatus();
}

int PrometheusMetrics::port() const { return endpoint_ ? endpoint_->port() : 0; }

std::string PrometheusMetrics::Serialize() const {
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, registry_->Collect());
  return out.str();
}

void PrometheusMetrics::OnStep(const StepStats& s) {
  prompt_tokens_.Increment(s.num_prefill_tokens);
  generation_tokens_.Increment(s.num_generated_tokens);
  prefix_queries_.Increment(s.prefix_query_tokens);
  prefix_hits_.Increment(s.prefix_hit_tokens);
  preemptions_.Increment(s.num_preempted);
  step_.Observe(s.duration_s);
  batch_seqs_.Observe(s.num_seqs);
  batch_tokens_.Observe(s.num_tokens);
}

void PrometheusMetrics::OnState(const EngineState& s) {
  running_.Set(s.num_running);
  waiting_.Set(s.num_waiting);
  kv_pages_used_.Set(static_cast<double>(s.kv_pages_used));
  kv_pages_total_.Set(static_cast<double>(s.kv_pages_total));
  kv_usage_.Set(s.kv_pages_total > 0
                    ? static_cast<double>(s.kv_pages_used) / static_cast<double>(s.kv_pages_total)
                    : 0.0);
  prefix_cached_pages_.Set(static_cast<double>(s.kv_pages_cached));
}

void PrometheusMetrics::OnFirstToken(double ttft_s) { ttft_.Observe(ttft_s); }

void PrometheusMetrics::OnInterTokenLatency(double seconds) { itl_.Observe(seconds); }

void PrometheusMetrics::OnRequestFinished(const RequestStats& r) {
  finished_
      .Add({{"finish_reason", FinishReasonName(r.finish_reason)},
            {"code", absl::StatusCodeToString(r.code)}})
      .Increment();
  e2e_.Observe(r.e2e_s);
  if (r.queue_s >= 0) queue_.Observe(r.queue_s);
  request_prompt_tokens_.Observe(r.prompt_tokens);
  request_generation_tokens_.Observe(r.completion_tokens);
}

void PrometheusMetrics::OnRejected(absl::StatusCode code) {
  rejected_.Add({{"code", absl::StatusCodeToString(code)}}).Increment();
}

}  // namespace attnres
