// PrometheusMetrics: engine statistics become the documented metric names and values in the
// text exposition format, served over HTTP at /metrics.
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "server/metrics/prometheus_metrics.h"

namespace attnres {
namespace {

using ::testing::HasSubstr;

TEST(PrometheusMetricsTest, StatsBecomeNamedMetrics) {
  PrometheusMetrics m;
  StepStats step;
  step.num_seqs = 3;
  step.num_tokens = 40;
  step.num_prefill_tokens = 38;
  step.num_generated_tokens = 2;
  step.prefix_query_tokens = 32;
  step.prefix_hit_tokens = 16;
  step.num_preempted = 1;
  step.duration_s = 0.02;
  m.OnStep(step);
  EngineState state;
  state.num_running = 3;
  state.num_waiting = 2;
  state.kv_pages_used = 25;
  state.kv_pages_total = 100;
  state.kv_pages_cached = 7;
  m.OnState(state);
  m.OnFirstToken(0.05);
  m.OnInterTokenLatency(0.01);
  RequestStats r;
  r.finish_reason = FinishReason::kLength;
  r.prompt_tokens = 32;
  r.completion_tokens = 8;
  r.queue_s = 0.001;
  r.ttft_s = 0.05;
  r.e2e_s = 0.2;
  m.OnRequestFinished(r);
  m.OnRejected(absl::StatusCode::kResourceExhausted);

  const std::string text = m.Serialize();
  EXPECT_THAT(text, HasSubstr("attnres_requests_running 3"));
  EXPECT_THAT(text, HasSubstr("attnres_requests_waiting 2"));
  EXPECT_THAT(text, HasSubstr("attnres_kv_cache_pages_used 25"));
  EXPECT_THAT(text, HasSubstr("attnres_kv_cache_pages_total 100"));
  EXPECT_THAT(text, HasSubstr("attnres_kv_cache_usage_ratio 0.25"));
  EXPECT_THAT(text, HasSubstr("attnres_prefix_cache_hits_total 16"));
  EXPECT_THAT(text, HasSubstr("attnres_prefix_cache_queries_total 32"));
  EXPECT_THAT(text, HasSubstr("attnres_prompt_tokens_total 38"));
  EXPECT_THAT(text, HasSubstr("attnres_generation_tokens_total 2"));
  EXPECT_THAT(text, HasSubstr("attnres_num_preemptions_total 1"));
  EXPECT_THAT(text, HasSubstr("attnres_time_to_first_token_seconds_count 1"));
  EXPECT_THAT(text, HasSubstr("attnres_inter_token_latency_seconds_count 1"));
  EXPECT_THAT(text, HasSubstr("attnres_e2e_request_latency_seconds_count 1"));
  EXPECT_THAT(text, HasSubstr("attnres_request_queue_time_seconds_count 1"));
  EXPECT_THAT(text, HasSubstr("attnres_step_duration_seconds_count 1"));
  EXPECT_THAT(text, HasSubstr("attnres_batch_size_sum 3"));
  EXPECT_THAT(text,
              HasSubstr("attnres_requests_finished_total{code=\"OK\",finish_reason=\"length\"} 1"));
  EXPECT_THAT(text, HasSubstr("attnres_requests_rejected_total{code=\"RESOURCE_EXHAUSTED\"} 1"));
  EXPECT_THAT(text, ::testing::Not(HasSubstr("attnres_:")));
}

TEST(PrometheusMetricsTest, ServeRefusesAPortInUse) {
  PrometheusMetrics a, b;
  ASSERT_TRUE(a.Serve("127.0.0.1", 0).ok());
  ASSERT_GT(a.port(), 0);
  const absl::Status st = b.Serve("127.0.0.1", a.port());
  EXPECT_EQ(st.code(), absl::StatusCode::kUnavailable) << st;
}

TEST(PrometheusMetricsTest, ScrapeOverHttp) {
  PrometheusMetrics m;
  StepStats step;
  step.num_seqs = 2;
  m.OnStep(step);
  ASSERT_TRUE(m.Serve("127.0.0.1", 0).ok());
  httplib::Client client("127.0.0.1", m.port());
  const httplib::Result metrics = client.Get("/metrics");
  ASSERT_TRUE(metrics) << httplib::to_string(metrics.error());
  EXPECT_EQ(metrics->status, 200);
  EXPECT_THAT(metrics->get_header_value("Content-Type"), HasSubstr("text/plain; version=0.0.4"));
  EXPECT_EQ(metrics->body, m.Serialize());
  const httplib::Result other = client.Get("/other");
  ASSERT_TRUE(other);
  EXPECT_EQ(other->status, 404);
}

// The endpoint's thread may not have reached its accept loop when it is destroyed; destruction
// must still stop it (a hang here fails by ctest's timeout).
TEST(PrometheusMetricsTest, ServeThenDestroyAtOnce) {
  for (int i = 0; i < 50; ++i) {
    PrometheusMetrics m;
    ASSERT_TRUE(m.Serve("127.0.0.1", 0).ok());
  }
}

}  // namespace
}  // namespace attnres
