// RoPE + KV page write + paged attention against a double-precision CPU reference that follows
// CpuForward::Attention: ragged batches mixing decode rows and prefill chunks over a cached
// prefix, shuffled pages, page sizes 1/3/16, head dims of the tiny and Llama models; decode
// batches also through the fused form (RoPE inside the attention kernel), which must match the
// separate kernels bit for bit.
#include <algorithm>
#include <numeric>

#include "kernels/ops.h"
#include "models/cuda/cudnn_attention.h"
#include "models/rope.h"
#include "tests/gpu/gpu_test_util.h"

namespace attnres {
namespace {

using gpu_testing::DeviceArray;
using gpu_testing::FromBf16;
using gpu_testing::RandomBf16Values;
using gpu_testing::RelL2;
using gpu_testing::ToBf16;
using kernels::bf16;

struct AttnCase {
  int H, KV, hd, page_size;
  std::vector<std::pair<int, int>> seqs;  // (start_pos, new tokens)
};

// What a run left on the device: the attention output and both caches (bf16 bits).
struct AttnResult {
  std::vector<uint16_t> out, k_cache, v_cache;
};

// split: hand the kernel a workspace for up to max_splits splits, so few tiles split their keys
// over several blocks (merged by the combine kernel); forced_splits > 0: exactly that many (as a
// decode graph fixes them). cudnn: instead of the kernel, each
// sequence's K/V gathered from the pages (GatherKv) and its rows through CudnnAttention, as
// CudaForward runs prefill chunks. fused: RoPE and the K/V write inside the attention kernel
// (every sequence one new row). qk_norm: Qwen3's per-head q/k RMSNorm, with random gains.
// result: what the run left on the device.
void RunAttnCase(const AttnCase& k, uint32_t seed, bool split, int max_splits = 8,
                 cuda::CudnnAttention* cudnn = nullptr, int forced_splits = 0, bool fused = false,
                 bool qk_norm = false, AttnResult* result = nullptr) {
  SCOPED_TRACE(testing::Message() << "H=" << k.H << " KV=" << k.KV << " hd=" << k.hd
                                  << " ps=" << k.page_size << " split=" << split
                                  << " forced=" << forced_splits << " seqs=" << k.seqs.size()
                                  << " cudnn=" << (cudnn != nullptr) << " fused=" << fused
                                  << " qk_norm=" << qk_norm);
  ModelConfig c;
  c.num_heads = k.H;
  c.num_kv_heads = k.KV;
  c.head_dim = k.hd;
  c.rope_theta = 500000.0;
  c.rope_scaling = RopeScaling{8.0, 1.0, 4.0, 64};
  const auto inv_freq = RopeInverseFrequencies(c);
  const int hd = k.hd, half = hd / 2, kvd = k.KV * hd, width = (k.H + 2 * k.KV) * hd;
  std::vector<int32_t> positions, row_seq, indptr = {0}, pages, tiles;
  int num_pages = 0;
  for (size_t s = 0; s < k.seqs.size(); ++s) {
    const auto [start, n] = k.seqs[s];
    const int used = (start + n + k.page_size - 1) / k.page_size;
    for (int i = 0; i < used; ++i) pages.push_back(num_pages++);
    indptr.push_back(static_cast<int32_t>(pages.size()));
    for (int r = 0; r < n; ++r) {
      positions.push_back(start + r);
      row_seq.push_back(static_cast<int32_t>(s));
    }
  }
  std::shuffle(pages.begin(), pages.end(), std::mt19937(seed));
  const int T = static_cast<int>(positions.size());
  int first = 0, max_tile_rows = 1;
  const int tile_rows = kernels::AttentionTileRows(k.H / k.KV);
  for (size_t s = 0; s < k.seqs.size(); ++s) {
    for (int r = 0; r < k.seqs[s].second; r += tile_rows) {
      const int n = std::min(tile_rows, k.seqs[s].second - r);
      tiles.insert(tiles.end(), {static_cast<int32_t>(s), first + r, n});
      max_tile_rows = std::max(max_tile_rows, n);
    }
    first += k.seqs[s].second;
  }
  const size_t cache_elems = size_t(num_pages) * k.page_size * kvd;
  auto k_cache = RandomBf16Values(cache_elems, seed + 1, 1.0f);  // history (and junk)
  auto v_cache = RandomBf16Values(cache_elems, seed + 2, 1.0f);
  auto qkv = RandomBf16Values(size_t(T) * width, seed + 3, 1.0f);
  // Gains around 1 (q's, then k's), rounded through bf16 only to reuse the generator.
  std::vector<float> norms = RandomBf16Values(2 * hd, seed + 4, 0.5f);
  for (float& g : norms) g += 1.0f;

  // q and out have a cuDNN bucket of rows past T (read / written, masked); q's are zeros.
  const size_t pad = cuda::CudnnAttention::kBucket;
  DeviceArray<uint16_t> d_qkv(qkv.size()), d_k(cache_elems), d_v(cache_elems),
      d_q((T + pad) * k.H * hd), d_out((T + pad) * k.H * hd);
  ASSERT_CUDA(cudaMemset(d_q.get(), 0, 2 * (T + pad) * k.H * hd));
  ASSERT_CUDA(cudaMemset(d_out.get(), 0, 2 * (T + pad) * k.H * hd));
  DeviceArray<int32_t> d_pos(T), d_seq(T), d_indptr(indptr.size()), d_pages(pages.size()),
      d_tiles(tiles.size());
  DeviceArray<double> d_freq(half);
  DeviceArray<float> d_norms(2 * hd);
  d_norms.Upload(norms);
  DeviceArray<float2> d_rope(size_t(T) * half);
  d_qkv.Upload(ToBf16(qkv));
  d_k.Upload(ToBf16(k_cache));
  d_v.Upload(ToBf16(v_cache));
  d_pos.Upload(positions);
  d_seq.Upload(row_seq);
  d_indptr.Upload(indptr);
  d_pages.Upload(pages);
  d_tiles.Upload(tiles);
  d_freq.Upload(inv_freq);
  ASSERT_CUDA(kernels::RopeTable(d_pos.get(), d_freq.get(), T, half, d_rope.get(), nullptr));
  kernels::RopeKvWriteArgs w;
  w.rope.qkv = reinterpret_cast<bf16*>(d_qkv.get());
  w.rope.table = d_rope.get();
  w.positions = d_pos.get();
  w.row_seq = d_seq.get();
  w.kv_page_indptr = d_indptr.get();
  w.kv_page_indices = d_pages.get();
  if (qk_norm) {
    w.rope.q_norm = d_norms.get();
    w.rope.k_norm = d_norms.get() + hd;
  }
  w.T = T;
  w.H = k.H;
  w.KV = k.KV;
  w.hd = hd;
  w.page_size = k.page_size;
  w.q_out = reinterpret_cast<bf16*>(d_q.get());
  w.k_cache = reinterpret_cast<bf16*>(d_k.get());
  w.v_cache = reinterpret_cast<bf16*>(d_v.get());
  if (!fused) {
    ASSERT_CUDA(kernels::RopeKvWrite(w, nullptr));
  }
  kernels::PagedAttentionArgs a;
  if (fused) a.rope = w.rope;
  a.q = w.q_out;
  a.k_cache = w.k_cache;
  a.v_cache = w.v_cache;
  a.positions = d_pos.get();
  a.tiles = d_tiles.get();
  a.kv_page_indptr = d_indptr.get();
  a.kv_page_indices = d_pages.get();
  a.num_tiles = static_cast<int>(tiles.size() / 3);
  a.max_tile_rows = max_tile_rows;
  a.T = T;
  a.max_context = *std::max_element(positions.begin(), positions.end()) + 1;
  const size_t ws_bytes = max_splits * kernels::PagedAttentionSplitBytes(T, k.H, hd);
  DeviceArray<float> d_ws(ws_bytes / sizeof(float));
  if (split) {
    a.workspace = d_ws.get();
    a.workspace_bytes = ws_bytes;
    a.splits = forced_splits;
  }
  a.H = k.H;
  a.KV = k.KV;
  a.hd = hd;
  a.page_size = k.page_size;
  a.scale = 1.0f / std::sqrt(float(hd));
  a.out = reinterpret_cast<bf16*>(d_out.get());
  if (!cudnn) {
    ASSERT_CUDA(kernels::PagedAttention(a, nullptr));
  } else {  // in row order, as CudaForward::DenseAttention
    int max_context = 0;
    std::vector<int32_t> lens;
    for (const auto& [start, n] : k.seqs) {
      max_context = std::max(max_context, start + n);
      lens.insert(lens.end(), {n, 0, 0, 0, start + n, 0, 0, 0});
    }
    const size_t dense_rows = cuda::CudnnAttention::KeyBucket(max_context);
    DeviceArray<uint16_t> d_dk(dense_rows * kvd), d_dv(dense_rows * kvd);
    ASSERT_CUDA(cudaMemset(d_dk.get(), 0, 2 * dense_rows * kvd));  // masked rows: finite
    ASSERT_CUDA(cudaMemset(d_dv.get(), 0, 2 * dense_rows * kvd));
    DeviceArray<int32_t> d_lens(lens.size());
    d_lens.Upload(lens);
    int row = 0;
    for (size_t s = 0; s < k.seqs.size(); ++s) {
      const auto [start, n] = k.seqs[s];
      kernels::GatherKvArgs g;
      g.k_cache = w.k_cache;
      g.v_cache = w.v_cache;
      g.pages = d_pages.get() + indptr[s];
      g.n = start + n;
      g.kv_dim = kvd;
      g.page_size = k.page_size;
      g.k_out = reinterpret_cast<bf16*>(d_dk.get());
      g.v_out = reinterpret_cast<bf16*>(d_dv.get());
      ASSERT_CUDA(kernels::GatherKv(g, nullptr));
      cuda::CudnnAttention::Chunk c;
      c.q = w.q_out + size_t(row) * k.H * hd;
      c.k = g.k_out;
      c.v = g.v_out;
      c.out = a.out + size_t(row) * k.H * hd;
      c.lens = d_lens.get() + 8 * s;
      c.s_q = n;
      c.s_kv = start + n;
      const absl::Status st = cudnn->Run(c, nullptr);
      ASSERT_TRUE(st.ok()) << st;
      row += n;
    }
  }
  ASSERT_CUDA(cudaDeviceSynchronize());
  const auto out = FromBf16(d_out.Download());
  if (result) *result = {d_out.Download(), d_k.Download(), d_v.Download()};

  // CPU: rotate the new q/k (double), store k/v rounded to bf16 into the cache copy, attend.
  auto slot = [&](int s, int p) {
    return (size_t(pages[indptr[s] + p / k.page_size]) * k.page_size + p % k.page_size) * kvd;
  };
  std::vector<float> q(size_t(T) * k.H * hd);
  for (int t = 0; t < T; ++t) {
    for (int h = 0; h < k.H + k.KV; ++h) {
      std::vector<float> x(&qkv[size_t(t) * width + h * hd], &qkv[size_t(t) * width + h * hd] + hd);
      if (qk_norm) {
        double sq = 0;
        for (float v : x) sq += double(v) * v;
        const double r = 1.0 / std::sqrt(sq / hd + w.rope.eps);
        for (int i = 0; i < hd; ++i) x[i] = float(x[i] * r * norms[(h < k.H ? 0 : hd) + i]);
      }
      ApplyRope(inv_freq, positions[t], x.data(), hd);
      float* dst = h < k.H ? &q[(size_t(t) * k.H + h) * hd]
                           : &k_cache[slot(row_seq[t], positions[t]) + (h - k.H) * hd];
      for (int i = 0; i < hd; ++i) dst[i] = h < k.H ? x[i] : RoundBf16(x[i]);
    }
    for (int i = 0; i < kvd; ++i) {
      v_cache[slot(row_seq[t], positions[t]) + i] = qkv[size_t(t) * width + (k.H + k.KV) * hd + i];
    }
  }
  const int group = k.H / k.KV;
  std::vector<double> score, acc(hd);
  std::vector<float> ref(hd);
  for (int t = 0; t < T; ++t) {
    const int s = row_seq[t], pos = positions[t];
    score.resize(pos + 1);
    for (int h = 0; h < k.H; ++h) {
      const int g = h / group;
      double mx = -INFINITY;
      for (int p = 0; p <= pos; ++p) {
        double dot = 0;
        for (int i = 0; i < hd; ++i) dot += double(q[(size_t(t) * k.H + h) * hd + i]) * k_cache[slot(s, p) + g * hd + i];
        mx = std::max(mx, score[p] = dot / std::sqrt(double(hd)));
      }
      double sum = 0;
      for (double& x : score) sum += (x = std::exp(x - mx));
      std::fill(acc.begin(), acc.end(), 0.0);
      for (int p = 0; p <= pos; ++p) {
        for (int i = 0; i < hd; ++i) acc[i] += score[p] / sum * v_cache[slot(s, p) + g * hd + i];
      }
      for (int i = 0; i < hd; ++i) ref[i] = float(acc[i]);
      ASSERT_LT(RelL2(&out[(size_t(t) * k.H + h) * hd], ref.data(), hd), 2e-2)
          << "row " << t << " pos " << pos << " head " << h;
    }
  }
}

TEST(PagedAttentionKernel, MatchesCpuReference) {
  ATTNRES_REQUIRE_GPU();
  // The 300-token context makes the mixed batch split (splits take at least 128 keys).
  const std::vector<std::pair<int, int>> mixed = {{0, 19}, {40, 1}, {5, 7}, {300, 1}, {0, 1}};
  const std::vector<std::pair<int, int>> decode = {{1500, 1}, {70, 1}, {0, 1}, {641, 1}};
  uint32_t seed = 7;
  for (bool split : {false, true}) {
    for (int ps : {1, 3, 16}) {
      RunAttnCase({4, 2, 16, ps, mixed}, seed++, split);     // tiny models
      RunAttnCase({6, 2, 64, ps, mixed}, seed++, split);     // tiny-stories (group 3)
      RunAttnCase({32, 8, 128, ps, mixed}, seed++, split);   // Llama-3.1-8B heads
      RunAttnCase({32, 8, 128, ps, decode}, seed++, split);  // long decode contexts
    }
    RunAttnCase({32, 8, 64, 16, {{0, 733}}}, 99, split);     // long prefill (Llama-3.2-1B heads)
    RunAttnCase({16, 2, 128, 16, {{130, 37}, {5, 1}}}, 101, split);  // group 8, cached prefix
    RunAttnCase({8, 8, 128, 16, {{300, 1}, {0, 1}}}, 100, split);    // MHA, group 1
    RunAttnCase({4, 2, 32, 3, {{200, 1}, {9, 20}}}, 102, split);     // hd 32
  }
  // Long decode contexts with room for 32 splits (the cases above stop at 8): 24 splits of
  // 8B heads, 16 of MHA hd 64.
  for (int ps : {3, 16}) RunAttnCase({32, 8, 128, ps, {{1500, 1}, {3000, 1}}}, 103, true, 32);
  RunAttnCase({8, 8, 64, 16, {{2000, 1}}}, 104, true, 32);  // MHA, hd 64: 16 splits
  // Decode batches of both decode forms (kernels/paged_attention.cu WithForm). On a 132-SM
  // H200, at hd 128 56 sequences are 448 blocks, one wave only for the small form (5 per SM
  // against 3), and 30 are 240, one wave for both (the large form); hd 256 takes the small form
  // at both. Forced splits too, as decode graphs fix them.
  for (int seqs : {56, 30}) {
    std::vector<std::pair<int, int>> batch;
    for (int s = 0; s < seqs; ++s) batch.push_back({(s * 397) % 1100 + (s % 3 == 0 ? 0 : 5), 1});
    for (int hd : {128, 256}) {
      const int H = hd == 128 ? 32 : 16;
      RunAttnCase({H, 8, hd, 16, batch}, 105 + seqs + hd, false);
      RunAttnCase({H, 8, hd, 16, batch}, 106 + seqs + hd, true);
      RunAttnCase({H, 8, hd, 16, batch}, 107 + seqs + hd, true, 8, nullptr, 3);
    }
  }
}

// Decode batches through the fused form (RoPE and the K/V write inside the attention kernel)
// and through RopeKvWrite + the plain form, on identical inputs: the outputs and both caches
// must be the same bits (and each run matches the CPU reference). The new key lands first,
// inside and last in its 64-key tile, alone (position 0) and in each split of a forced or
// heuristic split; page sizes 1/3/16; groups 1 to 8; hd 16 to 256; both decode forms (56 and
// 30 sequences, see MatchesCpuReference); Qwen3's q/k norms.
TEST(PagedAttentionKernel, FusedRopeMatchesTheSeparateKernels) {
  ATTNRES_REQUIRE_GPU();
  const std::vector<std::pair<int, int>> decode = {{0, 1},   {63, 1},  {64, 1},   {100, 1},
                                                   {127, 1}, {128, 1}, {511, 1},  {512, 1},
                                                   {700, 1}, {1500, 1}, {3000, 1}};
  std::vector<std::pair<int, int>> wide56, wide30;
  for (int s = 0; s < 56; ++s) wide56.push_back({(s * 397) % 1100 + (s % 3 == 0 ? 0 : 5), 1});
  for (int s = 0; s < 30; ++s) wide30.push_back({(s * 211) % 900, 1});
  struct Case {
    AttnCase c;
    bool split;
    int max_splits, forced;
    bool norm;
  };
  const std::vector<Case> cases = {
      {{32, 8, 128, 16, decode}, false, 8, 0, false},
      {{32, 8, 128, 16, decode}, true, 8, 0, false},
      {{32, 8, 128, 3, decode}, true, 8, 3, true},
      {{32, 8, 128, 1, decode}, true, 32, 0, false},
      {{32, 8, 64, 16, decode}, true, 8, 0, true},    // Llama-3.2-1B heads
      {{4, 2, 16, 3, decode}, true, 8, 0, false},     // tiny models
      {{6, 2, 64, 16, decode}, true, 8, 5, false},    // group 3
      {{16, 2, 128, 16, decode}, true, 8, 0, true},   // group 8
      {{8, 8, 128, 16, decode}, true, 8, 0, false},   // MHA
      {{4, 2, 32, 3, decode}, false, 8, 0, true},     // hd 32
      {{16, 8, 256, 16, decode}, true, 8, 0, true},   // hd 256
      {{32, 8, 128, 16, wide56}, true, 8, 0, false},  // the small decode form
      {{32, 8, 128, 16, wide30}, true, 8, 2, true},   // the large one, forced splits
  };
  uint32_t seed = 500;
  for (const Case& t : cases) {
    AttnResult plain, fused;
    RunAttnCase(t.c, seed, t.split, t.max_splits, nullptr, t.forced, false, t.norm, &plain);
    RunAttnCase(t.c, seed, t.split, t.max_splits, nullptr, t.forced, true, t.norm, &fused);
    ++seed;
    SCOPED_TRACE(testing::Message() << "case " << seed - 500 << " hd " << t.c.hd);
    EXPECT_TRUE(plain.out == fused.out) << "attention outputs differ";
    EXPECT_TRUE(plain.k_cache == fused.k_cache) << "K caches differ";
    EXPECT_TRUE(plain.v_cache == fused.v_cache) << "V caches differ";
  }
}

// cuDNN's fused attention over gathered K/V (CudaForward's prefill path for long chunks) against
// the same reference: bucketed plans with padding masks, bottom-right causal over a cached
// prefix, one-row chunks, GQA groups 1-8, head dims of the tiny and Llama models.
TEST(CudnnAttention, MatchesCpuReference) {
  ATTNRES_REQUIRE_GPU();
  if (!cuda::CudnnAttention::Built()) GTEST_SKIP() << "built without cuDNN";
  struct Heads {
    int H, KV, hd;
  };
  const std::vector<std::pair<int, int>> mixed = {{0, 19}, {40, 1}, {5, 7}, {300, 1}, {0, 1}};
  uint32_t seed = 300;
  for (const Heads h : {Heads{4, 2, 16}, Heads{6, 2, 64}, Heads{32, 8, 128}, Heads{16, 2, 128},
                        Heads{8, 8, 128}, Heads{4, 2, 32}}) {
    auto cudnn = cuda::CudnnAttention::Create(h.H, h.KV, h.hd, 1.0f / std::sqrt(float(h.hd)));
    ASSERT_TRUE(cudnn.ok()) << cudnn.status();
    RunAttnCase({h.H, h.KV, h.hd, 16, mixed}, seed++, false, 8, cudnn->get());
    RunAttnCase({h.H, h.KV, h.hd, 3, {{0, 733}}}, seed++, false, 8, cudnn->get());
    RunAttnCase({h.H, h.KV, h.hd, 16, {{300, 600}, {0, 257}, {1000, 1}}}, seed++, false, 8,
                cudnn->get());
  }
  // Past 4096 keys (buckets of 1024) on small heads (the CPU reference is quadratic).
  auto small = cuda::CudnnAttention::Create(4, 2, 16, 0.25f);
  ASSERT_TRUE(small.ok()) << small.status();
  RunAttnCase({4, 2, 16, 16, {{3500, 900}, {4000, 97}}}, seed++, false, 8, small->get());
}

// Plans from the background builder (ReadyOrQueue; built with the builder's own cuDNN handle)
// run on the caller's handle and match the reference; Run then builds none of its own.
TEST(CudnnAttention, BackgroundBuiltPlansMatchCpuReference) {
  ATTNRES_REQUIRE_GPU();
  if (!cuda::CudnnAttention::Built()) GTEST_SKIP() << "built without cuDNN";
  const std::vector<std::pair<int, int>> seqs = {{300, 600}, {0, 257}, {1000, 1}};
  auto cudnn = cuda::CudnnAttention::Create(32, 8, 128, 1.0f / std::sqrt(128.0f));
  ASSERT_TRUE(cudnn.ok()) << cudnn.status();
  for (const auto& [start, n] : seqs) EXPECT_FALSE((*cudnn)->ReadyOrQueue(n, start + n));
  (*cudnn)->WaitForQueued();
  for (const auto& [start, n] : seqs) EXPECT_TRUE((*cudnn)->ReadyOrQueue(n, start + n));
  ASSERT_EQ((*cudnn)->cached_plans(), 3u);  // (768, 1024), (512, 512), (256, 1024)
  RunAttnCase({32, 8, 128, 16, seqs}, 400, false, 8, cudnn->get());
  EXPECT_EQ((*cudnn)->cached_plans(), 3u) << "Run built a plan the builder had built";
}

}  // namespace
}  // namespace attnres
