// CpuRunner: forward on the CPU, then sampling and logprobs per sequence on the host.
#include "models/cpu_runner.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "models/cpu_forward.h"
#include "models/safetensors.h"
#include "models/sampler.h"

namespace attnres {
namespace {

constexpr int64_t kDefaultCpuKvBytes = 512ll << 20;

class CpuRunner final : public ModelRunner {
 public:
  CpuRunner(ModelConfig config, CpuWeights weights, int64_t num_pages, int page_size)
      : config_(std::move(config)),
        weights_(std::move(weights)),
        forward_(config_, weights_),
        cache_(config_, num_pages, page_size) {}

  const ModelConfig& config() const override { return config_; }
  const MixLayout& mix_layout() const override { return forward_.mix_layout(); }
  int kv_page_size() const override { return cache_.page_size(); }
  int64_t kv_num_pages() const override { return cache_.num_pages(); }
  int64_t num_parameters() const override { return weights_.num_parameters; }
  std::string device_name() const override { return "cpu"; }
  std::string compute_dtype() const override { return "float32"; }

  absl::StatusOr<StepOutput> Execute(const StepBatch& batch) override;

 private:
  ModelConfig config_;
  CpuWeights weights_;
  CpuForward forward_;
  CpuKvCache cache_;
};

absl::StatusOr<StepOutput> CpuRunner::Execute(const StepBatch& b) {
  // Rows that need logits: every row of a sequence asking for prompt logprobs, else the last row
  // of a sequence that samples.
  std::vector<int> rows;
  std::vector<int> first_row(b.num_seqs(), -1);  // index into rows of the sequence's first row
  bool want_mix = false;
  for (int s = 0; s < b.num_seqs(); ++s) {
    const SequenceBatchEntry& e = b.seqs[s];
    const int begin = b.query_indptr[s], end = b.query_indptr[s + 1];
    if (e.prompt_logprobs >= 0) {
      first_row[s] = static_cast<int>(rows.size());
      for (int r = begin; r < end; ++r) rows.push_back(r);
    } else if (e.sample) {
      first_row[s] = static_cast<int>(rows.size());
      rows.push_back(end - 1);
    }
    want_mix |= e.sample && e.return_mix_weights;
  }
  CpuForwardOutput fwd;
  if (auto st = forward_.Run(b, rows, want_mix, cache_, &fwd); !st.ok()) return st;

  const int V = config_.vocab_size;
  const int W = forward_.mix_layout().total_weights();
  StepOutput out;
  out.seqs.resize(b.num_seqs());
  std::vector<float> work(V);
  for (int s = 0; s < b.num_seqs(); ++s) {
    const SequenceBatchEntry& e = b.seqs[s];
    SequenceStepOutput& o = out.seqs[s];
    if (first_row[s] < 0) continue;
    const int begin = b.query_indptr[s], end = b.query_indptr[s + 1];
    auto row_logits = [&](int r) {
      const int k = first_row[s] + (e.prompt_logprobs >= 0 ? r - begin : 0);
      return std::span<const float>(fwd.logits.data() + static_cast<size_t>(k) * V, V);
    };
    if (e.prompt_logprobs >= 0) {
      for (int r = begin; r < end; ++r) {
        const int32_t target = r + 1 < end ? b.token_ids[r + 1] : e.next_prompt_token;
        if (target < 0) break;
        o.prompt_logprobs.push_back(ComputeLogprob(row_logits(r), target, e.prompt_logprobs));
      }
    }
    if (!e.sample) continue;
    const std::span<const float> raw = row_logits(end - 1);
    std::copy(raw.begin(), raw.end(), work.begin());
    if (e.sampling->has_penalties() && e.history) {
      ApplyPenalties(*e.sampling, *e.history, e.prompt_len, work);
    }
    o.token_id = SampleToken(*e.sampling, e.sample_index, work);
    if (e.logprobs >= 0) o.logprob = ComputeLogprob(raw, o.token_id, e.logprobs);
    if (e.return_mix_weights && W > 0) {
      const int k = first_row[s] + (e.prompt_logprobs >= 0 ? end - 1 - begin : 0);
      o.mix_weights.assign(fwd.mix_weights.begin() + static_cast<size_t>(k) * W,
                           fwd.mix_weights.begin() + static_cast<size_t>(k + 1) * W);
    }
  }
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
  return std::make_unique<CpuRunner>(std::move(*config), std::move(*weights), num_pages,
                                     options.kv_page_size);
}

}  // namespace attnres
