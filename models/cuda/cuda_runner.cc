// CudaRunner: upload -> forward -> head -> sample -> one copy back, per step. With
// ATTNRES_CUDA_GRAPHS=1, pure-decode steps replay a CUDA graph of forward + head per batch bucket
// (padded rows write K/V into a reserved dummy page, the pool's last; their logits are ignored).
#include "models/cuda/cuda_runner.h"

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_format.h"
#include "models/cuda/cuda_forward.h"
#include "models/cuda/decode_graphs.h"
#include "models/cuda/device_weights.h"
#include "models/cuda/step_upload.h"
#include "models/host_sampler.h"

namespace attnres {
namespace {

using cuda::DevicePtr;

class CudaRunner final : public ModelRunner {
 public:
  static absl::StatusOr<std::unique_ptr<ModelRunner>> Create(
      ModelConfig config, std::unique_ptr<cuda::DeviceWeights> weights,
      const RunnerOptions& options, double load_seconds);

  const ModelConfig& config() const override { return config_; }
  const MixLayout& mix_layout() const override { return forward_->mix_layout(); }
  int kv_page_size() const override { return pool_.page_size; }
  int64_t kv_num_pages() const override { return pool_.num_pages - (graphs_ ? 1 : 0); }
  int64_t num_parameters() const override { return weights_->num_parameters; }
  std::string device_name() const override { return device_name_; }
  std::string compute_dtype() const override { return "bfloat16"; }
  absl::StatusOr<StepOutput> Execute(const StepBatch& batch) override;

 private:
  absl::Status HostSample(const StepBatch& b, const LogitRows& plan, StepOutput* out);

