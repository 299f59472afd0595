// attnres-overlap-bench: can memory-bound work run beside the prefill GEMMs on a few SMs spared
// for it? The question behind moving AttnRes phase 1 (or any mix traffic) off a prefill's
// critical path: cuBLASLt's GEMMs take every SM, so a kernel on a second stream only runs in
// their tails, unless the GEMMs are planned for fewer SMs (CUBLASLT_MATMUL_DESC_SM_COUNT_TARGET).
//
// Measures, on random bf16 data (a GEMM's speed at the power cap depends on its data):
//   1. a persistent copy kernel of S blocks alone (bytes read + written per second);
//   2. the four GEMMs of a Llama-3.1-8B layer at 4096 tokens, 5 layers back to back, planned for
//      every SM and for (SMs - S), alone and with the copy kernel of S blocks running beside them
//      on a second stream until they end (its rate over that time);
//   3. the every-SM plan beside the copy kernel (what happens without a target).
// Plain cuBLASLt (not models/cuda/gemm.cc, which has no SM target), so the figures are the
// library's. Findings: bench/BENCHMARKS.md run 44.
#include <cublasLt.h>
#include <cuda_bf16.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <vector>

namespace {

void Check(int status, const char* what) {
  if (status != 0) {
    std::fprintf(stderr, "attnres-overlap-bench: %s failed (status %d)\n", what, status);
    std::exit(1);
  }
}

// Copies src to dst (n16 16-byte words; n16 a multiple of 8 * threads), 8 loads in flight per
// thread, over the buffer up to max_passes times; stops at the next 1024 words once *stop is
// set. Adds the words it copied to *copied.
__global__ void __launch_bounds__(512)
    SideCopy(const uint4* __restrict__ src, uint4* __restrict__ dst, size_t n16, int max_passes,
             const volatile int* stop, unsigned long long* copied) {
  const size_t threads = size_t(gridDim.x) * blockDim.x;
  unsigned long long mine = 0;
  for (int pass = 0; pass < max_passes && !(stop && *stop); ++pass) {
    for (size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x; i + 7 * threads < n16;
         i += 8 * threads) {
      uint4 v[8];
#pragma unroll
      for (int u = 0; u < 8; ++u) v[u] = __ldcs(src + i + u * threads);
#pragma unroll
      for (int u = 0; u < 8; ++u) __stcs(dst + i + u * threads, v[u]);
      mine += 8;
      if (stop && (mine & 1023) == 0 && *stop) break;
    }
  }
  atomicAdd(copied, mine);
}

__global__ void SetFlag(int* flag) { *flag = 1; }

// Uniform bf16 in [-1, 1) from a hash of the index.
__global__ void FillRandom(__nv_bfloat16* p, size_t n, uint32_t seed) {
  for (size_t i = size_t(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += size_t(gridDim.x) * blockDim.x) {
    uint32_t h = uint32_t(i) * 2654435761u ^ seed;
    h ^= h >> 15;
    h *= 2246822519u;
    h ^= h >> 13;
    h *= 3266489917u;
    h ^= h >> 16;
    p[i] = __float2bfloat16(float(h >> 8) * (2.0f / 16777216.0f) - 1.0f);
  }
}

// y[M, N] = x[M, K] . w[N, K]^T (row-major, as models/cuda/gemm.cc), planned for `sms` SMs (0:
// the device's).
struct LtGemm {
  cublasLtMatmulDesc_t op = nullptr;
  cublasLtMatrixLayout_t a = nullptr, b = nullptr, c = nullptr;
  cublasLtMatmulAlgo_t algo;
};

LtGemm Plan(cublasLtHandle_t h, int M, int N, int K, int sms, size_t workspace) {
  LtGemm g;
  Check(cublasLtMatmulDescCreate(&g.op, CUBLAS_COMPUTE_32F, CUDA_R_32F), "matmul desc");
  const cublasOperation_t t = CUBLAS_OP_T, n = CUBLAS_OP_N;
  Check(cublasLtMatmulDescSetAttribute(g.op, CUBLASLT_MATMUL_DESC_TRANSA, &t, sizeof(t)), "transa");
  Check(cublasLtMatmulDescSetAttribute(g.op, CUBLASLT_MATMUL_DESC_TRANSB, &n, sizeof(n)), "transb");
  if (sms > 0) {
    Check(cublasLtMatmulDescSetAttribute(g.op, CUBLASLT_MATMUL_DESC_SM_COUNT_TARGET, &sms,
                                         sizeof(sms)),
          "SM count target");
  }
  Check(cublasLtMatrixLayoutCreate(&g.a, CUDA_R_16BF, K, N, K), "layout w");
  Check(cublasLtMatrixLayoutCreate(&g.b, CUDA_R_16BF, K, M, K), "layout x");
  Check(cublasLtMatrixLayoutCreate(&g.c, CUDA_R_16BF, N, M, N), "layout y");
  cublasLtMatmulPreference_t pref;
  Check(cublasLtMatmulPreferenceCreate(&pref), "preference");
  Check(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                             &workspace, sizeof(workspace)),
        "workspace preference");
  cublasLtMatmulHeuristicResult_t r;
  int found = 0;
  Check(cublasLtMatmulAlgoGetHeuristic(h, g.op, g.a, g.b, g.c, g.c, pref, 1, &r, &found),
        "heuristic");
  Check(found ? 0 : 1, "heuristic (no algorithm)");
  cublasLtMatmulPreferenceDestroy(pref);
  g.algo = r.algo;
  return g;
}

}  // namespace

