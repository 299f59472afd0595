// Thread communicators: ranks publish their buffer pointers, meet at a barrier, each computes its
// own result from every rank's buffer, and meet again before anyone may reuse a buffer.
#include "models/parallel/communicator.h"

#include <barrier>
#include <cstring>

namespace attnres {
namespace {

struct Rendezvous {
  explicit Rendezvous(int n) : world(n), barrier(n), inputs(n) {}
  int world;
  std::barrier<> barrier;
  std::vector<const float*> inputs;  // per rank, valid between the two barriers of a collective
};

class ThreadCommunicator final : public Communicator {
 public:
  ThreadCommunicator(std::shared_ptr<Rendezvous> r, int rank) : r_(std::move(r)), rank_(rank) {}
  int rank() const override { return rank_; }
  int world_size() const override { return r_->world; }

  void AllReduceSum(float* data, size_t n) override {
    // Rank r sums the same elements in the same order as every other rank: identical results.
    scratch_.assign(n, 0.0f);
    Publish(data);
    for (int k = 0; k < r_->world; ++k) {
      const float* src = r_->inputs[k];
      for (size_t i = 0; i < n; ++i) scratch_[i] += src[i];
    }
    r_->barrier.arrive_and_wait();  // everyone has read every buffer
    std::memcpy(data, scratch_.data(), n * sizeof(float));
  }

  void AllGather(const float* in, size_t n, float* out) override {
    Publish(in);
    for (int k = 0; k < r_->world; ++k) std::memcpy(out + k * n, r_->inputs[k], n * sizeof(float));
    r_->barrier.arrive_and_wait();
  }

  void ReduceScatterSum(const float* in, size_t n, float* out) override {
    Publish(in);
    std::memset(out, 0, n * sizeof(float));
    for (int k = 0; k < r_->world; ++k) {
      const float* src = r_->inputs[k] + rank_ * n;
      for (size_t i = 0; i < n; ++i) out[i] += src[i];
    }
    r_->barrier.arrive_and_wait();
  }

 private:
  void Publish(const float* p) {
    r_->inputs[rank_] = p;
    r_->barrier.arrive_and_wait();  // every pointer is published
  }

  std::shared_ptr<Rendezvous> r_;
  int rank_;
  std::vector<float> scratch_;
};

}  // namespace

std::vector<std::unique_ptr<Communicator>> CreateThreadCommunicators(int world_size) {
  auto r = std::make_shared<Rendezvous>(world_size);
  std::vector<std::unique_ptr<Communicator>> out;
  for (int i = 0; i < world_size; ++i) out.push_back(std::make_unique<ThreadCommunicator>(r, i));
  return out;
}

}  // namespace attnres