  ModelConfig config_;
  std::unique_ptr<cuda::DeviceWeights> weights_;
  std::unique_ptr<cuda::CudaForward> forward_;
  cuda::KvPool pool_;
  cuda::StepUpload upload_;
  std::unique_ptr<cuda::DecodeGraphs> graphs_;  // null: graphs off
  int graph_rows_ = 0;                          // the largest decode bucket
  cudaStream_t stream_ = nullptr;
  std::string device_name_;
  int max_rows_ = 0;
  // [max_rows, V] logits, their sorted copy and ids, sort temp, mix weights, sampled tokens.
  DevicePtr logits_, sorted_logits_, sorted_ids_, sort_temp_, row_offsets_, mix_, tokens_;
  size_t sort_temp_bytes_ = 0;
  cuda::PinnedPtr host_tokens_;
};

absl::StatusOr<std::unique_ptr<ModelRunner>> CudaRunner::Create(
    ModelConfig config, std::unique_ptr<cuda::DeviceWeights> weights,
    const RunnerOptions& o, double load_seconds) {
  std::unique_ptr<CudaRunner> r(new CudaRunner());
  r->config_ = std::move(config);
  r->weights_ = std::move(weights);
  const ModelConfig& c = r->config_;
  ATTNRES_CUDA_RETURN(cudaStreamCreateWithFlags(&r->stream_, cudaStreamNonBlocking));
  r->max_rows_ = std::max(1, o.max_num_seqs);
  auto fwd = cuda::CudaForward::Create(c, *r->weights_, o.max_num_batched_tokens, r->max_rows_);
  if (!fwd.ok()) return fwd.status();
  r->forward_ = std::move(*fwd);
  const size_t V = c.vocab_size, R = r->max_rows_;
  r->sort_temp_bytes_ = kernels::SortRowsTempBytes(r->max_rows_, c.vocab_size);
  const size_t W = std::max(1, r->forward_->mix_layout().total_weights());
  for (auto [ptr, bytes] : {std::pair{&r->logits_, R * V * 4}, {&r->sorted_logits_, R * V * 4},
                            {&r->sorted_ids_, R * V * 4}, {&r->sort_temp_, r->sort_temp_bytes_},
                            {&r->row_offsets_, (R + 1) * 4},
                            {&r->mix_, o.max_num_batched_tokens * W * 4}, {&r->tokens_, R * 4}}) {
    auto m = cuda::DeviceAlloc(bytes);
    if (!m.ok()) return m.status();
    *ptr = std::move(*m);
  }
  std::vector<int32_t> offsets(R + 1);
  for (size_t i = 0; i <= R; ++i) offsets[i] = static_cast<int32_t>(i * V);
  ATTNRES_CUDA_RETURN(cudaMemcpy(r->row_offsets_.get(), offsets.data(), 4 * offsets.size(),
                                 cudaMemcpyHostToDevice));
  auto pinned = cuda::PinnedAlloc(R * 4);
  if (!pinned.ok()) return pinned.status();
  r->host_tokens_ = std::move(*pinned);

  if (o.kv_page_size < 1 || o.kv_page_size > 1024) {
    return absl::InvalidArgumentError(
        absl::StrCat("kv_page_size must be in [1, 1024], got ", o.kv_page_size));
  }
  size_t free_bytes = 0, total_bytes = 0;
  ATTNRES_CUDA_RETURN(cudaMemGetInfo(&free_bytes, &total_bytes));
  const int64_t kv_bytes = o.kv_cache_bytes > 0
                               ? o.kv_cache_bytes
                               : static_cast<int64_t>(free_bytes * o.kv_cache_memory_fraction);
  const int64_t pages = kv_bytes / cuda::KvPool::BytesPerPage(c, o.kv_page_size);
  if (pages < 1) return absl::ResourceExhaustedError("no GPU memory left for one KV page");
  auto pool = cuda::KvPool::Create(c, pages, o.kv_page_size);
  if (!pool.ok()) return pool.status();
  r->pool_ = std::move(*pool);
  const char* graphs = std::getenv("ATTNRES_CUDA_GRAPHS");
  if (graphs && std::strcmp(graphs, "1") == 0 && pages >= 2) {
    r->graphs_ = std::make_unique<cuda::DecodeGraphs>();
    r->graph_rows_ = std::min({256, r->max_rows_, o.max_num_batched_tokens});
  }
  cudaDeviceProp prop;
  ATTNRES_CUDA_RETURN(cudaGetDeviceProperties(&prop, 0));
  r->device_name_ = absl::StrFormat("cuda:0 (%s)", prop.name);
  std::fprintf(stderr,
               "attnres cuda: %s, weights %.2f GB bf16 (%lld params) loaded in %.2f s, "
               "workspace %.2f GB, KV pool %lld pages of %d tokens (%.2f GB)\n",
               prop.name, r->weights_->bytes / 1e9,
               static_cast<long long>(r->weights_->num_parameters), load_seconds,
               r->forward_->workspace_bytes() / 1e9, static_cast<long long>(pages),
               o.kv_page_size, pages * cuda::KvPool::BytesPerPage(c, o.kv_page_size) / 1e9);
  return std::unique_ptr<ModelRunner>(std::move(r));
}

absl::StatusOr<StepOutput> CudaRunner::Execute(const StepBatch& b) {
  // Logit rows as in CpuRunner; the GPU sampler handles a batch when nothing asks for prompt
  // logprobs, logprobs, penalties or mix weights.
  const LogitRows plan = LogitRows::For(b);
  const std::vector<int>& rows = plan.rows;
  const bool want_mix = plan.want_mix_weights;
  bool host_path = want_mix;
  std::vector<kernels::SampleParams> samples;
  for (const SequenceBatchEntry& e : b.seqs) {
    if (e.prompt_logprobs >= 0) {
      host_path = true;
    } else if (e.sample) {
      const SamplingParams& p = *e.sampling;
      samples.push_back({p.temperature, p.top_k, p.top_p, p.min_p, p.seed, e.sample_index});
      host_path |= e.logprobs >= 0 || (p.has_penalties() && e.history);
    }
  }
  if (host_path) samples.clear();
  const int R = static_cast<int>(rows.size()), V = config_.vocab_size, n = b.num_seqs();
  const int bucket = graphs_ && !host_path && R == n && b.num_tokens() == n
                         ? cuda::DecodeBucket(n, graph_rows_)
                         : 0;
  float* logits = static_cast<float*>(logits_.get());
  StepOutput out;
  out.seqs.resize(n);
  if (bucket > 0) {  // pure decode: replay (or capture) the bucket's graph of forward + head
    auto db = upload_.UploadDecode(b, samples, bucket, graph_rows_,
                                   static_cast<int32_t>(pool_.num_pages - 1), config_, pool_,
                                   stream_);
    if (!db.ok()) return db.status();
    db->attn_splits = forward_->DecodeAttentionSplits(n, db->max_context, bucket);
    const cuda::DeviceBatch batch = *db;
    auto body = [&](cudaStream_t s) -> absl::Status {
      if (auto st = forward_->Run(batch, pool_, nullptr, s); !st.ok()) return st;
      return forward_->Head(0, bucket, logits, s);
    };
    if (auto st = graphs_->Launch(bucket, batch.attn_splits, upload_.layout_generation(), body,
                                  stream_);
        !st.ok()) {
      return st;
    }
  } else {
    auto db = upload_.Upload(b, rows, samples, config_, pool_, stream_);
    if (!db.ok()) return db.status();
    float* mix = want_mix ? static_cast<float*>(mix_.get()) : nullptr;
    if (auto st = forward_->Run(*db, pool_, mix, stream_); !st.ok()) return st;
    if (host_path) {
      if (auto st = HostSample(b, plan, &out); !st.ok()) return st;
      return out;
    }
    if (R == 0) {
      ATTNRES_CUDA_RETURN(cudaStreamSynchronize(stream_));
      return out;
    }
    if (auto st = forward_->Head(0, R, logits, stream_); !st.ok()) return st;
  }
  bool sort = false;
  for (const auto& p : samples) sort |= kernels::NeedsSortedLogits(p, V);
  if (sort) {
    ATTNRES_CUDA_RETURN(kernels::SortRowsDescending(
        logits, R, V, static_cast<int32_t*>(row_offsets_.get()),
        static_cast<float*>(sorted_logits_.get()), static_cast<int32_t*>(sorted_ids_.get()),
        sort_temp_.get(), sort_temp_bytes_, stream_));
  }
  ATTNRES_CUDA_RETURN(kernels::SampleRows(
      logits, static_cast<float*>(sorted_logits_.get()), static_cast<int32_t*>(sorted_ids_.get()),
      upload_.device_samples(), R, V, static_cast<int32_t*>(tokens_.get()), stream_));
  ATTNRES_CUDA_RETURN(cudaMemcpyAsync(host_tokens_.get(), tokens_.get(), 4 * R,
                                      cudaMemcpyDeviceToHost, stream_));
  ATTNRES_CUDA_RETURN(cudaStreamSynchronize(stream_));
  const int32_t* tokens = static_cast<const int32_t*>(host_tokens_.get());
  for (int s = 0; s < b.num_seqs(); ++s) {
    if (plan.first_row[s] >= 0) out.seqs[s].token_id = tokens[plan.first_row[s]];
  }
  return out;
}

// The rare features: logits of the logit rows come back in chunks and the host sampler runs.
absl::Status CudaRunner::HostSample(const StepBatch& b, const LogitRows& plan, StepOutput* out) {
  const int R = static_cast<int>(plan.rows.size()), V = config_.vocab_size;
  const int W = forward_->mix_layout().total_weights();
  std::vector<float> logits(static_cast<size_t>(R) * V), mix;
  for (int first = 0; first < R; first += max_rows_) {
    const int n = std::min(max_rows_, R - first);
    if (auto st = forward_->Head(first, n, static_cast<float*>(logits_.get()), stream_); !st.ok()) {
      return st;
    }
    ATTNRES_CUDA_RETURN(cudaMemcpyAsync(logits.data() + static_cast<size_t>(first) * V,
                                        logits_.get(), sizeof(float) * n * V,
                                        cudaMemcpyDeviceToHost, stream_));
  }
  if (plan.want_mix_weights && W > 0) {
    mix.resize(static_cast<size_t>(R) * W);
    ATTNRES_CUDA_RETURN(cudaMemcpyAsync(mix.data(), mix_.get(), sizeof(float) * mix.size(),
                                        cudaMemcpyDeviceToHost, stream_));
  }
  ATTNRES_CUDA_RETURN(cudaStreamSynchronize(stream_));
  SampleOnHost(b, plan, logits, V, mix, W, out);
  return absl::OkStatus();
}

}  // namespace

bool CudaDeviceAvailable() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}

absl::StatusOr<std::unique_ptr<ModelRunner>> CreateCudaRunner(const std::filesystem::path& dir,
                                                              const RunnerOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  auto config = LoadModelConfig(dir);
  if (!config.ok()) return config.status();
  auto store = SafetensorsStore::Open(dir);
  if (!store.ok()) return store.status();
  auto weights = cuda::LoadDeviceWeights(*config, **store);
  if (!weights.ok()) return weights.status();
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return CudaRunner::Create(std::move(*config), std::move(*weights), options, secs);
}

absl::StatusOr<std::unique_ptr<ModelRunner>> CreateRandomCudaRunner(const ModelConfig& config,
                                                                    uint64_t seed,
                                                                    const RunnerOptions& options) {
  const auto start = std::chrono::steady_clock::now();
  auto weights = cuda::RandomDeviceWeights(config, seed);
  if (!weights.ok()) return weights.status();
  const double secs =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return CudaRunner::Create(config, std::move(*weights), options, secs);
}

}  // namespace attnres
