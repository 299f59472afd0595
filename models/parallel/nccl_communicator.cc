// NCCL-backed collectives.
#include "models/parallel/nccl_communicator.h"

#include <cstdlib>

#include <nccl.h>

#include "absl/strings/str_cat.h"

namespace attnres {
namespace {

absl::Status NcclStatus(ncclResult_t r, const char* what) {
  if (r == ncclSuccess) return absl::OkStatus();
  return absl::InternalError(absl::StrCat(what, ": ", ncclGetErrorString(r)));
}

ncclDataType_t ToNccl(CollectiveDType t) { return t == CollectiveDType::kF32 ? ncclFloat32 : ncclBfloat16; }

}  // namespace

struct NcclCommunicator::Impl {
  ncclComm_t comm = nullptr;
};

NcclCommunicator::NcclCommunicator(std::unique_ptr<Impl> impl, int rank, int world, int device)
    : impl_(std::move(impl)), rank_(rank), world_(world), device_(device) {}

NcclCommunicator::~NcclCommunicator() {
  if (impl_ && impl_->comm) ncclCommDestroy(impl_->comm);
}

absl::StatusOr<std::vector<std::unique_ptr<NcclCommunicator>>> NcclCommunicator::CreateAll(
    const std::vector<int>& devices) {
  if (devices.empty()) return absl::InvalidArgumentError("NCCL: no devices");
  setenv("NCCL_NVLS_ENABLE", "0", /*overwrite=*/1);  // never NVLink multicast (issue #6)
  int current = 0;
  if (cudaGetDevice(&current) != cudaSuccess) current = devices[0];
  std::vector<ncclComm_t> comms(devices.size());
  const ncclResult_t init =
      ncclCommInitAll(comms.data(), static_cast<int>(devices.size()), devices.data());
  // NCCL's device probing can leave an error (e.g. "invalid device ordinal") in this thread's
  // last-error slot, which the next kernel launch's check would then report as its own; and it
  // may leave another device current.
  (void)cudaGetLastError();
  if (const cudaError_t e = cudaSetDevice(current); e != cudaSuccess) {
    return absl::InternalError(absl::StrCat("cudaSetDevice(", current, "): ", cudaGetErrorString(e)));
  }
  if (auto st = NcclStatus(init, "ncclCommInitAll"); !st.ok()) return st;
  std::vector<std::unique_ptr<NcclCommunicator>> out;
  for (size_t i = 0; i < devices.size(); ++i) {
    auto impl = std::make_unique<Impl>();
    impl->comm = comms[i];
    out.push_back(std::unique_ptr<NcclCommunicator>(new NcclCommunicator(
        std::move(impl), static_cast<int>(i), static_cast<int>(devices.size()), devices[i])));
  }
  return out;
}

absl::Status NcclCommunicator::AllReduceSum(void* buf, size_t count, CollectiveDType dtype,
                                            cudaStream_t stream) {
  return NcclStatus(ncclAllReduce(buf, buf, count, ToNccl(dtype), ncclSum, impl_->comm, stream),
                    "ncclAllReduce");
}

absl::Status NcclCommunicator::AllGather(const void* in, void* out, size_t count,
                                         CollectiveDType dtype, cudaStream_t stream) {
  return NcclStatus(ncclAllGather(in, out, count, ToNccl(dtype), impl_->comm, stream),
                    "ncclAllGather");
}

absl::Status NcclCommunicator::ReduceScatterSum(const void* in, void* out, size_t count,
                                                CollectiveDType dtype, cudaStream_t stream) {
  return NcclStatus(
      ncclReduceScatter(in, out, count, ToNccl(dtype), ncclSum, impl_->comm, stream),
      "ncclReduceScatter");
}

absl::Status NcclCommunicator::GroupStart() { return NcclStatus(ncclGroupStart(), "ncclGroupStart"); }
absl::Status NcclCommunicator::GroupEnd() { return NcclStatus(ncclGroupEnd(), "ncclGroupEnd"); }

}  // namespace attnres
