// Tensor parallelism over the GPUs present. For every world size W in {1, 2, 4, 8} that the machine
// has (the others skip, naming how many GPUs were found) and that divides the model: (a) W
// CudaForward ranks (sharded weights, NCCL all-reduce and logit all-gather, each rank's own KV
// heads) over a chunked prefill and decode steps match the single-device forward without a
// communicator (relative L2 < 3e-2, cosine > 0.999; W = 1 runs with a 1-rank NCCL communicator,
// whose collectives CudaForward skips, and must be bitwise equal), and (b) the CUDA runner at
// --tensor-parallel W generates the same 32 greedy tokens as the single-device forward, with the
// GPU sampler, with the host sampler (logprobs) and with decode CUDA graphs. Models:
// tests/data/models/tiny_std, tiny_block and tiny_full (4 heads, 2 KV heads: W <= 2) and a
// generated Block model with 8 heads and 8 KV heads (W <= 8; tied head, whose slice is copied out
// of the embedding where it is not 256-byte aligned, at W = 8).
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <numeric>
#include <random>

#include "absl/strings/str_cat.h"
#include "models/cuda/cuda_forward.h"
#include "models/cuda/device_weights.h"
#include "models/cuda/step_upload.h"
#include "models/parallel/nccl_communicator.h"
#include "models/parallel/rank_workers.h"
#include "models/parallel/tensor_parallel.h"
#include "tests/gpu/gpu_test_util.h"
#include "tests/test_models.h"

namespace attnres {
namespace {

using gpu_testing::Cosine;
using gpu_testing::RelL2;

#define TP_RETURN_IF_ERROR(expr)                        \
  do {                                                  \
    if (absl::Status _st = (expr); !_st.ok()) return _st; \
  } while (0)

int GpuCount() {
  int n = 0;
  return cudaGetDeviceCount(&n) == cudaSuccess ? n : 0;
}

// 8 heads, 8 KV heads (head_dim 16), 256 MLP columns, 360 tokens: divisible by 8, and rank 1's
// vocabulary rows at W = 8 start at 45 * 64 * 2 bytes into the tied embedding (not 256-aligned).
const std::filesystem::path& WideModel() {
  static const std::filesystem::path dir = [] {
    ModelConfig c = *RandomModelPreset("tiny-block");
    c.num_heads = 8;
    c.num_kv_heads = 8;
    c.head_dim = 16;
    c.intermediate_size = 256;
    c.vocab_size = 360;
    c.num_layers = 4;
    RandomModelOptions o;
    o.seed = 17;
    o.qk_norm = true;
    return testing::MakeModel("tp_wide_block", c, o);
  }();
  return dir;
}

std::vector<std::filesystem::path> Models() {
  return {"tests/data/models/tiny_std", "tests/data/models/tiny_block",
          "tests/data/models/tiny_full", WideModel()};
}

// CudaForward ranks on GPUs 0..W-1 with their pools, fed one chunk per Step. world 0: the
// single-device forward without a communicator (the reference).
class ForwardRanks {
 public:
  static constexpr int kMaxRows = 64;

