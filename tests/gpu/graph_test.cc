// CUDA graphs of decode steps against the eager path: logits of graph replays (exact buckets and
// padded ones, contexts growing across split-KV counts after capture) against eager steps of
// the same forward, and tokens of a runner with ATTNRES_CUDA_GRAPHS=1 against one without.
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <set>

#include "models/cuda/cuda_forward.h"
#include "models/cuda/cuda_runner.h"
#include "models/cuda/decode_graphs.h"
#include "models/cuda/device_weights.h"
#include "models/cuda/step_upload.h"
#include "tests/gpu/gpu_test_util.h"
#include "tests/test_models.h"

namespace attnres {
namespace {

using gpu_testing::PagedBatch;
using gpu_testing::RelL2;

TEST(DecodeGraphs, ReplaysMatchEagerLogits) {
  ATTNRES_REQUIRE_GPU();
  auto m = testing::LoadCpuModel("tests/data/models/tiny_block");
  const ModelConfig& c = m.config;
  const TensorParallelPlan single = *PlanTensorParallel(c, 1, 0);
  auto weights = cuda::LoadDeviceWeights(c, *m.store, single);
  ASSERT_TRUE(weights.ok()) << weights.status();
  const int ps = 16, per_seq = 16, max_rows = 8, V = c.vocab_size;
  int most_splits = 0;
  for (int n : {4, 5, 3}) {  // exact buckets, and one padded to 8
    SCOPED_TRACE(::testing::Message() << n << " sequences");
    // 5 sequences fork phase 1 onto the side stream at every step (captured as a graph branch);
    // 4 and 3 never do (CudaForward reads the threshold at creation); 3 fold the residual
    // boundaries into the decode Gemvs (ATTNRES_FUSED_BOUNDARY, also read at creation).
    setenv("ATTNRES_FORK_PHASE1", n == 5 ? "1" : "0", 1);
    if (n == 3) setenv("ATTNRES_FUSED_BOUNDARY", "1", 1);
    auto eager_fwd = cuda::CudaForward::Create(single, **weights, nullptr, 256, max_rows);
    auto graph_fwd = cuda::CudaForward::Create(single, **weights, nullptr, 256, max_rows);
    unsetenv("ATTNRES_FORK_PHASE1");
    unsetenv("ATTNRES_FUSED_BOUNDARY");
    ASSERT_TRUE(eager_fwd.ok() && graph_fwd.ok());
    auto eager_pool = cuda::KvPool::Create(c, n * per_seq + 1, ps);
    auto graph_pool = cuda::KvPool::Create(c, n * per_seq + 1, ps);
    ASSERT_TRUE(eager_pool.ok() && graph_pool.ok());
    const int32_t dummy = n * per_seq;
    auto eager_logits = cuda::DeviceAlloc(4ull * max_rows * V);
    auto graph_logits = cuda::DeviceAlloc(4ull * max_rows * V);
    ASSERT_TRUE(eager_logits.ok() && graph_logits.ok());
    float* el = static_cast<float*>(eager_logits->get());
    float* gl = static_cast<float*>(graph_logits->get());
    cudaStream_t stream;
    ASSERT_CUDA(cudaStreamCreate(&stream));
    cuda::StepUpload eager_up, graph_up;
    cuda::DecodeGraphs graphs;
    std::vector<std::vector<int32_t>> ids(n);
    std::vector<int> start(n, 0);
    for (int s = 0; s < n; ++s) {
      for (int i = 0; i < 3 + 2 * s; ++i) ids[s].push_back((97 * s + 31 * i + 5) % V);
    }
    std::vector<float> e_host(size_t(n) * V), g_host(size_t(n) * V);
    double worst = 0;
    int bitwise = 0, steps = 0;
    // One graph per split-KV count of the bucket since the upload's layout last moved.
    std::set<int> splits_seen, all_splits;
    uint64_t generation = ~0ull;
    std::vector<int> logit_rows(n);
    std::iota(logit_rows.begin(), logit_rows.end(), 0);
    for (int step = 0; step < 150; ++step) {
      StepBatch b = PagedBatch(ids, start, ps, per_seq);
      const bool decode = b.num_tokens() == n;
      // Eager: every sequence's last row.
      std::vector<int> rows;
      for (int s = 0; s < n; ++s) rows.push_back(b.query_indptr[s + 1] - 1);
      auto edb = eager_up.Upload(b, rows, {}, c, *eager_pool, stream);
      ASSERT_TRUE(edb.ok()) << edb.status();
      ASSERT_TRUE((*eager_fwd)->Run(*edb, *eager_pool, nullptr, stream).ok());
      ASSERT_TRUE((*eager_fwd)->Head(0, n, el, stream).ok());
      if (!decode) {  // the prefill step runs eagerly on both sides
        auto gdb = graph_up.Upload(b, rows, {}, c, *graph_pool, stream);
        ASSERT_TRUE(gdb.ok()) << gdb.status();
        ASSERT_TRUE((*graph_fwd)->Run(*gdb, *graph_pool, nullptr, stream).ok());
        ASSERT_TRUE((*graph_fwd)->Head(0, n, gl, stream).ok());
      } else {
        const int bucket = cuda::DecodeBucket(n, max_rows);
        std::vector<kernels::SampleParams> samples(n);
        auto gdb = graph_up.UploadDecode(b, samples, bucket, max_rows, dummy, c, *graph_pool,
                                         stream);
        ASSERT_TRUE(gdb.ok()) << gdb.status();
        gdb->attn_splits = (*graph_fwd)->DecodeAttentionSplits(n, gdb->max_context, bucket);
        if (graph_up.layout_generation() != generation) {
          generation = graph_up.layout_generation();
          splits_seen.clear();
        }
        splits_seen.insert(gdb->attn_splits);
        all_splits.insert(gdb->attn_splits);
        const cuda::DeviceBatch db = *gdb;
        auto body = [&](cudaStream_t s) -> absl::Status {
          if (auto st = (*graph_fwd)->Run(db, *graph_pool, nullptr, s); !st.ok()) return st;
          return (*graph_fwd)->Head(0, bucket, gl, s);
        };
        const absl::Status st = graphs.Launch(bucket, db.attn_splits, graph_up.layout_generation(),
                                              body, stream);
        ASSERT_TRUE(st.ok()) << st;
      }
      ASSERT_CUDA(cudaStreamSynchronize(stream));
      ASSERT_CUDA(cudaMemcpy(e_host.data(), el, 4 * e_host.size(), cudaMemcpyDeviceToHost));
      ASSERT_CUDA(cudaMemcpy(g_host.data(), gl, 4 * g_host.size(), cudaMemcpyDeviceToHost));
      for (int s = 0; s < n; ++s) {
        const float* e = &e_host[size_t(s) * V];
        const float* g = &g_host[size_t(s) * V];
        worst = std::max(worst, RelL2(g, e, V));
        bitwise += std::memcmp(e, g, 4ull * V) == 0;
        const int next = static_cast<int>(std::max_element(e, e + V) - e);
        ASSERT_EQ(next, static_cast<int>(std::max_element(g, g + V) - g))
            << "step " << step << " seq " << s;
        start[s] = static_cast<int>(ids[s].size());
        ids[s].push_back(next);
      }
      ++steps;
    }
    std::printf("graphs, %d seqs: %d graphs, %d of %d logit rows bitwise equal, worst rel L2 %.2e\n",
                n, graphs.captured(), bitwise, steps * n, worst);
    EXPECT_EQ(graphs.captured(), static_cast<int>(splits_seen.size()));
    most_splits = std::max(most_splits, static_cast<int>(all_splits.size()));
    if (n == cuda::DecodeBucket(n, max_rows)) {
      EXPECT_EQ(bitwise, steps * n);
    }
    EXPECT_LT(worst, 1e-2);
    cudaStreamDestroy(stream);
  }
  EXPECT_GE(most_splits, 2);  // the split count changed while contexts grew: a recapture
}

std::vector<std::vector<int32_t>> RunnerTokens(bool graphs, int64_t* pages) {
  RunnerOptions o;
  o.cuda_graphs = graphs;
  o.kv_cache_bytes = 64 << 20;
  o.max_num_seqs = 8;
  o.max_num_batched_tokens = 256;
  auto runner = CreateCudaRunner("models/bundled/attnres-tiny-stories", o);
  EXPECT_TRUE(runner.ok()) << runner.status();
  if (!runner.ok()) return {};
  *pages = (*runner)->kv_num_pages();
  const int ps = (*runner)->kv_page_size(), per_seq = 16;
  SamplingParams greedy, hot, topk;
  greedy.temperature = 0.0f;
  hot.temperature = 0.9f;
  hot.seed = 7;
  topk.temperature = 0.8f;
  topk.top_k = 5;
  topk.seed = 11;
  const SamplingParams* params[] = {&greedy, &hot, &greedy, &topk, &greedy};
  std::vector<std::vector<int32_t>> ids = {{0, 410, 1167, 329}, {0, 262, 1110, 11, 612},
                                           {0, 329}, {0, 1110, 410}, {0, 11, 612, 262, 329, 11}};
  std::vector<std::vector<int32_t>> out(ids.size());
  std::vector<int> start(ids.size(), 0);
  for (int step = 0; step < 60; ++step) {
    const size_t live = step < 35 ? 5 : 4;  // bucket 8 (3 padded rows), then exactly 4
    std::vector<std::vector<int32_t>> cur(ids.begin(), ids.begin() + live);
    StepBatch b =
        PagedBatch(cur, std::vector<int>(start.begin(), start.begin() + live), ps, per_seq);
    for (size_t s = 0; s < live; ++s) {
      b.seqs[s].sample = true;
      b.seqs[s].sampling = params[s];
      b.seqs[s].sample_index = out[s].size();
    }
    auto o2 = (*runner)->Execute(b);
    EXPECT_TRUE(o2.ok()) << o2.status();
    if (!o2.ok()) return out;
    for (size_t s = 0; s < live; ++s) {
      start[s] = static_cast<int>(ids[s].size());
      out[s].push_back(o2->seqs[s].token_id);
      ids[s].push_back(o2->seqs[s].token_id);
    }
  }
  return out;
}

TEST(DecodeGraphs, RunnerTokensMatchWithGraphsOff) {
  ATTNRES_REQUIRE_GPU();
  int64_t pages_off = 0, pages_on = 0;
  const auto off = RunnerTokens(false, &pages_off);
  const auto on = RunnerTokens(true, &pages_on);
  EXPECT_EQ(pages_on, pages_off - 1);  // the dummy page is reserved
  ASSERT_EQ(off.size(), on.size());
  int same = 0, total = 0;
  for (size_t s = 0; s < off.size(); ++s) {
    total += static_cast<int>(off[s].size());
    for (size_t i = 0; i < std::min(off[s].size(), on[s].size()) && off[s][i] == on[s][i]; ++i) {
      ++same;
    }
    EXPECT_EQ(off[s], on[s]) << "sequence " << s;
  }
  std::printf("graphs on/off: %d of %d tokens identical\n", same, total);
}

}  // namespace
}  // namespace attnres
