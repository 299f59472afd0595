// Kernel timelines of GPU work, from CUPTI's activity records: each kernel's start and end as the
// GPU stamped them, one record per kernel node of a CUDA graph replay. The device machine has no
// Nsight Systems, and ncu times kernels one at a time, alone; this shows them in place, with the
// gaps and overlaps that programmatic dependent launch and side streams make.
#ifndef ATTNRES_BENCH_KERNEL_TRACE_H_
#define ATTNRES_BENCH_KERNEL_TRACE_H_

#include <cstdint>
#include <string>
#include <vector>

namespace attnres::bench {

struct KernelSpan {
  std::string name;  // demangled, namespaces dropped
  uint64_t start_ns = 0, end_ns = 0;
  uint32_t stream = 0;
  int grid_x = 0, grid_y = 0, block_x = 0;
};

// One trace at a time per process (CUPTI's activity buffers are process-wide).
class KernelTrace {
 public:
  // Starts recording kernels; false (with the reason on stderr) where CUPTI cannot.
  bool Start();
  // Stops, flushes, and returns the kernels since Start, in start order.
  std::vector<KernelSpan> Stop();
};

// "ns::Fn<args>(params)" -> "Fn<args>": the demangled name without namespaces and parameters.
std::string ShortKernelName(const char* mangled);

}  // namespace attnres::bench

#endif  // ATTNRES_BENCH_KERNEL_TRACE_H_
