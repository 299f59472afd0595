// Persistent rank threads woken by a generation counter.
#include "models/parallel/rank_workers.h"

namespace attnres {

RankWorkers::RankWorkers(int world_size)
    : world_(world_size), status_(world_size), agree_(world_size, Verdict{this}) {
  for (int r = 1; r < world_; ++r) threads_.emplace_back([this, r] { Loop(r); });
}

RankWorkers::~RankWorkers() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  start_cv_.notify_all();
  for (std::thread& t : threads_) t.join();
}

void RankWorkers::Loop(int rank) {
  uint64_t seen = 0;
  for (;;) {
    const std::function<absl::Status(int)>* job;
    {
      std::unique_lock<std::mutex> lock(mu_);
      start_cv_.wait(lock, [&] { return stop_ || generation_ != seen; });
      if (stop_) return;
      seen = generation_;
      job = job_;
    }
    absl::Status st = (*job)(rank);
    std::lock_guard<std::mutex> lock(mu_);
    status_[rank] = std::move(st);
    if (--pending_ == 0) done_cv_.notify_one();
  }
}

absl::Status RankWorkers::Run(const std::function<absl::Status(int rank)>& fn) {
  if (world_ > 1) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      job_ = &fn;
      pending_ = world_ - 1;
      ++generation_;
    }
    start_cv_.notify_all();
  }
  status_[0] = fn(0);
  if (world_ > 1) {
    std::unique_lock<std::mutex> lock(mu_);
    done_cv_.wait(lock, [&] { return pending_ == 0; });
    job_ = nullptr;
  }
  for (const absl::Status& st : status_) {
    if (!st.ok()) return st;
  }
  return absl::OkStatus();
}

bool RankWorkers::Agree(bool ok) {
  if (!ok) any_failed_.store(true);
  agree_.arrive_and_wait();
  return agreed_;
}

}  // namespace attnres
