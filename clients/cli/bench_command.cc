// `attnres-cli bench`: a closed-loop load generator. --concurrency workers share one channel and
// take the next of --requests requests (random token-id prompts of --prompt-tokens, optionally
// sharing a --prefix-tokens prefix; greedy, EOS ignored so each produces --max-tokens) over the
// streaming RPC, timing every chunk. Prints a progress bar on stderr and the report
// (bench_report.h) on stdout, or one JSON object with --json.
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <iostream>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "bench_report.h"
#include "cli_common.h"
#include "commands.h"

namespace attnres::cli {
namespace {

using Clock = std::chrono::steady_clock;

struct BenchFlags {
  int concurrency = 8;
  int requests = 64;
  int prompt_tokens = 32;
  int prefix_tokens = 0;  // leading tokens shared by every prompt (prefix-cache workload)
  int max_tokens = 64;
  uint64_t seed = 0;
  bool json = false;
  bool no_progress = false;
};

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }

// Random prompt token ids, avoiding the model's special tokens.
std::vector<std::vector<int32_t>> MakePrompts(const BenchFlags& f, const v1::ModelInfo& info) {
  std::mt19937_64 rng(f.seed);
  const int vocab = std::max(2, info.vocab_size());
  auto special = [&](int32_t id) {
    if (id == info.bos_token_id()) return true;
    for (int32_t e : info.eos_token_ids()) {
      if (id == e) return true;
    }
    return false;
  };
  auto draw = [&] {
    int32_t id;
    do {
      id = static_cast<int32_t>(rng() % static_cast<uint64_t>(vocab));
    } while (special(id));
    return id;
  };
  std::vector<int32_t> prefix(std::min(f.prefix_tokens, f.prompt_tokens));
  for (int32_t& id : prefix) id = draw();
  std::vector<std::vector<int32_t>> prompts(f.requests, prefix);
  for (auto& p : prompts) {
    while (static_cast<int>(p.size()) < f.prompt_tokens) p.push_back(draw());
  }
  return prompts;
}

BenchRequestResult RunOne(v1::AttnRes::Stub* stub, const CliState& state, const BenchFlags& f,
                          const std::vector<int32_t>& prompt, int index) {
  v1::GenerateRequest request;
  request.set_request_id("bench-" + std::to_string(index));
  request.mutable_prompt()->mutable_token_ids()->mutable_ids()->Add(prompt.begin(), prompt.end());
  request.set_max_tokens(f.max_tokens);
  request.mutable_sampling()->set_temperature(0.0f);
  request.set_ignore_eos(true);

  BenchRequestResult r;
  r.prompt_tokens = static_cast<int>(prompt.size());
  grpc::ClientContext context;
  ConfigureContext(state, &context);
  const Clock::time_point start = Clock::now();
  Clock::time_point last = start;
  auto reader = stub->GenerateStream(&context, request);
  v1::GenerateStreamResponse chunk;
  while (reader->Read(&chunk)) {
    if (chunk.token_ids_size() > 0) {
      const Clock::time_point now = Clock::now();
      if (r.ttft_s < 0) {
        r.ttft_s = Seconds(now - start);
      } else {
        r.itl_s.push_back(Seconds(now - last));
      }
      last = now;
      r.output_tokens += chunk.token_ids_size();
    }
    if (chunk.has_usage()) r.cached_prompt_tokens = chunk.usage().cached_prompt_tokens();
  }
  const grpc::Status status = reader->Finish();
  r.e2e_s = Seconds(Clock::now() - start);
  r.ok = status.ok();
  if (!r.ok) r.error_code = StatusCodeName(status.error_code());
  return r;
}

// Redraws "[=====>    ] done/total" on stderr until `stop`.
class ProgressBar {
 public:
  ProgressBar(int total, const std::atomic<int>* done, const std::atomic<int>* failed)
      : total_(total), done_(done), failed_(failed), thread_([this] { Loop(); }) {}
  ~ProgressBar() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    thread_.join();
    Draw();
    std::fputc('\n', stderr);
  }

