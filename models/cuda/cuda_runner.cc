// CudaRunner: tensor-parallel ranks, one GPU each (GPUs 0..N-1; one GPU is rank 0 of 1 and takes
// the same path with a 1-rank NCCL communicator, whose collectives CudaForward skips). Per step the
// engine thread plans the step once; then every rank, on its own thread (RankWorkers: rank 0 on
// the engine thread) and stream, uploads the batch to its device, runs the forward pass and the
// head with NCCL collectives between the ranks; rank 0 samples and copies the tokens back. Unless
// RunnerOptions::cuda_graphs is off, pure-decode steps replay a CUDA graph of forward + head per batch
// bucket on every rank (the NCCL calls are captured too; padded rows write K/V into a reserved
// dummy page, the pool's last; their logits are ignored).
#include "models/cuda/cuda_runner.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <numeric>

#include "absl/strings/str_format.h"
#include "kernels/env_switch.h"
#include "models/cuda/cuda_forward.h"
#include "models/cuda/decode_graphs.h"
#include "models/cuda/device_weights.h"
#include "models/cuda/edit_upload.h"
#include "models/cuda/prompt_logprobs.h"
#include "models/cuda/step_upload.h"
#include "models/host_sampler.h"
#include "models/logit_edits.h"
#include "models/parallel/nccl_communicator.h"
#include "models/parallel/rank_workers.h"
#include "models/parallel/tensor_parallel.h"