  ForwardRanks(const testing::LoadedCpuModel& m, int world, int num_pages, int page_size)
      : m_(m), world_(std::max(1, world)), page_size_(page_size), workers_(world_),
        ranks_(world_) {
    pages_.resize(num_pages);
    std::iota(pages_.begin(), pages_.end(), 3);
    std::shuffle(pages_.begin(), pages_.end(), std::mt19937(99));
    std::vector<std::unique_ptr<NcclCommunicator>> comms;
    if (world > 0) {
      std::vector<int> devices(world);
      std::iota(devices.begin(), devices.end(), 0);
      auto c = NcclCommunicator::CreateAll(devices);
      status_ = c.status();
      if (!c.ok()) return;
      comms = std::move(*c);
    }
    status_ = workers_.Run([&](int r) {
      Rank& k = ranks_[r];
      if (!comms.empty()) k.comm = std::move(comms[r]);
      ATTNRES_CUDA_RETURN(cudaSetDevice(r));
      ATTNRES_CUDA_RETURN(cudaStreamCreate(&k.stream));
      k.plan = *PlanTensorParallel(m_.config, world_, r);
      auto w = cuda::LoadDeviceWeights(m_.config, *m_.store, k.plan);
      TP_RETURN_IF_ERROR(w.status());
      k.weights = std::move(*w);
      auto f = cuda::CudaForward::Create(k.plan, *k.weights, k.comm.get(), kMaxRows, kMaxRows);
      TP_RETURN_IF_ERROR(f.status());
      k.forward = std::move(*f);
      auto pool = cuda::KvPool::Create(k.plan.local, num_pages + 3, page_size_);
      TP_RETURN_IF_ERROR(pool.status());
      k.pool = std::move(*pool);
      if (r == 0) {
        auto l = cuda::DeviceAlloc(sizeof(float) * kMaxRows * m_.config.vocab_size);
        TP_RETURN_IF_ERROR(l.status());
        k.logits = std::move(*l);
      }
      return absl::OkStatus();
    });
  }

  ~ForwardRanks() {
    (void)workers_.Run([&](int r) {  // free on each rank's own device
      cudaSetDevice(r);
      if (ranks_[r].stream) cudaStreamDestroy(ranks_[r].stream);
      ranks_[r] = Rank();
      return absl::OkStatus();
    });
  }

  const absl::Status& status() const { return status_; }

  // Feeds ids[start:] at positions start..; returns their logits (rank 0's), [rows][vocab].
  absl::StatusOr<std::vector<std::vector<float>>> Step(const std::vector<int32_t>& ids,
                                                       int start) {
    const int end = static_cast<int>(ids.size()), n = end - start, V = m_.config.vocab_size;
    const int used = (end + page_size_ - 1) / page_size_;
    StepBatch b;
    for (int p = start; p < end; ++p) {
      b.token_ids.push_back(ids[p]);
      b.positions.push_back(p);
    }
    b.query_indptr = {0, n};
    b.kv_page_indices.assign(pages_.begin(), pages_.begin() + used);
    b.kv_page_indptr = {0, used};
    b.kv_last_page_len = {end - (used - 1) * page_size_};
    b.seqs.resize(1);
    std::vector<int> rows(n);
    std::iota(rows.begin(), rows.end(), 0);
    std::vector<float> host(static_cast<size_t>(n) * V);
    TP_RETURN_IF_ERROR(workers_.Run([&](int r) {
      Rank& k = ranks_[r];
      ATTNRES_CUDA_RETURN(cudaSetDevice(r));
      auto db = k.upload.Upload(b, rows, {}, k.plan.local, k.pool, k.stream);
      TP_RETURN_IF_ERROR(db.status());
      TP_RETURN_IF_ERROR(k.forward->Run(*db, k.pool, nullptr, k.stream));
      float* logits = static_cast<float*>(k.logits.get());  // null on ranks > 0
      TP_RETURN_IF_ERROR(k.forward->Head(0, n, logits, k.stream));
      if (logits) {
        ATTNRES_CUDA_RETURN(cudaMemcpyAsync(host.data(), logits, 4 * host.size(),
                                            cudaMemcpyDeviceToHost, k.stream));
      }
      ATTNRES_CUDA_RETURN(cudaStreamSynchronize(k.stream));
      return absl::OkStatus();
    }));
    std::vector<std::vector<float>> out;
    for (int r = 0; r < n; ++r) {
      out.emplace_back(host.begin() + static_cast<size_t>(r) * V,
                       host.begin() + static_cast<size_t>(r + 1) * V);
    }
    return out;
  }

