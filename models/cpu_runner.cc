// CpuRunner: forward on the CPU, then sampling and logprobs per sequence on the host.
#include "models/cpu_runner.h"

#include <algorithm>

#include <omp.h>

#include "absl/strings/str_cat.h"
#include "models/cpu_forward.h"
#include "models/host_sampler.h"
#include "models/parallel/communicator.h"
#include "models/parallel/rank_workers.h"
#include "models/parallel/tensor_parallel.h"
#include "models/safetensors.h"

namespace attnres {
namespace {

constexpr int64_t kDefaultCpuKvBytes = 512ll << 20;

// One tensor-parallel rank: its config (local shapes), weight slices, forward pass and KV pages.
// A single-device runner is one rank with the whole model and no communicator.
struct CpuRank {
  CpuRank(const ModelConfig& local_config, CpuWeights w, std::unique_ptr<Communicator> c,
          int64_t num_pages, int page_size)
      : config(local_config),
        weights(std::move(w)),
        comm(std::move(c)),
        forward(config, weights, comm.get()),
        cache(config, num_pages, page_size) {}
  ModelConfig config;
  CpuWeights weights;
  std::unique_ptr<Communicator> comm;
  CpuForward forward;
  CpuKvCache cache;
};

class CpuRunner final : public ModelRunner {
 public:
  CpuRunner(ModelConfig config, std::vector<std::unique_ptr<CpuRank>> ranks, int64_t params)
      : config_(std::move(config)),
        ranks_(std::move(ranks)),
        workers_(static_cast<int>(ranks_.size())),
        num_parameters_(params) {}

  const ModelConfig& config() const override { return config_; }
  const MixLayout& mix_layout() const override { return ranks_[0]->forward.mix_layout(); }
  int kv_page_size() const override { return ranks_[0]->cache.page_size(); }
  int64_t kv_num_pages() const override { return ranks_[0]->cache.num_pages(); }
  int64_t num_parameters() const override { return num_parameters_; }
  std::string device_name() const override {
    return ranks_.size() == 1 ? "cpu" : absl::StrCat("cpu (tensor parallel ", ranks_.size(), ")");
  }
  std::string compute_dtype() const override { return "float32"; }

  absl::StatusOr<StepOutput> Execute(const StepBatch& batch) override;

 private:
  // Runs the forward pass on every rank (ranks > 0 on their persistent threads); rank 0's output
  // holds the gathered logits.
  absl::Status Forward(const StepBatch& b, const std::vector<int>& rows, bool want_mix,
                       CpuForwardOutput* out);

  ModelConfig config_;
  std::vector<std::unique_ptr<CpuRank>> ranks_;
  RankWorkers workers_;  // one per rank; its threads keep their OpenMP teams between steps
  int64_t num_parameters_;
};

absl::Status CpuRunner::Forward(const StepBatch& b, const std::vector<int>& rows, bool want_mix,
                                CpuForwardOutput* out) {
  std::vector<CpuForwardOutput> others(ranks_.size());
  // Ranks share the cores: each gets its share of OpenMP threads for its matmuls.
  const int omp_threads = std::max(1, omp_get_num_procs() / static_cast<int>(ranks_.size()));
  return workers_.Run([&](int r) {
    if (ranks_.size() > 1) omp_set_num_threads(omp_threads);
    return ranks_[r]->forward.Run(b, rows, want_mix, ranks_[r]->cache, r == 0 ? out : &others[r]);
  });
}

absl::StatusOr<StepOutput> CpuRunner::Execute(const StepBatch& b) {
  const LogitRows plan = LogitRows::For(b);
  CpuForwardOutput fwd;
  if (auto st = Forward(b, plan.rows, plan.want_mix_weights, &fwd); !st.ok()) return st;
  StepOutput out;
  SampleOnHost(b, plan, fwd.logits, config_.vocab_size, fwd.mix_weights,
               mix_layout().total_weights(), &out);
  return out;
}

}  // namespace

absl::StatusOr<std::unique_ptr<ModelRunner>> CreateCpuRunner(const std::filesystem::path& dir,
                                                             const RunnerOptions& options) {
  auto config = LoadModelConfig(dir);
  if (!config.ok()) return config.status();
  auto store = SafetensorsStore::Open(dir);
  if (!store.ok()) return store.status();
  auto weights = LoadCpuWeights(*config, **store);
  if (!weights.ok()) return weights.status();
  if (options.kv_page_size < 1 || options.kv_page_size > 1024) {
    return absl::InvalidArgumentError(
        absl::StrCat("kv_page_size must be in [1, 1024], got ", options.kv_page_size));
  }
  const int64_t bytes = options.kv_cache_bytes > 0 ? options.kv_cache_bytes : kDefaultCpuKvBytes;
  const int64_t num_pages = bytes / CpuKvCache::BytesPerPage(*config, options.kv_page_size);
  if (num_pages < 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        "kv_cache_bytes=", bytes, " holds no KV page of ",
        CpuKvCache::BytesPerPage(*config, options.kv_page_size), " bytes"));
  }
  const int world = options.tensor_parallel;
  if (world < 1) {
    return absl::InvalidArgumentError(absl::StrCat("tensor_parallel must be >= 1, got ", world));
  }
  std::vector<std::unique_ptr<CpuRank>> ranks;
  if (world == 1) {
    ranks.push_back(std::make_unique<CpuRank>(*config, std::move(*weights), nullptr, num_pages,
                                              options.kv_page_size));
  } else {
    // Each rank holds 1/world of the KV heads, so the same bytes give the same page count.
    auto comms = CreateThreadCommunicators(world);
    for (int r = 0; r < world; ++r) {
      auto plan = PlanTensorParallel(*config, world, r);
      if (!plan.ok()) return plan.status();
      ranks.push_back(std::make_unique<CpuRank>(plan->local, ShardCpuWeights(*weights, *config, *plan),
                                                std::move(comms[r]), num_pages,
                                                options.kv_page_size));
    }
  }
  const int64_t params = ranks[0]->weights.num_parameters;
  return std::make_unique<CpuRunner>(std::move(*config), std::move(ranks), params);
}

}  // namespace attnres
