// RankWorkers: the threads of a tensor-parallel backend that drives every rank (a GPU, or a CPU
// share) from one process. Rank 0 runs on the caller's thread, every other rank on a persistent
// thread of its own (started once, woken per step: no thread is spawned per step). Run(fn) calls
// fn(rank) on every rank at once and returns when all have returned; Agree is a barrier that also
// tells each rank whether every rank succeeded so far, so that no rank enters a collective that a
// failed rank will never join. With one rank there are no threads and Run is a plain call.
#pragma once

#include <atomic>
#include <barrier>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/status/status.h"

namespace attnres {

class RankWorkers {
 public:
  explicit RankWorkers(int world_size);
  ~RankWorkers();
  RankWorkers(const RankWorkers&) = delete;
  RankWorkers& operator=(const RankWorkers&) = delete;

  int world_size() const { return world_; }

  // Calls fn(rank) for every rank concurrently (rank 0 on this thread) and waits for all of
  // them; returns the error of the lowest failing rank. One Run at a time.
  absl::Status Run(const std::function<absl::Status(int rank)>& fn);

  // Inside Run, called by every rank the same number of times: waits for all ranks and returns
  // whether every one of them passed ok = true this time.
  bool Agree(bool ok);

 private:
  void Loop(int rank);

  const int world_;
  std::mutex mu_;
  std::condition_variable start_cv_, done_cv_;
  const std::function<absl::Status(int)>* job_ = nullptr;  // the Run in progress
  uint64_t generation_ = 0;                                 // Runs started
  int pending_ = 0;                                         // worker ranks still in the job
  bool stop_ = false;
  std::vector<absl::Status> status_;  // [world]
  // The barrier's completion step (run once per Agree, after every rank arrived and before any
  // leaves) turns the round's failures into its verdict, so a rank already in the next round
  // cannot change what a slower one reads.
  struct Verdict {
    RankWorkers* self;
    void operator()() noexcept { self->agreed_ = !self->any_failed_.exchange(false); }
  };
  std::atomic<bool> any_failed_{false};
  bool agreed_ = true;  // the last round's verdict
  std::barrier<Verdict> agree_;
  std::vector<std::thread> threads_;  // ranks 1..world-1
};

}  // namespace attnres