namespace attnres {
namespace {

using cuda::DevicePtr;
using Clock = std::chrono::steady_clock;
using WeightLoader = std::function<absl::StatusOr<std::unique_ptr<cuda::DeviceWeights>>(
    const TensorParallelPlan&)>;

// Rank 0's sampling buffers, on its device.
struct SamplerBuffers {
  // head: [3, max_rows, V] 4-byte values, the logits, their sorted copy and sorted ids
  // (a prompt's logprob chunks take it whole as [3 * max_rows, V] logits: CudaRunner's
  // prompt_rows_); sort temp, the wide sampler's temp, row offsets [max_rows + 1], and the
  // results: sampled tokens [max_rows], at logprobs_at LogprobOut [max_rows], at mix_at the mix
  // weights [max_tokens, total_weights] (what a step copies back is one prefix of them).
  DevicePtr head, sort_temp, sample_temp, row_offsets, results;
  float* logits = nullptr;         // head[0]
  float* sorted_logits = nullptr;  // head[1]
  int32_t* sorted_ids = nullptr;   // head[2]
  size_t sort_temp_bytes = 0, sample_temp_bytes = 0, logprobs_at = 0, mix_at = 0;
  cuda::PinnedPtr host_results;  // the results' layout, up to max_rows rows of mix weights
  cuda::EditUpload edits;        // the step's logit edits and logprob rows
  cuda::PromptLogprobs prompt;   // prompt logprobs, per chunk of rows
};

// One GPU: its shard of the weights, forward pass, KV pages (its KV heads), upload buffers,
// stream, decode graphs, and on rank 0 the sampler's buffers. Destroyed on its own device.
struct CudaRank {
  ~CudaRank() {
    cudaSetDevice(device);
    graphs.reset();
    if (stream) cudaStreamDestroy(stream);
  }
  int device = 0;
  TensorParallelPlan plan;
  std::unique_ptr<NcclCommunicator> comm;
  std::unique_ptr<cuda::DeviceWeights> weights;
  std::unique_ptr<cuda::CudaForward> forward;
  cuda::KvPool pool;
  cuda::StepUpload upload;
  std::unique_ptr<cuda::DecodeGraphs> graphs;  // null: graphs off
  std::unique_ptr<SamplerBuffers> sampler;     // rank 0 only
  cudaStream_t stream = nullptr;
  int64_t kv_pages_fit = 0;  // what free memory holds after everything else (creation only)
};

// A row of the device path that predicts a prompt token (rows.rows[sample_rows + j] for the
// plan's prompt[j]).
struct PromptRow {
  int seq = 0;
  cuda::PromptLogprobs::Row row;
};

// What the engine thread decides once per step, for every rank.
struct StepPlan {
  // The host path's rows are LogitRows::For's; the device path's are the sampled rows (one per
  // sampling sequence, in the order of `samples`), then the prompt rows.
  LogitRows rows;
  int sample_rows = 0;
  std::vector<PromptRow> prompt;
  std::vector<kernels::SampleParams> samples;  // rows the GPU sampler draws; empty: host path
  LogitEditPlan edits;     // their penalties, bias, suppressed ids, masks and logprob rows
  bool host_path = false;  // over 20 alternatives (or with ATTNRES_GPU_EDITS=0, any extras)
  int bucket = 0;          // > 0: a pure decode step, replayed as the graph of this many rows
};

// The device path's rows (see StepPlan) where sequences ask for prompt logprobs; false where a
// sampled row would also predict a prompt token (a row has one place in the list: host path).
bool PlanDeviceRows(const StepBatch& b, StepPlan* p) {
  LogitRows& rows = p->rows;
  rows = LogitRows{};
  rows.first_row.assign(b.num_seqs(), -1);
  for (int s = 0; s < b.num_seqs(); ++s) {
    const SequenceBatchEntry& e = b.seqs[s];
    if (!e.sample) continue;
    rows.first_row[s] = static_cast<int>(rows.rows.size());
    rows.rows.push_back(b.query_indptr[s + 1] - 1);
    rows.want_mix_weights |= e.return_mix_weights;
  }
  p->sample_rows = static_cast<int>(rows.rows.size());
  for (int s = 0; s < b.num_seqs(); ++s) {
    const SequenceBatchEntry& e = b.seqs[s];
    if (e.prompt_logprobs < 0) continue;
    const int begin = b.query_indptr[s], end = b.query_indptr[s + 1];
    for (int r = begin; r < end; ++r) {
      const int32_t target = r + 1 < end ? b.token_ids[r + 1] : e.next_prompt_token;
      if (target < 0) break;
      if (e.sample && r == end - 1) return false;
      p->prompt.push_back({s, {target, e.prompt_logprobs}});
      rows.rows.push_back(r);
    }
  }
  return true;
}

// A logprob the device returned, as the API's.
TokenLogprob FromDevice(const kernels::LogprobOut& lo, int top_n, int V) {
  TokenLogprob t;
  t.token_id = lo.token;
  t.logprob = lo.logprob;
  for (int i = 0; i < std::min(top_n, V); ++i) t.top.emplace_back(lo.ids[i], lo.logprobs[i]);
  return t;
}

class CudaRunner final : public ModelRunner {
 public:
  static absl::StatusOr<std::unique_ptr<ModelRunner>> Create(ModelConfig config,
                                                             const WeightLoader& load,
                                                             const RunnerOptions& options,
                                                             Clock::time_point start);

  const ModelConfig& config() const override { return config_; }
  const MixLayout& mix_layout() const override { return rank0().forward->mix_layout(); }
  int kv_page_size() const override { return rank0().pool.page_size; }
  int64_t kv_num_pages() const override {
    return rank0().pool.num_pages - (rank0().graphs ? 1 : 0);
  }
  int64_t num_parameters() const override { return rank0().weights->num_parameters; }
  std::string device_name() const override { return device_name_; }
  std::string compute_dtype() const override { return "bfloat16"; }
  absl::StatusOr<StepOutput> Execute(const StepBatch& batch) override;

 private:
  const CudaRank& rank0() const { return *ranks_[0]; }
  int world() const { return static_cast<int>(ranks_.size()); }
  absl::Status InitRank(int r, const WeightLoader& load, const RunnerOptions& o);
  absl::Status InitSampler(CudaRank& k, const RunnerOptions& o);
  absl::Status InitPool(int r, int64_t pages, int page_size, bool graphs);
  void LogLayout(double load_seconds) const;
  StepPlan PlanStep(const StepBatch& b);
  absl::Status RankStep(int r, const StepBatch& b, const StepPlan& p, StepOutput* out);
  absl::Status GpuSample(CudaRank& k, const StepBatch& b, const StepPlan& p, StepOutput* out);
  absl::Status DevicePromptLogprobs(int r, const StepBatch& b, const StepPlan& p, StepOutput* out);
  absl::Status HeadToHost(int r, const StepBatch& b, const StepPlan& p, StepOutput* out);