 private:
  struct Rank {
    TensorParallelPlan plan;
    std::unique_ptr<NcclCommunicator> comm;
    std::unique_ptr<cuda::DeviceWeights> weights;
    std::unique_ptr<cuda::CudaForward> forward;
    cuda::KvPool pool;
    cuda::StepUpload upload;
    cuda::DevicePtr logits;  // rank 0: [kMaxRows, vocab]
    cudaStream_t stream = nullptr;
  };
  const testing::LoadedCpuModel& m_;
  int world_, page_size_;
  std::vector<int32_t> pages_;
  RankWorkers workers_;
  std::vector<Rank> ranks_;
  absl::Status status_;
};

// Logits of every position, the prompt fed in the given chunks.
std::vector<std::vector<float>> AllLogits(ForwardRanks& f, const std::vector<int32_t>& ids,
                                          const std::vector<int>& chunks) {
  std::vector<std::vector<float>> out;
  int start = 0;
  for (int chunk : chunks) {
    std::vector<int32_t> prefix(ids.begin(), ids.begin() + start + chunk);
    auto rows = f.Step(prefix, start);
    EXPECT_TRUE(rows.ok()) << rows.status();
    if (!rows.ok()) return out;
    for (auto& r : *rows) out.push_back(std::move(r));
    start += chunk;
  }
  return out;
}

// steps + 1 greedy tokens from the forward (host argmax of the last row), as Generate does.
std::vector<int32_t> GreedyReference(ForwardRanks& f, std::vector<int32_t> ids, int steps) {
  std::vector<int32_t> out;
  int start = 0;
  for (int step = 0; step <= steps; ++step) {
    auto rows = f.Step(ids, start);
    EXPECT_TRUE(rows.ok()) << rows.status();
    if (!rows.ok()) return out;
    const std::vector<float>& last = rows->back();
    const int32_t next = static_cast<int32_t>(std::max_element(last.begin(), last.end()) -
                                              last.begin());
    out.push_back(next);
    start = static_cast<int>(ids.size());
    ids.push_back(next);
  }
  return out;
}

std::vector<int32_t> Prompt(int n, int vocab) {
  std::vector<int32_t> ids(n);
  for (int i = 0; i < n; ++i) ids[i] = static_cast<int32_t>((2654435761u * (i + 3)) % vocab);
  return ids;
}

class TensorParallelGpu : public ::testing::TestWithParam<int> {
 protected:
  void SetUp() override {
    ATTNRES_REQUIRE_GPU();
    const int world = GetParam(), found = GpuCount();
    if (world > found) {
      GTEST_SKIP() << "--tensor-parallel " << world << " needs " << world << " GPUs, found "
                   << found;
    }
  }
  // Whether W divides the model (else it is skipped for this world size, with a line).
  static bool Divides(const ModelConfig& c, const std::filesystem::path& dir, int world) {
    auto plan = PlanTensorParallel(c, world, 0);
    if (!plan.ok()) std::printf("%-28s W=%d skipped: %s\n", dir.c_str(), world,
                                std::string(plan.status().message()).c_str());
    return plan.ok();
  }
};

TEST_P(TensorParallelGpu, ForwardLogitsMatchTheSingleDeviceForward) {
  const int world = GetParam();
  for (const auto& dir : Models()) {
    auto m = testing::LoadCpuModel(dir);
    if (!Divides(m.config, dir, world)) continue;
    SCOPED_TRACE(dir.string());
    const auto ids = Prompt(40, m.config.vocab_size);
    std::vector<int> chunks = {19, 7, 5};
    for (int i = 0; i < 9; ++i) chunks.push_back(1);
    const int page_size = 4, pages = 10;
    ForwardRanks single(m, 0, pages, page_size), tp(m, world, pages, page_size);
    ASSERT_TRUE(single.status().ok()) << single.status();
    ASSERT_TRUE(tp.status().ok()) << tp.status();
    const auto want = AllLogits(single, ids, chunks), got = AllLogits(tp, ids, chunks);
    ASSERT_EQ(got.size(), want.size());
    double worst_l2 = 0, worst_cos = 1;
    int bitwise = 0;
    for (size_t t = 0; t < want.size(); ++t) {
      const size_t V = want[t].size();
      worst_l2 = std::max(worst_l2, RelL2(got[t].data(), want[t].data(), V));
      worst_cos = std::min(worst_cos, Cosine(got[t].data(), want[t].data(), V));
      bitwise += got[t] == want[t];
    }
    std::printf("%-28s W=%d: worst rel L2 %.2e, worst cosine %.6f, %d of %zu rows bitwise equal\n",
                dir.c_str(), world, worst_l2, worst_cos, bitwise, want.size());
    EXPECT_LT(worst_l2, 3e-2);
    EXPECT_GT(worst_cos, 0.999);
    if (world == 1) {
      EXPECT_EQ(bitwise, static_cast<int>(want.size())) << "1-rank communicator";
    }
  }
}

TEST_P(TensorParallelGpu, RunnerGreedyTokensMatchTheSingleDeviceForward) {
  const int world = GetParam();
  for (const auto& dir : Models()) {
    auto m = testing::LoadCpuModel(dir);
    if (!Divides(m.config, dir, world)) continue;
    SCOPED_TRACE(dir.string());
    const std::vector<int32_t> prompt = Prompt(8, m.config.vocab_size);
    const int steps = 32;
    ForwardRanks single(m, 0, 12, 4);
    ASSERT_TRUE(single.status().ok()) << single.status();
    const auto want = GreedyReference(single, prompt, steps);
    struct Variant {
      const char* name;
      bool graphs;
      int logprobs;
    };
    for (const Variant v : {Variant{"GPU sampler", false, -1}, Variant{"host sampler", false, 1},
                            Variant{"decode CUDA graphs", true, -1}}) {
      RunnerOptions o;
      o.cuda_graphs = v.graphs;
      o.device = DeviceKind::kCuda;
      o.tensor_parallel = world;
      o.kv_cache_bytes = 16 << 20;
      o.kv_page_size = 4;
      o.max_num_seqs = 8;
      o.max_num_batched_tokens = 256;
      auto runner = CreateModelRunner(dir, o);
      ASSERT_TRUE(runner.ok()) << runner.status();
      if (world > 1) {
        EXPECT_NE((*runner)->device_name().find("tensor parallel"), std::string::npos)
            << (*runner)->device_name();
      }
      const auto got = gpu_testing::Generate(**runner, prompt, steps, v.logprobs);
      const size_t n = std::min(got.size(), want.size());
      const int same = static_cast<int>(
          std::mismatch(got.begin(), got.begin() + n, want.begin()).first - got.begin());
      std::printf("%-28s W=%d %-18s: %d of %zu greedy tokens identical (%s)\n", dir.c_str(),
                  world, v.name, same, want.size(), (*runner)->device_name().c_str());
      EXPECT_EQ(got, want) << v.name;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(WorldSizes, TensorParallelGpu, ::testing::Values(1, 2, 4, 8),
                         [](const ::testing::TestParamInfo<int>& i) {
                           return absl::StrCat("W", i.param);
                         });

// Both errors come before any GPU work, so they hold on any machine.
TEST(TensorParallelGpuErrors, TooFewDevicesAndNonDividingWorldsNameTheFlag) {
  const int found = GpuCount(), world = std::max(2, 2 * found);
  RunnerOptions o;
  o.device = DeviceKind::kCuda;
  o.tensor_parallel = world;
  if (world <= 8) {  // the wide model divides 2, 4, 8
    auto r = CreateModelRunner(WideModel(), o);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.status().message(), absl::StrCat("--tensor-parallel ", world, " needs ", world,
                                                 " CUDA devices, found ", found));
  }
  o.tensor_parallel = 4;
  auto r = CreateModelRunner("tests/data/models/tiny_block", o);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().message(),
            "--tensor-parallel 4 must divide config.json num_key_value_heads (2)");
}

}  // namespace
}  // namespace attnres