int main() {
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::printf("no CUDA device: skipped\n");
    return 0;
  }
  cudaDeviceProp prop;
  Check(cudaGetDeviceProperties(&prop, 0), "device properties");
  const int sms = prop.multiProcessorCount;
  constexpr int kM = 4096, kLayers = 5;
  const int shapes[4][2] = {{6144, 4096}, {4096, 4096}, {28672, 4096}, {4096, 14336}};  // N, K
  cublasLtHandle_t h;
  Check(cublasLtCreate(&h), "cublasLt");
  const size_t workspace_bytes = 64u << 20;
  void* workspace;
  Check(cudaMalloc(&workspace, workspace_bytes), "workspace");
  __nv_bfloat16 *x, *w, *y;
  Check(cudaMalloc(&x, size_t(kM) * 14336 * 2), "x");
  Check(cudaMalloc(&w, size_t(28672) * 14336 * 2), "w");
  Check(cudaMalloc(&y, size_t(kM) * 28672 * 2), "y");
  FillRandom<<<1024, 256>>>(x, size_t(kM) * 14336, 1);
  FillRandom<<<1024, 256>>>(w, size_t(28672) * 14336, 2);
  const size_t side_bytes = size_t(2) << 30;  // 2 GiB copied into 2 GiB
  uint4 *src, *dst;
  Check(cudaMalloc(&src, side_bytes), "copy source");
  Check(cudaMalloc(&dst, side_bytes), "copy destination");
  Check(cudaMemset(src, 1, side_bytes), "copy source fill");
  unsigned long long* copied;
  int* stop;
  Check(cudaMalloc(&copied, sizeof(*copied)), "counter");
  Check(cudaMalloc(&stop, sizeof(*stop)), "flag");
  cudaStream_t main_stream, side_stream;
  Check(cudaStreamCreateWithFlags(&main_stream, cudaStreamNonBlocking), "stream");
  Check(cudaStreamCreateWithFlags(&side_stream, cudaStreamNonBlocking), "stream");
  cudaEvent_t g0, g1, s0, s1;
  for (cudaEvent_t* e : {&g0, &g1, &s0, &s1}) Check(cudaEventCreate(e), "event");
  Check(cudaDeviceSynchronize(), "setup");
  const size_t n16 = side_bytes / 16;
  double flops = 0;
  for (const auto& s : shapes) flops += 2.0 * kM * s[0] * s[1] * kLayers;

  // One run: the copy kernel of `side` blocks (if any) on side_stream until the GEMMs end, and
  // the GEMMs on main_stream. Returns the GEMMs' ms; *side_rate: the copy's bytes per second.
  auto run = [&](const std::vector<LtGemm>& gemms, int side, double* side_rate) {
    Check(cudaMemset(copied, 0, sizeof(*copied)), "counter reset");
    Check(cudaMemset(stop, 0, sizeof(*stop)), "flag reset");
    Check(cudaDeviceSynchronize(), "sync");
    if (side > 0) {
      Check(cudaEventRecord(s0, side_stream), "event");
      SideCopy<<<side, 512, 0, side_stream>>>(src, dst, n16, 1000, stop, copied);
      Check(cudaEventRecord(s1, side_stream), "event");
    }
    const float one = 1.0f, zero = 0.0f;
    Check(cudaEventRecord(g0, main_stream), "event");
    for (int l = 0; l < kLayers; ++l) {
      for (const LtGemm& g : gemms) {
        Check(cublasLtMatmul(h, g.op, &one, w, g.a, x, g.b, &zero, y, g.c, y, g.c, &g.algo,
                             workspace, workspace_bytes, main_stream),
              "matmul");
      }
    }
    Check(cudaEventRecord(g1, main_stream), "event");
    SetFlag<<<1, 1, 0, main_stream>>>(stop);
    Check(cudaDeviceSynchronize(), "run");
    float ms = 0, side_ms = 0;
    Check(cudaEventElapsedTime(&ms, g0, g1), "elapsed");
    if (side > 0) {
      Check(cudaEventElapsedTime(&side_ms, s0, s1), "elapsed");
      unsigned long long words = 0;
      Check(cudaMemcpy(&words, copied, sizeof(words), cudaMemcpyDeviceToHost), "counter");
      *side_rate = words * 32.0 / (side_ms * 1e-3);
    }
    return double(ms);
  };
  auto median = [&](const std::vector<LtGemm>& gemms, int side, double* side_rate) {
    std::vector<double> ms, rate;
    run(gemms, side, side_rate);  // warm-up
    for (int i = 0; i < 5; ++i) {
      double r = 0;
      ms.push_back(run(gemms, side, &r));
      rate.push_back(r);
    }
    std::sort(ms.begin(), ms.end());
    std::sort(rate.begin(), rate.end());
    if (side_rate) *side_rate = rate[2];
    return ms[2];
  };

  std::printf("%s, %d SMs; copy kernel of S blocks (512 threads), 5 layers of the 8B prefill's "
              "GEMMs at %d tokens\n",
              prop.name, sms, kM);
  std::printf("| measurement | ms | rate |\n|---|---|---|\n");
  for (int side : {4, 8, 16, sms}) {
    Check(cudaMemset(copied, 0, sizeof(*copied)), "counter reset");
    Check(cudaEventRecord(s0, side_stream), "event");
    SideCopy<<<side, 512, 0, side_stream>>>(src, dst, n16, 1, nullptr, copied);
    Check(cudaEventRecord(s1, side_stream), "event");
    Check(cudaDeviceSynchronize(), "copy");
    float ms = 0;
    Check(cudaEventElapsedTime(&ms, s0, s1), "elapsed");
    unsigned long long words = 0;
    Check(cudaMemcpy(&words, copied, sizeof(words), cudaMemcpyDeviceToHost), "counter");
    std::printf("| copy alone, S = %d | %.3f | %.0f GB/s read + written |\n", side, ms,
                words * 32.0 / (ms * 1e-3) / 1e9);
  }
  std::vector<LtGemm> full;
  for (const auto& s : shapes) full.push_back(Plan(h, kM, s[0], s[1], 0, workspace_bytes));
  for (int side : {8, 12}) {
    std::vector<LtGemm> spared;
    for (const auto& s : shapes) {
      spared.push_back(Plan(h, kM, s[0], s[1], sms - side, workspace_bytes));
    }
    const double all_ms = median(full, 0, nullptr);
    const double spared_ms = median(spared, 0, nullptr);
    double rate = 0, rate_full = 0;
    const double beside_ms = median(spared, side, &rate);
    const double full_beside_ms = median(full, side, &rate_full);
    std::printf("| GEMMs, every SM | %.3f | %.0f TFLOP/s |\n", all_ms, flops / (all_ms * 1e-3) / 1e12);
    std::printf("| GEMMs planned for %d SMs | %.3f | %+.1f%% |\n", sms - side, spared_ms,
                100 * (spared_ms / all_ms - 1));
    std::printf("| ... beside the copy, S = %d | %.3f | %+.1f%%; the copy %.0f GB/s |\n", side,
                beside_ms, 100 * (beside_ms / all_ms - 1), rate / 1e9);
    std::printf("| GEMMs for every SM beside the copy, S = %d | %.3f | %+.1f%%; the copy %.0f GB/s |\n",
                side, full_beside_ms, 100 * (full_beside_ms / all_ms - 1), rate_full / 1e9);
  }
  return 0;
}