  ModelConfig config_;  // the whole model's
  std::vector<std::unique_ptr<CudaRank>> ranks_;
  std::unique_ptr<RankWorkers> workers_;  // after ranks_: its threads stop before ranks go
  std::string device_name_;
  int max_rows_ = 0;    // logit rows per head call
  // Logit rows per head call of a prompt's logprobs: the sampler's whole head buffer on one
  // device (3 x max_rows_: fewer reads of the head's weights), max_rows_ with tensor parallelism
  // (whose head gathers ranks' logits in a buffer of the forward's).
  int prompt_rows_ = 0;
  int graph_rows_ = 0;  // the largest decode bucket
  // The engine thread's (PlanStep); null: edits, logprobs and mix weights take the host path
  // (ATTNRES_GPU_EDITS=0, to measure what the device path buys).
  std::unique_ptr<LogitEditPlanner> edit_planner_;
  // Logprob rows cut into chunks over many blocks (the default since run 30: 1B b1 steps with
  // logprobs 26% faster), else one block per row (ATTNRES_LOGPROB_CHUNKS=0).
  bool logprob_chunks_ = true;
};

absl::StatusOr<std::unique_ptr<ModelRunner>> CudaRunner::Create(ModelConfig config,
                                                                const WeightLoader& load,
                                                                const RunnerOptions& o,
                                                                Clock::time_point start) {
  const int world = o.tensor_parallel;
  if (world < 1) {
    return absl::InvalidArgumentError(absl::StrCat("--tensor-parallel must be >= 1, got ", world));
  }
  if (o.kv_page_size < 1 || o.kv_page_size > 1024) {
    return absl::InvalidArgumentError(
        absl::StrCat("kv_page_size must be in [1, 1024], got ", o.kv_page_size));
  }
  std::unique_ptr<CudaRunner> r(new CudaRunner());
  for (int k = 0; k < world; ++k) {
    auto plan = PlanTensorParallel(config, world, k);  // names the config key it must divide
    if (!plan.ok()) return plan.status();
    r->ranks_.push_back(std::make_unique<CudaRank>());
    r->ranks_[k]->device = k;
    r->ranks_[k]->plan = std::move(*plan);
  }
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess) devices = 0;
  if (devices < world) {
    return absl::InvalidArgumentError(absl::StrCat("--tensor-parallel ", world, " needs ", world,
                                                   " CUDA devices, found ", devices));
  }
  std::vector<int> ids(world);
  std::iota(ids.begin(), ids.end(), 0);
  auto comms = NcclCommunicator::CreateAll(ids);
  if (!comms.ok()) return comms.status();
  for (int k = 0; k < world; ++k) r->ranks_[k]->comm = std::move((*comms)[k]);
  r->config_ = std::move(config);
  r->max_rows_ = std::max(1, o.max_num_seqs);
  r->prompt_rows_ = world == 1 ? 3 * r->max_rows_ : r->max_rows_;
  r->workers_ = std::make_unique<RankWorkers>(world);
  // Every device at once: weights, forward pass, sampler buffers, then what KV room is left.
  if (auto st = r->workers_->Run([&](int k) { return r->InitRank(k, load, o); }); !st.ok()) {
    return st;
  }
  // The engine hands out one page table for every rank: equal page counts, the smallest fit.
  // kv_cache_bytes is the total over the ranks (each holds 1/world of the KV heads).
  int64_t pages = o.kv_cache_bytes / cuda::KvPool::BytesPerPage(r->config_, o.kv_page_size);
  if (o.kv_cache_bytes <= 0) {
    pages = r->ranks_[0]->kv_pages_fit;
    for (const auto& k : r->ranks_) pages = std::min(pages, k->kv_pages_fit);
  }
  if (pages < 1) return absl::ResourceExhaustedError("no GPU memory left for one KV page");
  const bool graphs = o.cuda_graphs && pages >= 2;  // the dummy page takes one
  r->graph_rows_ = std::min({256, r->max_rows_, o.max_num_batched_tokens});
  if (auto st = r->workers_->Run(
          [&](int k) { return r->InitPool(k, pages, o.kv_page_size, graphs); });
      !st.ok()) {
    return st;
  }
  // The GEMM choice above Gemv's limit, timed once every buffer is in place (TuneGemms says why).
  if (kernels::EnvOn("ATTNRES_GEMM_TUNE")) {
    if (auto st = r->workers_->Run([&](int k) {
          ATTNRES_CUDA_RETURN(cudaSetDevice(r->ranks_[k]->device));
          return r->ranks_[k]->forward->TuneGemms();
        });
        !st.ok()) {
      return st;
    }
  }
  cudaDeviceProp prop;
  ATTNRES_CUDA_RETURN(cudaGetDeviceProperties(&prop, 0));
  r->device_name_ =
      world == 1 ? absl::StrFormat("cuda:0 (%s)", prop.name)
                 : absl::StrFormat("cuda:0-%d (%s x%d, tensor parallel)", world - 1, prop.name,
                                   world);
  r->LogLayout(std::chrono::duration<double>(Clock::now() - start).count());
  return std::unique_ptr<ModelRunner>(std::move(r));
}

absl::Status CudaRunner::InitRank(int r, const WeightLoader& load, const RunnerOptions& o) {
  CudaRank& k = *ranks_[r];
  ATTNRES_CUDA_RETURN(cudaSetDevice(k.device));
  ATTNRES_CUDA_RETURN(cudaStreamCreateWithFlags(&k.stream, cudaStreamNonBlocking));
  auto weights = load(k.plan);
  if (!weights.ok()) return weights.status();
  k.weights = std::move(*weights);
  auto fwd = cuda::CudaForward::Create(k.plan, *k.weights, k.comm.get(), o.max_num_batched_tokens,
                                       prompt_rows_);
  if (!fwd.ok()) return fwd.status();
  k.forward = std::move(*fwd);
  if (r == 0) {
    if (auto st = InitSampler(k, o); !st.ok()) return st;
  }
  size_t free_bytes = 0, total_bytes = 0;
  ATTNRES_CUDA_RETURN(cudaMemGetInfo(&free_bytes, &total_bytes));
  k.kv_pages_fit = static_cast<int64_t>(free_bytes * o.kv_cache_memory_fraction) /
                   cuda::KvPool::BytesPerPage(k.plan.local, o.kv_page_size);
  return absl::OkStatus();
}

absl::Status CudaRunner::InitSampler(CudaRank& k, const RunnerOptions& o) {
  k.sampler = std::make_unique<SamplerBuffers>();
  SamplerBuffers& s = *k.sampler;
  const size_t V = config_.vocab_size, R = max_rows_;
  s.sort_temp_bytes = kernels::SortRowsTempBytes(max_rows_, config_.vocab_size);
  s.sample_temp_bytes = kernels::SampleRowsTempBytes(max_rows_);
  const size_t W = std::max(1, k.forward->mix_layout().total_weights());
  s.logprobs_at = (R * sizeof(int32_t) + 15) / 16 * 16;
  s.mix_at = (s.logprobs_at + R * sizeof(kernels::LogprobOut) + 15) / 16 * 16;
  for (auto [ptr, bytes] : {std::pair{&s.head, 3 * R * V * 4},
                            {&s.sort_temp, s.sort_temp_bytes},
                            {&s.sample_temp, s.sample_temp_bytes},
                            {&s.row_offsets, (R + 1) * 4},
                            {&s.results, s.mix_at + o.max_num_batched_tokens * W * 4}}) {
    auto m = cuda::DeviceAlloc(bytes);
    if (!m.ok()) return m.status();
    *ptr = std::move(*m);
  }
  s.logits = static_cast<float*>(s.head.get());
  s.sorted_logits = s.logits + R * V;
  s.sorted_ids = reinterpret_cast<int32_t*>(s.sorted_logits + R * V);
  std::vector<int32_t> offsets(R + 1);
  for (size_t i = 0; i <= R; ++i) offsets[i] = static_cast<int32_t>(i * V);
  ATTNRES_CUDA_RETURN(cudaMemcpy(s.row_offsets.get(), offsets.data(), 4 * offsets.size(),
                                 cudaMemcpyHostToDevice));
  auto pinned = cuda::PinnedAlloc(s.mix_at + R * W * 4);
  if (!pinned.ok()) return pinned.status();
  s.host_results = std::move(*pinned);
  logprob_chunks_ = kernels::EnvOn("ATTNRES_LOGPROB_CHUNKS");
  if (kernels::EnvOn("ATTNRES_GPU_EDITS")) {
    edit_planner_ = std::make_unique<LogitEditPlanner>(config_.vocab_size);
  }
  return absl::OkStatus();
}

absl::Status CudaRunner::InitPool(int r, int64_t pages, int page_size, bool graphs) {
  CudaRank& k = *ranks_[r];
  ATTNRES_CUDA_RETURN(cudaSetDevice(k.device));
  auto pool = cuda::KvPool::Create(k.plan.local, pages, page_size);
  if (!pool.ok()) return pool.status();
  k.pool = std::move(*pool);
  if (graphs) k.graphs = std::make_unique<cuda::DecodeGraphs>();
  return absl::OkStatus();
}

void CudaRunner::LogLayout(double load_seconds) const {
  std::fprintf(stderr,
               "attnres cuda: %s, %lld params loaded in %.2f s, KV pool %lld pages of %d tokens"
               "%s\n",
               device_name_.c_str(), static_cast<long long>(num_parameters()), load_seconds,
               static_cast<long long>(rank0().pool.num_pages), rank0().pool.page_size,
               rank0().graphs ? ", decode CUDA graphs on" : "");
  for (const auto& k : ranks_) {
    std::fprintf(stderr,
                 "attnres cuda: rank %d of %d on cuda:%d: weights %.2f GB bf16, workspace "
                 "%.2f GB, KV %.2f GB (%d of %d KV heads)\n",
                 k->plan.rank, k->plan.world_size, k->device, k->weights->bytes / 1e9,
                 k->forward->workspace_bytes() / 1e9,
                 k->pool.num_pages * cuda::KvPool::BytesPerPage(k->plan.local, k->pool.page_size) /
                     1e9,
                 k->plan.local.num_kv_heads, config_.num_kv_heads);
  }
}

// The GPU sampler handles a batch (with its penalties, logit bias, suppressed ids, token masks
// and logprobs, as a LogitEditPlan, mix weights and prompt logprobs) unless a sequence asks for
// more logprob alternatives than the device returns; then the host path (CpuRunner's rows, all
// of them copied back). With ATTNRES_GPU_EDITS=0, all of those extras take the host path too.
StepPlan CudaRunner::PlanStep(const StepBatch& b) {
  StepPlan p;
  bool extras = false, prompt = false;  // edits, logprobs, mix weights; prompt logprobs
  for (const SequenceBatchEntry& e : b.seqs) {
    if (e.prompt_logprobs >= 0) {
      prompt = true;
      p.host_path |= e.prompt_logprobs > kernels::kMaxTopLogprobs;
    }
    if (!e.sample) continue;
    const SamplingParams& s = *e.sampling;
    p.samples.push_back({s.temperature, s.top_k, s.top_p, s.min_p, s.seed, e.sample_index});
    p.host_path |= e.logprobs > kernels::kMaxTopLogprobs;
    extras |= e.logprobs >= 0 || (s.has_penalties() && e.history) || !s.logit_bias.empty() ||
              e.suppressed != nullptr || e.allowed != nullptr || e.return_mix_weights;
  }
  p.host_path |= (extras || prompt) && !edit_planner_;
  if (prompt && !p.host_path) p.host_path = !PlanDeviceRows(b, &p);
  if (p.host_path) {
    p.rows = LogitRows::For(b);
    p.samples.clear();
    p.prompt.clear();
    return p;
  }
  if (!prompt) {
    p.rows = LogitRows::For(b);
    p.sample_rows = static_cast<int>(p.rows.rows.size());
  }
  if (extras) p.edits = edit_planner_->Plan(b, p.rows);
  const int R = static_cast<int>(p.rows.rows.size()), n = b.num_seqs();
  if (rank0().graphs && !p.rows.want_mix_weights && p.prompt.empty() && R == n &&
      b.num_tokens() == n) {
    p.bucket = cuda::DecodeBucket(n, graph_rows_);
  }
  return p;
}

absl::StatusOr<StepOutput> CudaRunner::Execute(const StepBatch& b) {
  const StepPlan plan = PlanStep(b);
  StepOutput out;
  out.seqs.resize(b.num_seqs());
  if (auto st = workers_->Run([&](int r) { return RankStep(r, b, plan, &out); }); !st.ok()) {
    return st;
  }
  return out;
}

// One rank's part of a step. The upload checks the batch on the host; every rank checks the same
// batch against equal pools, but no rank enters the collectives unless all uploads succeeded
// (the failing rank reports the error, the others stop quietly).
absl::Status CudaRunner::RankStep(int r, const StepBatch& b, const StepPlan& p, StepOutput* out) {
  CudaRank& k = *ranks_[r];
  const int n = b.num_seqs();
  auto db = [&]() -> absl::StatusOr<cuda::DeviceBatch> {
    ATTNRES_CUDA_RETURN(cudaSetDevice(k.device));
    if (p.bucket > 0) {
      return k.upload.UploadDecode(b, p.samples, p.bucket, graph_rows_,
                                   static_cast<int32_t>(k.pool.num_pages - 1), k.plan.local,
                                   k.pool, k.stream);
    }
    return k.upload.Upload(b, p.rows.rows, p.samples, k.plan.local, k.pool, k.stream,
                           k.forward->dense_min_rows(), k.forward->dense_max_context());
  }();
  if (!workers_->Agree(db.ok())) return db.status();
  float* logits = k.sampler ? k.sampler->logits : nullptr;
  if (p.bucket > 0) {  // pure decode: replay (or capture) the bucket's graph of forward + head
    db->attn_splits = k.forward->DecodeAttentionSplits(n, db->max_context, p.bucket);
    const cuda::DeviceBatch batch = *db;
    auto body = [&](cudaStream_t s) -> absl::Status {
      if (auto st = k.forward->Run(batch, k.pool, nullptr, s); !st.ok()) return st;
      return k.forward->Head(0, p.bucket, logits, s);
    };
    if (auto st = k.graphs->Launch(p.bucket, batch.attn_splits, k.upload.layout_generation(),
                                   body, k.stream);
        !st.ok()) {
      return st;
    }
  } else {
    float* mix = k.sampler && p.rows.want_mix_weights
                     ? reinterpret_cast<float*>(static_cast<char*>(k.sampler->results.get()) +
                                                k.sampler->mix_at)
                     : nullptr;
    if (auto st = k.forward->Run(*db, k.pool, mix, k.stream); !st.ok()) return st;
    if (p.host_path) return HeadToHost(r, b, p, out);
    if (auto st = DevicePromptLogprobs(r, b, p, out); !st.ok()) return st;
    if (p.sample_rows > 0) {
      if (auto st = k.forward->Head(0, p.sample_rows, logits, k.stream); !st.ok()) return st;
    }
  }
  if (k.sampler && p.sample_rows > 0) return GpuSample(k, b, p, out);
  ATTNRES_CUDA_RETURN(cudaStreamSynchronize(k.stream));
  return absl::OkStatus();
}

// Rank 0 samples: the step's logit edits (after the logprob rows' top lists and log-sum-exps
// of the raw logits), the sort where a row truncates, the draw, the sampled tokens' logprobs,
// then one copy of the results back.
absl::Status CudaRunner::GpuSample(CudaRank& k, const StepBatch& b, const StepPlan& p,
                                   StepOutput* out) {
  SamplerBuffers& s = *k.sampler;
  const int R = p.sample_rows, V = config_.vocab_size;
  float* logits = s.logits;
  int32_t* tokens = static_cast<int32_t*>(s.results.get());
  auto* logprobs =
      reinterpret_cast<kernels::LogprobOut*>(static_cast<char*>(s.results.get()) + s.logprobs_at);
  const LogitEditPlan& ep = p.edits;
  const int L = static_cast<int>(ep.logprobs.size());
  if (!ep.empty()) {
    if (auto st = s.edits.Upload(ep, k.stream); !st.ok()) return st;
    ATTNRES_CUDA_RETURN(
        kernels::RawLogprobs(logits, V, s.edits.logprob_rows(), L,
                             kernels::MaxTopN(ep.logprobs.data(), ep.logprobs.size()), logprobs,
                             s.edits.lse(), logprob_chunks_ ? s.edits.logprob_temp() : nullptr,
                             s.edits.logprob_temp_bytes(), k.stream));
    ATTNRES_CUDA_RETURN(kernels::EditLogits(logits, V, s.edits.rows(), s.edits.edits(),
                                            static_cast<int>(ep.edits.size()), s.edits.raw(),
                                            s.edits.masked(), static_cast<int>(ep.masked.size()),
                                            s.edits.mask_words(), k.stream));
  }
  bool sort = false;
  for (const auto& sp : p.samples) sort |= kernels::NeedsSortedLogits(sp, V);
  if (sort) {
    ATTNRES_CUDA_RETURN(kernels::SortRowsDescending(
        logits, R, V, static_cast<int32_t*>(s.row_offsets.get()), s.sorted_logits, s.sorted_ids,
        s.sort_temp.get(), s.sort_temp_bytes, k.stream));
  }
  ATTNRES_CUDA_RETURN(kernels::SampleRows(logits, s.sorted_logits, s.sorted_ids,
                                          k.upload.device_samples(), R, V, tokens,
                                          s.sample_temp.get(), s.sample_temp_bytes, k.stream));
  if (L > 0) {
    ATTNRES_CUDA_RETURN(kernels::ChosenLogprobs(logits, V, s.edits.logprob_rows(), L,
                                                s.edits.rows(), s.edits.edits(), s.edits.raw(),
                                                tokens, s.edits.lse(), logprobs, k.stream));
  }
  const int W = p.rows.want_mix_weights ? k.forward->mix_layout().total_weights() : 0;
  const size_t bytes = W > 0   ? s.mix_at + sizeof(float) * R * W
                       : L > 0 ? s.logprobs_at + L * sizeof(kernels::LogprobOut)
                               : 4 * R;
  ATTNRES_CUDA_RETURN(cudaMemcpyAsync(s.host_results.get(), s.results.get(), bytes,
                                      cudaMemcpyDeviceToHost, k.stream));
  ATTNRES_CUDA_RETURN(cudaStreamSynchronize(k.stream));
  const auto* host = static_cast<const char*>(s.host_results.get());
  const auto* host_tokens = reinterpret_cast<const int32_t*>(host);
  const auto* host_logprobs = reinterpret_cast<const kernels::LogprobOut*>(host + s.logprobs_at);
  const auto* host_mix = reinterpret_cast<const float*>(host + s.mix_at);
  int j = 0;  // the plan's logprob rows follow the sequences' order
  for (int i = 0; i < b.num_seqs(); ++i) {
    const int row = p.rows.first_row[i];
    if (row < 0) continue;
    SequenceStepOutput& o = out->seqs[i];
    o.token_id = host_tokens[row];
    if (j < L && ep.logprobs[j].logit_row == row) {
      o.logprob = FromDevice(host_logprobs[j], ep.logprobs[j].top_n, V);
      ++j;
    }
    if (W > 0 && b.seqs[i].return_mix_weights) {
      o.mix_weights.assign(host_mix + static_cast<size_t>(row) * W,
                           host_mix + static_cast<size_t>(row + 1) * W);
    }
  }
  return absl::OkStatus();
}

// The prompt rows: the head in chunks of prompt_rows_ rows on every rank (the same collectives
// everywhere); rank 0 takes each chunk's logprobs on the device, then copies them all back.
absl::Status CudaRunner::DevicePromptLogprobs(int r, const StepBatch& b, const StepPlan& p,
                                              StepOutput* out) {
  CudaRank& k = *ranks_[r];
  const int P = static_cast<int>(p.prompt.size()), V = config_.vocab_size;
  if (k.sampler) {
    std::vector<cuda::PromptLogprobs::Row> rows;
    rows.reserve(P);
    for (const PromptRow& pr : p.prompt) rows.push_back(pr.row);
    if (auto st = k.sampler->prompt.Begin(rows, V, prompt_rows_, k.stream); !st.ok()) return st;
  }
  float* logits = k.sampler ? k.sampler->logits : nullptr;
  for (int first = 0; first < P; first += prompt_rows_) {
    const int count = std::min(prompt_rows_, P - first);
    if (auto st = k.forward->Head(p.sample_rows + first, count, logits, k.stream); !st.ok()) {
      return st;
    }
    if (!k.sampler) continue;
    if (auto st = k.sampler->prompt.Chunk(logits, first, logprob_chunks_, k.stream); !st.ok()) {
      return st;
    }
  }
  if (!k.sampler) return absl::OkStatus();
  auto got = k.sampler->prompt.Finish(k.stream);
  if (!got.ok()) return got.status();
  for (int j = 0; j < P; ++j) {
    const PromptRow& pr = p.prompt[j];
    out->seqs[pr.seq].prompt_logprobs.push_back(FromDevice((*got)[j], pr.row.top_n, V));
  }
  return absl::OkStatus();
}

// The rare features: the head runs in chunks of rows on every rank (the same collectives
// everywhere); rank 0 copies each chunk's logits back and samples on the host.
absl::Status CudaRunner::HeadToHost(int r, const StepBatch& b, const StepPlan& p,
                                    StepOutput* out) {
  CudaRank& k = *ranks_[r];
  const int R = static_cast<int>(p.rows.rows.size()), V = config_.vocab_size;
  const int W = k.forward->mix_layout().total_weights();
  float* device_logits = k.sampler ? k.sampler->logits : nullptr;
  std::vector<float> logits(k.sampler ? static_cast<size_t>(R) * V : 0), mix;
  for (int first = 0; first < R; first += max_rows_) {
    const int rows = std::min(max_rows_, R - first);
    if (auto st = k.forward->Head(first, rows, device_logits, k.stream); !st.ok()) return st;
    if (k.sampler) {
      ATTNRES_CUDA_RETURN(cudaMemcpyAsync(logits.data() + static_cast<size_t>(first) * V,
                                          device_logits, sizeof(float) * rows * V,
                                          cudaMemcpyDeviceToHost, k.stream));
    }
  }
  if (k.sampler && p.rows.want_mix_weights && W > 0) {
    mix.resize(static_cast<size_t>(R) * W);
    ATTNRES_CUDA_RETURN(cudaMemcpyAsync(
        mix.data(), static_cast<char*>(k.sampler->results.get()) + k.sampler->mix_at,
        sizeof(float) * mix.size(), cudaMemcpyDeviceToHost, k.stream));
  }
  ATTNRES_CUDA_RETURN(cudaStreamSynchronize(k.stream));
  if (k.sampler) SampleOnHost(b, p.rows, logits, V, mix, W, out);
  return absl::OkStatus();
}

}  // namespace

bool CudaDeviceAvailable() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess && n > 0;
}

absl::StatusOr<std::unique_ptr<ModelRunner>> CreateCudaRunner(const std::filesystem::path& dir,
                                                              const RunnerOptions& options) {
  const auto start = Clock::now();
  auto config = LoadModelConfig(dir);
  if (!config.ok()) return config.status();
  auto store = SafetensorsStore::Open(dir);
  if (!store.ok()) return store.status();
  const ModelConfig& c = *config;
  const SafetensorsStore& s = **store;
  return CudaRunner::Create(
      c, [&](const TensorParallelPlan& p) { return cuda::LoadDeviceWeights(c, s, p); }, options,
      start);
}

absl::StatusOr<std::unique_ptr<ModelRunner>> CreateRandomCudaRunner(const ModelConfig& config,
                                                                    uint64_t seed,
                                                                    const RunnerOptions& options) {
  return CudaRunner::Create(
      config,
      [&](const TensorParallelPlan& p) { return cuda::RandomDeviceWeights(config, seed, p); },
      options, Clock::now());
}

}  // namespace attnres
