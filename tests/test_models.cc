// Test helpers for model-level tests.
#include "tests/test_models.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>

#include "gtest/gtest.h"

namespace attnres::testing {

std::filesystem::path TempDir(const std::string& name) {
  const char* base = std::getenv("TEST_TMPDIR");
  std::filesystem::path dir = std::filesystem::path(base ? base : "/tmp") /
                              ("attnres_test_" + std::to_string(::getpid())) / name;
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

std::filesystem::path MakeModel(const std::string& name, const ModelConfig& config,
                                const RandomModelOptions& options) {
  auto dir = TempDir(name);
  auto st = WriteRandomModel(config, options, dir);
  EXPECT_TRUE(st.ok()) << st;
  return dir;
}

LoadedCpuModel LoadCpuModel(const std::filesystem::path& dir) {
  LoadedCpuModel m;
  auto config = LoadModelConfig(dir);
  EXPECT_TRUE(config.ok()) << config.status();
  m.config = *config;
  auto store = SafetensorsStore::Open(dir);
  EXPECT_TRUE(store.ok()) << store.status();
  m.store = std::move(*store);
  auto weights = LoadCpuWeights(m.config, *m.store);
  EXPECT_TRUE(weights.ok()) << weights.status();
  m.weights = std::move(*weights);
  return m;
}

std::vector<std::vector<float>> AllLogits(const LoadedCpuModel& model,
                                          const std::vector<int32_t>& ids, std::vector<int> chunks,
                                          int page_size, std::vector<float>* mix_weights,
                                          Communicator* comm, int seq_shard_min_tokens) {
  const int n = static_cast<int>(ids.size());
  if (chunks.empty()) chunks = {n};
  const int num_pages = (n + page_size - 1) / page_size;
  // Pages in a scrambled order, offset into a larger pool, so the page table really matters.
  std::vector<int32_t> pages(num_pages);
  std::iota(pages.begin(), pages.end(), 3);
  std::shuffle(pages.begin(), pages.end(), std::mt19937(1234));
  CpuKvCache cache(model.config, num_pages + 3, page_size);
  CpuForward forward(model.config, model.weights, comm);
  forward.set_sequence_shard_min_tokens(seq_shard_min_tokens);
  std::vector<std::vector<float>> logits;
  int start = 0;
  for (int chunk : chunks) {
    StepBatch b;
    for (int p = start; p < start + chunk; ++p) {
      b.token_ids.push_back(ids[p]);
      b.positions.push_back(p);
    }
    b.query_indptr = {0, chunk};
    const int end = start + chunk, used = (end + page_size - 1) / page_size;
    b.kv_page_indices.assign(pages.begin(), pages.begin() + used);
    b.kv_page_indptr = {0, used};
    b.kv_last_page_len = {end - (used - 1) * page_size};
    b.seqs.resize(1);
    b.seqs[0].num_new_tokens = chunk;
    b.seqs[0].start_pos = start;
    std::vector<int> rows(chunk);
    std::iota(rows.begin(), rows.end(), 0);
    CpuForwardOutput out;
    const bool want_mix = mix_weights && end == n;
    auto st = forward.Run(b, rows, want_mix, cache, &out);
    EXPECT_TRUE(st.ok()) << st;
    const int V = model.config.vocab_size;
    for (int r = 0; r < chunk; ++r) {
      logits.emplace_back(out.logits.begin() + static_cast<size_t>(r) * V,
                          out.logits.begin() + static_cast<size_t>(r + 1) * V);
    }
    if (want_mix) {
      const int W = forward.mix_layout().total_weights();
      mix_weights->assign(out.mix_weights.end() - W, out.mix_weights.end());
    }
    start = end;
  }
  return logits;
}

double RelL2(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    num += (static_cast<double>(a[i]) - b[i]) * (static_cast<double>(a[i]) - b[i]);
    den += static_cast<double>(b[i]) * b[i];
  }
  return std::sqrt(num / std::max(den, 1e-300));
}

}  // namespace attnres::testing