 private:
  void Loop() {
    std::unique_lock<std::mutex> lock(mu_);
    while (!cv_.wait_for(lock, std::chrono::milliseconds(200), [&] { return stop_; })) Draw();
  }
  void Draw() {
    constexpr int kWidth = 40;
    const int done = done_->load();
    if (!tty_ && done == last_drawn_ && !stop_) return;  // a log file gets one line per change
    last_drawn_ = done;
    const int filled = total_ > 0 ? kWidth * done / total_ : kWidth;
    std::string bar(filled, '=');
    if (filled < kWidth) bar += '>' + std::string(kWidth - filled - 1, ' ');
    std::fprintf(stderr, "\r[%s] %d/%d requests, %d failed, %.1f s", bar.c_str(), done, total_,
                 failed_->load(), Seconds(Clock::now() - start_));
    std::fflush(stderr);
  }

  const int total_;
  const std::atomic<int>* done_;
  const std::atomic<int>* failed_;
  const Clock::time_point start_ = Clock::now();
  const bool tty_ = isatty(STDERR_FILENO) != 0;
  int last_drawn_ = -1;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread thread_;  // last: starts after the fields it reads
};

int RunBench(const CliState& state, const BenchFlags& f) {
  auto stub = MakeStub(state);
  v1::ModelInfo info;
  {
    grpc::ClientContext context;
    ConfigureContext(state, &context);
    grpc::Status status = stub->GetModelInfo(&context, v1::GetModelInfoRequest(), &info);
    if (!status.ok()) return PrintRpcError(status);
  }
  const std::vector<std::vector<int32_t>> prompts = MakePrompts(f, info);
  std::vector<BenchRequestResult> results(f.requests);
  std::atomic<int> next{0}, done{0}, failed{0};
  const Clock::time_point start = Clock::now();
  {
    std::unique_ptr<ProgressBar> progress;
    if (!f.no_progress) progress = std::make_unique<ProgressBar>(f.requests, &done, &failed);
    std::vector<std::thread> workers;
    for (int w = 0; w < std::min(f.concurrency, f.requests); ++w) {
      workers.emplace_back([&] {
        for (int i = next++; i < f.requests; i = next++) {
          results[i] = RunOne(stub.get(), state, f, prompts[i], i);
          if (!results[i].ok) ++failed;
          ++done;
        }
      });
    }
    for (std::thread& t : workers) t.join();
  }
  const BenchReport report = BuildReport(results, f.concurrency, Seconds(Clock::now() - start));
  if (f.json) {
    std::cout << ReportToJson(report).dump(2) << std::endl;
  } else {
    std::cout << FormatReport(report) << std::flush;
  }
  return report.completed > 0 ? kExitOk : kExitRpcError;
}

}  // namespace

void AddBenchCommands(CLI::App& app, CliState& state) {
  auto f = std::make_shared<BenchFlags>();
  CLI::App* cmd = app.add_subcommand("bench", "Closed-loop load test over the streaming RPC");
  cmd->add_option("--concurrency", f->concurrency, "Requests in flight")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--requests", f->requests, "Requests in all")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--prompt-tokens", f->prompt_tokens, "Prompt length in tokens")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--prefix-tokens", f->prefix_tokens,
                  "Leading prompt tokens shared by all requests (exercises the prefix cache)")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--max-tokens", f->max_tokens, "Tokens generated per request (EOS ignored)")
      ->capture_default_str()
      ->check(CLI::PositiveNumber);
  cmd->add_option("--seed", f->seed, "Seed of the random prompts")->capture_default_str();
  cmd->add_flag("--json", f->json, "Print one JSON object (latencies in ms)");
  cmd->add_flag("--no-progress", f->no_progress, "No progress bar on stderr");
  cmd->callback([&state, f] { state.run = [&state, f] { return RunBench(state, *f); }; });
}

}  // namespace attnres::cli
