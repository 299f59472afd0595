// NCCL collectives on every GPU of the machine (one rank per GPU; a single GPU runs world 1
// through the same code path). Skips without a GPU.
#include <cuda_runtime.h>

#include <vector>

#include "gtest/gtest.h"
#include "models/half.h"
#include "models/parallel/nccl_communicator.h"

namespace attnres {
namespace {

int GpuCount() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) return 0;
  return n;
}

TEST(NcclCommunicator, CollectivesOnEveryGpu) {
  const int world = GpuCount();
  if (world == 0) GTEST_SKIP() << "no GPU";
  std::vector<int> devices(world);
  for (int i = 0; i < world; ++i) devices[i] = i;
  auto comms = NcclCommunicator::CreateAll(devices);
  ASSERT_TRUE(comms.ok()) << comms.status();
  const size_t n = 1031;  // odd
  for (CollectiveDType dt : {CollectiveDType::kF32, CollectiveDType::kBF16}) {
    const size_t esize = dt == CollectiveDType::kF32 ? 4 : 2;
    std::vector<void*> a(world), g(world), rs(world);
    std::vector<cudaStream_t> streams(world);
    auto host_value = [&](int r, size_t i) { return static_cast<float>((r + 1) * 0.5 + (i % 7)); };
    for (int r = 0; r < world; ++r) {
      ASSERT_EQ(cudaSetDevice(r), cudaSuccess);
      ASSERT_EQ(cudaStreamCreate(&streams[r]), cudaSuccess);
      std::vector<uint8_t> host(n * world * esize);
      for (size_t i = 0; i < n * world; ++i) {
        const float v = host_value(r, i);
        if (dt == CollectiveDType::kF32) {
          std::memcpy(&host[i * 4], &v, 4);
        } else {
          const uint16_t h = F32ToBf16(v);
          std::memcpy(&host[i * 2], &h, 2);
        }
      }
      ASSERT_EQ(cudaMalloc(&a[r], n * world * esize), cudaSuccess);
      ASSERT_EQ(cudaMalloc(&g[r], n * world * esize), cudaSuccess);
      ASSERT_EQ(cudaMalloc(&rs[r], n * esize), cudaSuccess);
      ASSERT_EQ(cudaMemcpy(a[r], host.data(), host.size(), cudaMemcpyHostToDevice), cudaSuccess);
    }
    ASSERT_TRUE(NcclCommunicator::GroupStart().ok());
    for (int r = 0; r < world; ++r) {
      ASSERT_TRUE((*comms)[r]->AllGather(a[r], g[r], n, dt, streams[r]).ok());
      ASSERT_TRUE((*comms)[r]->ReduceScatterSum(a[r], rs[r], n, dt, streams[r]).ok());
    }
    ASSERT_TRUE(NcclCommunicator::GroupEnd().ok());
    ASSERT_TRUE(NcclCommunicator::GroupStart().ok());
    for (int r = 0; r < world; ++r) {
      ASSERT_TRUE((*comms)[r]->AllReduceSum(a[r], n * world, dt, streams[r]).ok());
    }
    ASSERT_TRUE(NcclCommunicator::GroupEnd().ok());
    auto read = [&](void* p, size_t count, size_t i) {
      std::vector<uint8_t> host(count * esize);
      EXPECT_EQ(cudaMemcpy(host.data(), p, host.size(), cudaMemcpyDeviceToHost), cudaSuccess);
      if (dt == CollectiveDType::kF32) {
        float v;
        std::memcpy(&v, &host[i * 4], 4);
        return v;
      }
      uint16_t h;
      std::memcpy(&h, &host[i * 2], 2);
      return Bf16ToF32(h);
    };
    for (int r = 0; r < world; ++r) {
      ASSERT_EQ(cudaSetDevice(r), cudaSuccess);
      ASSERT_EQ(cudaStreamSynchronize(streams[r]), cudaSuccess);
      for (size_t i : {size_t{0}, size_t{5}, n - 1}) {
        float sum = 0, rs_sum = 0;
        for (int k = 0; k < world; ++k) {
          sum += host_value(k, i);
          rs_sum += host_value(k, r * n + i);
        }
        const float tol = dt == CollectiveDType::kF32 ? 1e-5f : 0.05f;
        EXPECT_NEAR(read(a[r], n * world, i), sum, tol * std::abs(sum));
        EXPECT_NEAR(read(rs[r], n, i), rs_sum, tol * std::abs(rs_sum));
        for (int k = 0; k < world; ++k) {
          EXPECT_NEAR(read(g[r], n * world, k * n + i), host_value(k, i), tol * 8);
        }
      }
      cudaFree(a[r]);
      cudaFree(g[r]);
      cudaFree(rs[r]);
      cudaStreamDestroy(streams[r]);
    }
  }
}

}  // namespace
}  // namespace attnres
