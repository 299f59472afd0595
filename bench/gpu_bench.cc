// End-to-end step benchmarks of the CUDA runner at Llama-3.2-1B / Llama-3.1-8B shapes (standard
// residual and Block AttnRes with 8 blocks), with seeded random weights made on the device:
// batch-1 and batch-64 decode at 512-token contexts against the bandwidth bound, 256-sequence
// decode throughput (8B), and a 4096-token prefill against the bf16 GEMM peak. Ceilings are the
// H200 figures measured in docs/GPU_MACHINE.md; decode rows also give the fraction of this card's
// own copy ceiling, measured at start (bench/device_ceiling.h). Prints one table row per
// measurement; with --trace FILE, also each timed step's kernels in place (bench/kernel_trace.h).
#include <cuda_runtime.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/str_split.h"
#include "bench/device_ceiling.h"
#include "bench/kernel_trace.h"
#include "models/cuda/cuda_runner.h"
#include "models/tools/random_model.h"

namespace attnres {
namespace {

constexpr double kPeakBytesPerS = 4.28e12;  // device-to-device copy, read + write
constexpr double kPeakFlops = 785e12;        // cuBLAS bf16 8192^3

// A whole number in [lo, hi], all of `text`, into *out (untouched otherwise).
bool ParseWhole(const char* text, long lo, long hi, int* out) {
  char* end = nullptr;
  const long n = std::strtol(text, &end, 10);
  if (*text == '\0' || *end != '\0' || n < lo || n > hi) return false;
  *out = static_cast<int>(n);
  return true;
}

// Sequences (start_pos, new tokens), each on its own run of pages.
StepBatch MakeBatch(const std::vector<std::pair<int, int>>& seqs, int page_size, int vocab,
                    const SamplingParams* sampling) {
  StepBatch b;
  b.query_indptr = {0};
  b.kv_page_indptr = {0};
  int next_page = 0;
  for (const auto& [start, n] : seqs) {
    for (int p = start; p < start + n; ++p) {
      b.token_ids.push_back(static_cast<int32_t>((p * 7919u + b.seqs.size() * 31u) % vocab));
      b.positions.push_back(p);
    }
    b.query_indptr.push_back(b.num_tokens());
    const int used = (start + n + page_size - 1) / page_size;
    for (int i = 0; i < used; ++i) b.kv_page_indices.push_back(next_page++);
    b.kv_page_indptr.push_back(static_cast<int32_t>(b.kv_page_indices.size()));
    b.kv_last_page_len.push_back(start + n - (used - 1) * page_size);
    SequenceBatchEntry e;
    e.num_new_tokens = n;
    e.start_pos = start;
    e.sample = true;
    e.sampling = sampling;
    b.seqs.push_back(e);
  }
  return b;
}

// Median wall time of one Execute (it ends with the step's device-to-host copy and sync).
// Median of `reps` timed steps, after at least kWarmSeconds of untimed ones (at least 2: plans,
// first touches). The warm-up is long so that the card's power management settles on the step
// being timed: right after the KV-filling prefills, H200s sit at their power cap with the SM
// clock cut to ~1550 MHz for a few hundred ms (bench/BENCHMARKS.md run 22).
constexpr double kWarmSeconds = 1.0;
double MedianStepSeconds(ModelRunner& r, const StepBatch& b, int reps) {
  auto step = [&] {
    const auto start = std::chrono::steady_clock::now();
    auto out = r.Execute(b);
    if (!out.ok()) {
      std::fprintf(stderr, "Execute failed: %s\n", std::string(out.status().message()).c_str());
      std::exit(1);
    }
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  double warm = 0;
  for (int i = 0; i < 2 || warm < kWarmSeconds; ++i) warm += step();
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) t.push_back(step());
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

struct Shape {
  double weight_bytes_read;  // per decode step: every matrix + the head, not the embedding table
  double matmul_params;      // per token, for 2*N*T FLOPs
  double kv_bytes_per_token;
};

Shape ShapeOf(const ModelConfig& c) {
  const double d = c.hidden_size, f = c.intermediate_size, q = c.q_dim(), kv = c.kv_dim();
  const double layer = d * (q + 2 * kv) + d * q + 3 * d * f;
  const double head = double(c.vocab_size) * d;
  Shape s;
  s.matmul_params = c.num_layers * layer + head;
  s.weight_bytes_read = 2.0 * s.matmul_params;
  s.kv_bytes_per_token = 2.0 * 2.0 * c.num_layers * kv;
  return s;
}

void Row(const std::string& model, const std::string& what, double ms, const std::string& vs) {
  std::printf("| %-15s | %-34s | %9.3f ms | %s |\n", model.c_str(), what.c_str(), ms * 1e3,
              vs.c_str());
  std::fflush(stdout);
}

struct BenchFlags {
  bool cuda_graphs = true;
  int tensor_parallel = 1;
  bool decode_only = false;   // batch 1 and 64 decode only (quick sweeps)
  bool prefill_only = false;  // the 4096-token prefill only
  // Device memory taken before the runner allocates, so its weights and buffers land elsewhere
  // in HBM (to see how much a step time depends on where they land).
  int offset_mib = 0;
  // Decode steps sample at this temperature (no truncation); 0: greedy.
  float temperature = 0.0f;
  // Decode steps ask for the sampled tokens' logprobs with this many alternatives; -1: none.
  int logprobs = -1;
  // With N >= 0, one more prefill row: the 4096 tokens scored (prompt logprobs with N
  // alternatives for each of the 4095 it predicts).
  int prompt_logprobs = -1;
  // The runner's max_num_seqs (what a head call holds, and scored prompts' chunks follow);
  // decode batches above it are skipped.
  int max_num_seqs = 256;
  // Where each measurement's traced steps go, one kernel per line (tab-separated); null: none.
  std::FILE* trace = nullptr;
  // The decode batches to time, in order; empty: 1 and 64, and 256 on the 8B shapes unless
  // decode_only. Batches above max_num_seqs are skipped either way.
  std::vector<int> decode_batches;
};

// A comma-separated list of whole numbers in [lo, hi] (at least one), into *out.
bool ParseWholeList(const char* text, long lo, long hi, std::vector<int>* out) {
  std::vector<int> values;
  for (const absl::string_view item : absl::StrSplit(text, ',')) {
    int v = 0;
    if (!ParseWhole(std::string(item).c_str(), lo, hi, &v)) return false;
    values.push_back(v);
  }
  *out = std::move(values);
  return true;
}

// Traces kTracedSteps more steps of `what` (after its timed ones): writes their kernels to
// flags.trace (preset, what, step, kernel, start and duration and gap from the previous kernel's
// end in us, stream, grid, block, name) and prints the medians of their kernel count, span
// (first start to last end), busy time (the union of the kernels' spans) and the rest (gaps).
constexpr int kTracedSteps = 3;
void TraceSteps(ModelRunner& r, const StepBatch& b, const std::string& preset,
                const std::string& what, std::FILE* out) {
  std::vector<double> spans, busy;
  size_t kernels = 0;
  for (int step = 0; step < kTracedSteps; ++step) {
    bench::KernelTrace trace;
    if (!trace.Start()) std::exit(1);
    if (!r.Execute(b).ok()) std::exit(1);
    const std::vector<bench::KernelSpan> k = trace.Stop();
    if (k.empty()) continue;
    kernels = k.size();
    const uint64_t t0 = k.front().start_ns;
    uint64_t last_end = t0, covered = 0;
    for (size_t i = 0; i < k.size(); ++i) {
      const double gap = (static_cast<double>(k[i].start_ns) - static_cast<double>(last_end)) / 1e3;
      std::fprintf(out, "%s\t%s\t%d\t%zu\t%.3f\t%.3f\t%.3f\t%u\t%dx%d\t%d\t%s\n", preset.c_str(),
                   what.c_str(), step, i, (k[i].start_ns - t0) / 1e3,
                   (k[i].end_ns - k[i].start_ns) / 1e3, i == 0 ? 0.0 : gap, k[i].stream,
                   k[i].grid_x, k[i].grid_y, k[i].block_x, k[i].name.c_str());
      const uint64_t from = std::max(k[i].start_ns, last_end);
      if (k[i].end_ns > from) covered += k[i].end_ns - from;
      last_end = std::max(last_end, k[i].end_ns);
    }
    spans.push_back((last_end - t0) / 1e3);
    busy.push_back(covered / 1e3);
  }
  std::fflush(out);
  if (spans.empty()) return;
  std::sort(spans.begin(), spans.end());
  std::sort(busy.begin(), busy.end());
  const double span = spans[spans.size() / 2], on = busy[busy.size() / 2];
  char buf[120];
  std::snprintf(buf, sizeof(buf),
                "traced: %zu kernels, first start to last end; busy %.1f us, "
                "gaps %.1f us",
                kernels, on, span - on);
  Row(preset, what + " span", span / 1e6, buf);
}

// card_bytes_per_s: this card's copy ceiling, measured at start (0: unknown).
void Bench(const std::string& preset, bool big, const BenchFlags& flags, double card_bytes_per_s) {
  auto config = RandomModelPreset(preset);
  if (!config.ok()) std::exit(1);
  const ModelConfig& c = *config;
  RunnerOptions o;
  o.kv_page_size = 16;
  o.max_num_seqs = flags.max_num_seqs;
  o.max_num_batched_tokens = 4096;
  o.kv_cache_bytes = big ? (24ll << 30) : (12ll << 30);
  o.cuda_graphs = flags.cuda_graphs;
  o.tensor_parallel = flags.tensor_parallel;
  // Declared before the runner, so it is freed after it.
  std::unique_ptr<void, decltype(&cudaFree)> offset(nullptr, cudaFree);
  if (flags.offset_mib > 0) {
    void* p = nullptr;
    if (cudaMalloc(&p, static_cast<size_t>(flags.offset_mib) << 20) != cudaSuccess) {
      std::fprintf(stderr, "--offset-mib %d: cannot allocate it\n", flags.offset_mib);
      std::exit(1);
    }
    offset.reset(p);
  }
  auto runner = CreateRandomCudaRunner(c, 1, o);
  if (!runner.ok()) {
    std::fprintf(stderr, "%s: %s\n", preset.c_str(), std::string(runner.status().message()).c_str());
    std::exit(1);
  }
  ModelRunner& r = **runner;
  const Shape s = ShapeOf(c);
  SamplingParams greedy, sampled;
  greedy.temperature = 0.0f;
  sampled.temperature = flags.temperature;
  sampled.seed = 1234;
  char buf[200];
  const int ctx = 512;
  std::vector<int> batches = flags.decode_batches;
  if (batches.empty()) {
    batches = {1, 64};
    if (big && !flags.decode_only) batches.push_back(256);
  }
  for (int batch : batches) {
    if (flags.prefill_only || batch > flags.max_num_seqs) continue;
    std::vector<std::pair<int, int>> prefill, decode;
    for (int i = 0; i < batch; ++i) {
      prefill.push_back({0, ctx});
      decode.push_back({ctx, 1});
    }
    // Fill the KV of every sequence (in chunks that fit the token budget), then time decode.
    for (int first = 0; first < batch; first += 8) {
      std::vector<std::pair<int, int>> part(prefill.begin() + first,
                                            prefill.begin() + std::min(batch, first + 8));
      StepBatch pb = MakeBatch(part, o.kv_page_size, c.vocab_size, &greedy);
      // pages of this part start where MakeBatch numbering says: offset them to the sequence's.
      const int pages_per_seq = (ctx + 1 + o.kv_page_size - 1) / o.kv_page_size;
      for (size_t i = 0; i < part.size(); ++i) {
        for (int k = pb.kv_page_indptr[i]; k < pb.kv_page_indptr[i + 1]; ++k) {
          pb.kv_page_indices[k] = (first + i) * pages_per_seq + (k - pb.kv_page_indptr[i]);
        }
      }
      if (!r.Execute(pb).ok()) std::exit(1);
    }
    StepBatch db = MakeBatch(decode, o.kv_page_size, c.vocab_size, &sampled);
    for (SequenceBatchEntry& e : db.seqs) e.logprobs = flags.logprobs;
    const int pages_per_seq = (ctx + 1 + o.kv_page_size - 1) / o.kv_page_size;
    for (int i = 0; i < batch; ++i) {
      for (int k = db.kv_page_indptr[i]; k < db.kv_page_indptr[i + 1]; ++k) {
        db.kv_page_indices[k] = i * pages_per_seq + (k - db.kv_page_indptr[i]);
      }
    }
    const double t = MedianStepSeconds(r, db, 20);
    const std::string what = "decode batch " + std::to_string(batch) + ", ctx 512";
    const double bytes = s.weight_bytes_read + batch * (ctx + 1) * s.kv_bytes_per_token;
    std::snprintf(buf, sizeof(buf),
                  "%.2f TB/s = %.1f%% of bound (%.1f%% of this card's); %.0f tok/s",
                  bytes / t / 1e12, 100.0 * bytes / t / kPeakBytesPerS,
                  card_bytes_per_s > 0.0 ? 100.0 * bytes / t / card_bytes_per_s : 0.0, batch / t);
    Row(preset, what, t, buf);
    if (flags.trace) TraceSteps(r, db, preset, what, flags.trace);
  }
  if (flags.decode_only) return;
  // One 4096-token prefill (one sequence).
  StepBatch pb = MakeBatch({{0, 4096}}, o.kv_page_size, c.vocab_size, &greedy);
  const double t = MedianStepSeconds(r, pb, 5);
  const double T = 4096, flops = 2.0 * T * (s.matmul_params - double(c.vocab_size) * c.hidden_size) +
                               2.0 * c.vocab_size * c.hidden_size;
  const double attn = 4.0 * T * T / 2 * c.q_dim() * c.num_layers;
  std::snprintf(buf, sizeof(buf), "%.0f TFLOP/s GEMM-model = %.1f%% of peak (+%.1f TFLOP attn)",
                flops / t / 1e12, 100.0 * flops / t / kPeakFlops, attn / 1e12);
  Row(preset, "prefill 4096 tokens", t, buf);
  if (flags.trace) TraceSteps(r, pb, preset, "prefill 4096 tokens", flags.trace);
  if (flags.prompt_logprobs < 0) return;
  pb.seqs[0].prompt_logprobs = flags.prompt_logprobs;
  const double scored = MedianStepSeconds(r, pb, 5);
  std::snprintf(buf, sizeof(buf), "%.1f us per prompt token; +%.1f%% over the prefill",
                scored / 4095 * 1e6, 100.0 * (scored / t - 1.0));
  Row(preset, "prefill 4096, prompt logprobs " + std::to_string(flags.prompt_logprobs), scored,
      buf);
}

}  // namespace
}  // namespace attnres

int main(int argc, char** argv) {
  // attnres-gpu-bench [--no-cuda-graphs] [--tensor-parallel N] [--decode-only | --prefill-only]
  //                   [--offset-mib N] [--temperature T] [--logprobs N]
  //                   [--prompt-logprobs N] [--max-num-seqs N] [--decode-batches B,B...]
  //                   [--trace FILE] [preset...]
  // attnres-gpu-bench --list-presets: the default presets, one per line.
  const std::vector<std::string> kDefaultPresets = {"llama-1b", "llama-1b-block", "llama-8b",
                                                    "llama-8b-block"};
  if (argc == 2 && std::string(argv[1]) == "--list-presets") {
    for (const auto& p : kDefaultPresets) std::printf("%s\n", p.c_str());
    return 0;
  }
  attnres::BenchFlags flags;
  std::vector<std::string> presets;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--no-cuda-graphs") {
      flags.cuda_graphs = false;
    } else if (a == "--decode-only") {
      flags.decode_only = true;
    } else if (a == "--prefill-only") {
      flags.prefill_only = true;
    } else if (a == "--tensor-parallel" && i + 1 < argc) {
      flags.tensor_parallel = std::atoi(argv[++i]);
    } else if (a == "--offset-mib" && i + 1 < argc) {
      if (!attnres::ParseWhole(argv[++i], 0, 1 << 20, &flags.offset_mib)) {
        std::fprintf(stderr, "--offset-mib %s: want a whole number of MiB, 0 to %d\n", argv[i],
                     1 << 20);
        return 2;
      }
    } else if (a == "--temperature" && i + 1 < argc) {
      char* end = nullptr;
      const float t = std::strtof(argv[++i], &end);
      if (*argv[i] == '\0' || *end != '\0' || !(t >= 0.0f && t <= 100.0f)) {
        std::fprintf(stderr, "--temperature %s: want a number from 0 (greedy) to 100\n", argv[i]);
        return 2;
      }
      flags.temperature = t;
    } else if ((a == "--logprobs" || a == "--prompt-logprobs") && i + 1 < argc) {
      if (!attnres::ParseWhole(argv[++i], 0, 20,
                               a == "--logprobs" ? &flags.logprobs : &flags.prompt_logprobs)) {
        std::fprintf(stderr, "%s %s: want a number of alternatives from 0 to 20\n", a.c_str(),
                     argv[i]);
        return 2;
      }
    } else if (a == "--max-num-seqs" && i + 1 < argc) {
      if (!attnres::ParseWhole(argv[++i], 1, 4096, &flags.max_num_seqs)) {
        std::fprintf(stderr, "--max-num-seqs %s: want a number from 1 to 4096\n", argv[i]);
        return 2;
      }
    } else if (a == "--decode-batches" && i + 1 < argc) {
      if (!attnres::ParseWholeList(argv[++i], 1, 4096, &flags.decode_batches)) {
        std::fprintf(stderr, "--decode-batches %s: want batch sizes from 1 to 4096, like 1,32,64\n",
                     argv[i]);
        return 2;
      }
    } else if (a == "--trace" && i + 1 < argc) {
      flags.trace = std::fopen(argv[++i], "w");
      if (!flags.trace) {
        std::fprintf(stderr, "--trace %s: cannot write it\n", argv[i]);
        return 2;
      }
    } else {
      presets.push_back(a);
    }
  }
  if (flags.decode_only && flags.prefill_only) {
    std::fprintf(stderr, "--decode-only and --prefill-only exclude each other\n");
    return 2;
  }
  if (!attnres::CudaDeviceAvailable()) {
    std::printf("no CUDA device: skipped\n");
    return 0;
  }
  if (presets.empty()) presets = kDefaultPresets;
  cudaDeviceProp prop;
  cudaGetDeviceProperties(&prop, 0);
  const double card_bytes_per_s = attnres::MeasuredCopyBytesPerS();
  std::printf("%s: copy %.2f TB/s measured (read + write); the bound is the H200's %.2f TB/s\n",
              prop.name, card_bytes_per_s / 1e12, attnres::kPeakBytesPerS / 1e12);
  std::printf(
      "CUDA graphs %s, tensor parallel %d, decode sampling %s%s\n",
      flags.cuda_graphs ? "on" : "off", flags.tensor_parallel,
      flags.temperature == 0.0f ? "greedy"
                                : ("at temperature " + std::to_string(flags.temperature)).c_str(),
      flags.logprobs < 0 ? "" : (" with logprobs " + std::to_string(flags.logprobs)).c_str());
  std::printf("| model           | measurement                        | step time    | vs ceiling |\n");
  std::printf("|---|---|---|---|\n");
  for (const auto& p : presets) {
    attnres::Bench(p, p.find("8b") != std::string::npos, flags, card_bytes_per_s);
  }
  if (flags.trace) std::fclose(flags.trace);
  return 0;
}
