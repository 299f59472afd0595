// The cuDNN SDPA operation graph, built with the backend API: the pattern cuDNN's fused
// flash-attention engines match (the one the cuDNN frontend lowers its SDPA node to):
//   S = Q K^T (fp32) -> * scale -> padding mask -> bottom-right causal mask -> softmax
//   (max, sub, exp, sum, the log-sum-exp statistics, which the engines require even unused,
//   div into bf16 P) -> O = P V.
#include "models/cuda/cudnn_attention.h"

#include <array>
#include <cstdio>
#include <limits>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"

#ifdef ATTNRES_HAVE_CUDNN
#include <cudnn.h>
#endif

namespace attnres::cuda {

#ifndef ATTNRES_HAVE_CUDNN

struct CudnnAttention::Plan {};
bool CudnnAttention::Built() { return false; }
absl::StatusOr<std::unique_ptr<CudnnAttention>> CudnnAttention::Create(int, int, int, float) {
  return absl::UnavailableError("built without cuDNN");
}
CudnnAttention::~CudnnAttention() = default;
absl::Status CudnnAttention::Run(const Chunk&, cudaStream_t) {
  return absl::UnavailableError("built without cuDNN");
}
absl::Status CudnnAttention::Prepare(int, int) {
  return absl::UnavailableError("built without cuDNN");
}
bool CudnnAttention::ReadyOrQueue(int, int) { return false; }
void CudnnAttention::WaitForQueued() {}
size_t CudnnAttention::cached_plans() const { return 0; }

#else

namespace {

using Desc = cudnnBackendDescriptor_t;

// Tensor ids of the variant pack.
enum : int64_t { kQ = 1, kK, kV, kO, kScale, kSeqQ, kSeqKv, kLowest1, kLowest2, kFirstVirtual };

// Plans kept at once; past this the smallest bucket pair is dropped (~45 ms to rebuild).
constexpr size_t kMaxPlans = 256;

std::string LastError(cudnnStatus_t s) {
  char buf[1024] = {0};
  cudnnGetLastErrorString(buf, sizeof(buf));
  return absl::StrCat(cudnnGetErrorString(s), buf[0] ? absl::StrCat(": ", buf) : "");
}

// Builds one operation graph. The first failing call latches its status; descriptors live as
// long as the builder (the plan keeps them).
class GraphBuilder {
 public:
  struct Tensor {
    Desc d = nullptr;
    int64_t dims[4], strides[4];
  };
  ~GraphBuilder() {
    for (auto it = owned_.rbegin(); it != owned_.rend(); ++it) cudnnBackendDestroyDescriptor(*it);
  }
  const absl::Status& status() const { return status_; }
  std::vector<Desc>& ops() { return ops_; }

  Desc Make(cudnnBackendDescriptorType_t type) {
    Desc d = nullptr;
    if (!status_.ok()) return nullptr;
    Check(cudnnBackendCreateDescriptor(type, &d), "create descriptor");
    if (d) owned_.push_back(d);
    return d;
  }
  template <typename V>
  void Set(Desc d, cudnnBackendAttributeName_t name, cudnnBackendAttributeType_t type,
           int64_t count, const V* value, const char* what) {
    if (status_.ok()) Check(cudnnBackendSetAttribute(d, name, type, count, value), what);
  }
  void Finalize(Desc d, const char* what) {
    if (status_.ok()) Check(cudnnBackendFinalize(d), what);
  }
  void Check(cudnnStatus_t s, const char* what) {
    if (s != CUDNN_STATUS_SUCCESS && status_.ok()) {
      status_ = absl::InternalError(absl::StrCat("cuDNN attention graph: ", what, ": ",
                                                 LastError(s)));
    }
  }

  Tensor Make4d(int64_t uid, cudnnDataType_t type, std::array<int64_t, 4> dims,
                std::array<int64_t, 4> strides, bool is_virtual, bool by_value = false) {
    Tensor t;
    for (int i = 0; i < 4; ++i) {
      t.dims[i] = dims[i];
      t.strides[i] = strides[i];
    }
    t.d = Make(CUDNN_BACKEND_TENSOR_DESCRIPTOR);
    const int64_t align = 16;
    Set(t.d, CUDNN_ATTR_TENSOR_DATA_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &type, "tensor type");
    Set(t.d, CUDNN_ATTR_TENSOR_DIMENSIONS, CUDNN_TYPE_INT64, 4, t.dims, "tensor dims");
    Set(t.d, CUDNN_ATTR_TENSOR_STRIDES, CUDNN_TYPE_INT64, 4, t.strides, "tensor strides");
    Set(t.d, CUDNN_ATTR_TENSOR_UNIQUE_ID, CUDNN_TYPE_INT64, 1, &uid, "tensor id");
    Set(t.d, CUDNN_ATTR_TENSOR_BYTE_ALIGNMENT, CUDNN_TYPE_INT64, 1, &align, "tensor alignment");
    Set(t.d, CUDNN_ATTR_TENSOR_IS_VIRTUAL, CUDNN_TYPE_BOOLEAN, 1, &is_virtual, "tensor virtual");
    if (by_value) {
      Set(t.d, CUDNN_ATTR_TENSOR_IS_BY_VALUE, CUDNN_TYPE_BOOLEAN, 1, &by_value, "tensor by value");
    }
    Finalize(t.d, "tensor");
    return t;
  }
  Tensor Scalar(int64_t uid, cudnnDataType_t type, bool by_value) {
    return Make4d(uid, type, {1, 1, 1, 1}, {1, 1, 1, 1}, false, by_value);
  }
  // A virtual tensor of `type` shaped like `like` (or with its own dims and strides).
  Tensor Virtual(cudnnDataType_t type, const Tensor& like) {
    return Make4d(next_uid_++, type, {like.dims[0], like.dims[1], like.dims[2], like.dims[3]},
                  {like.strides[0], like.strides[1], like.strides[2], like.strides[3]}, true);
  }
  Tensor Virtual(cudnnDataType_t type, std::array<int64_t, 4> dims,
                 std::array<int64_t, 4> strides) {
    return Make4d(next_uid_++, type, dims, strides, true);
  }

  // y = mode(x [, b [, t]]) computed in `precision`; axis for GEN_INDEX.
  Tensor Pointwise(cudnnPointwiseMode_t mode, cudnnDataType_t precision, const Tensor& x,
                   const Tensor* b, const Tensor* t, Tensor y, int64_t axis = -1) {
    Desc p = Make(CUDNN_BACKEND_POINTWISE_DESCRIPTOR);
    Set(p, CUDNN_ATTR_POINTWISE_MODE, CUDNN_TYPE_POINTWISE_MODE, 1, &mode, "pointwise mode");
    Set(p, CUDNN_ATTR_POINTWISE_MATH_PREC, CUDNN_TYPE_DATA_TYPE, 1, &precision, "precision");
    if (axis >= 0) Set(p, CUDNN_ATTR_POINTWISE_AXIS, CUDNN_TYPE_INT64, 1, &axis, "axis");
    Finalize(p, "pointwise");
    Desc op = Make(CUDNN_BACKEND_OPERATION_POINTWISE_DESCRIPTOR);
    Set(op, CUDNN_ATTR_OPERATION_POINTWISE_PW_DESCRIPTOR, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &p,
        "pointwise op");
    Set(op, CUDNN_ATTR_OPERATION_POINTWISE_XDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &x.d, "x");
    if (b) Set(op, CUDNN_ATTR_OPERATION_POINTWISE_BDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &b->d, "b");
    if (t) Set(op, CUDNN_ATTR_OPERATION_POINTWISE_TDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &t->d, "t");
    Set(op, CUDNN_ATTR_OPERATION_POINTWISE_YDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &y.d, "y");
    Finalize(op, "pointwise op");
    ops_.push_back(op);
    return y;
  }
  // c = a b, batched over the first two dims (b's heads broadcast over a's: GQA); m/n/k
  // overrides: device lengths that bound the rows, columns and reduction.
  void Matmul(const Tensor& a, const Tensor& b, const Tensor& c, const Tensor* m,
              const Tensor* n, const Tensor* k) {
    Desc mm = Make(CUDNN_BACKEND_MATMUL_DESCRIPTOR);
    const cudnnDataType_t compute = CUDNN_DATA_FLOAT;
    const double padding = 0.0;
    Set(mm, CUDNN_ATTR_MATMUL_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &compute, "matmul type");
    if (m || n) Set(mm, CUDNN_ATTR_MATMUL_PADDING_VALUE, CUDNN_TYPE_DOUBLE, 1, &padding, "pad");
    Finalize(mm, "matmul");
    Desc op = Make(CUDNN_BACKEND_OPERATION_MATMUL_DESCRIPTOR);
    Set(op, CUDNN_ATTR_OPERATION_MATMUL_ADESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &a.d, "a");
    Set(op, CUDNN_ATTR_OPERATION_MATMUL_BDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &b.d, "b");
    Set(op, CUDNN_ATTR_OPERATION_MATMUL_CDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &c.d, "c");
    Set(op, CUDNN_ATTR_OPERATION_MATMUL_DESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &mm, "matmul op");
    if (m) {
      Set(op, CUDNN_ATTR_OPERATION_MATMUL_GEMM_M_OVERRIDE_DESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1,
          &m->d, "m override");
    }
    if (n) {
      Set(op, CUDNN_ATTR_OPERATION_MATMUL_GEMM_N_OVERRIDE_DESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1,
          &n->d, "n override");
    }
    if (k) {
      Set(op, CUDNN_ATTR_OPERATION_MATMUL_GEMM_K_OVERRIDE_DESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1,
          &k->d, "k override");
    }
    Finalize(op, "matmul op");
    ops_.push_back(op);
  }
  void Reduce(cudnnReduceTensorOp_t reduce, const Tensor& x, const Tensor& y) {
    Desc r = Make(CUDNN_BACKEND_REDUCTION_DESCRIPTOR);
    const cudnnDataType_t compute = CUDNN_DATA_FLOAT;
    Set(r, CUDNN_ATTR_REDUCTION_OPERATOR, CUDNN_TYPE_REDUCTION_OPERATOR_TYPE, 1, &reduce,
        "reduction");
    Set(r, CUDNN_ATTR_REDUCTION_COMP_TYPE, CUDNN_TYPE_DATA_TYPE, 1, &compute, "reduction type");
    Finalize(r, "reduction");
    Desc op = Make(CUDNN_BACKEND_OPERATION_REDUCTION_DESCRIPTOR);
    Set(op, CUDNN_ATTR_OPERATION_REDUCTION_DESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &r, "red op");
    Set(op, CUDNN_ATTR_OPERATION_REDUCTION_XDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &x.d, "x");
    Set(op, CUDNN_ATTR_OPERATION_REDUCTION_YDESC, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &y.d, "y");
    Finalize(op, "reduction op");
    ops_.push_back(op);
  }
  // Keeps d alive with the builder's descriptors (the plan).
  void Own(Desc d) { owned_.push_back(d); }

 private:
  absl::Status status_;
  std::vector<Desc> owned_, ops_;
  int64_t next_uid_ = kFirstVirtual;
};

}  // namespace

struct CudnnAttention::Plan {
  ~Plan() {
    if (plan) cudnnBackendDestroyDescriptor(plan);
  }
  GraphBuilder graph;  // every descriptor the plan was built from (destroyed after it)
  Desc plan = nullptr;
  int64_t workspace = 0;
};

bool CudnnAttention::Built() { return true; }

absl::StatusOr<std::unique_ptr<CudnnAttention>> CudnnAttention::Create(int H, int KV, int hd,
                                                                        float scale) {
  if (H < 1 || KV < 1 || H % KV != 0 || hd % 8 != 0 || hd > 256) {
    return absl::InvalidArgumentError(absl::StrCat("cuDNN attention: unsupported heads ", H, "/",
                                                   KV, " x ", hd));
  }
  if (cudnnGetVersion() < 91400) {
    return absl::UnavailableError(absl::StrCat("cuDNN ", cudnnGetVersion(), " < 9.14"));
  }
  cudnnHandle_t h = nullptr;
  if (cudnnStatus_t s = cudnnCreate(&h); s != CUDNN_STATUS_SUCCESS) {
    return absl::UnavailableError(absl::StrCat("cudnnCreate: ", LastError(s)));
  }
  std::unique_ptr<CudnnAttention> a(new CudnnAttention());
  a->handle_ = h;
  if (cudaError_t e = cudaGetDevice(&a->device_); e != cudaSuccess) {
    return absl::InternalError(absl::StrCat("cudaGetDevice: ", cudaGetErrorString(e)));
  }
  a->H_ = H;
  a->KV_ = KV;
  a->hd_ = hd;
  a->scale_ = scale;
  return a;
}

CudnnAttention::~CudnnAttention() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;  // the builder finishes the plan in hand (if any) and exits
  }
  wake_.notify_all();
  if (builder_.joinable()) builder_.join();
  plans_.clear();  // before the handles they were built with
  if (workspace_) cudaFree(workspace_);
  if (builder_handle_) cudnnDestroy(static_cast<cudnnHandle_t>(builder_handle_));
  if (handle_) cudnnDestroy(static_cast<cudnnHandle_t>(handle_));
}

size_t CudnnAttention::cached_plans() const {
  std::lock_guard<std::mutex> lock(mu_);
  return plans_.size();
}

void CudnnAttention::Insert(Key key, std::shared_ptr<Plan> plan) {
  if (plans_.size() >= kMaxPlans && plans_.count(key) == 0) plans_.erase(plans_.begin());
  plans_[key] = std::move(plan);
}

absl::StatusOr<std::shared_ptr<CudnnAttention::Plan>> CudnnAttention::PlanFor(Key key) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = plans_.find(key); it != plans_.end()) return it->second;
  }
  auto plan = Build(handle_, key);
  if (!plan.ok()) return plan.status();
  std::lock_guard<std::mutex> lock(mu_);
  Insert(key, *plan);
  return *plan;
}

bool CudnnAttention::ReadyOrQueue(int s_q, int s_kv) {
  const Key key = KeyFor(s_q, s_kv);
  std::lock_guard<std::mutex> lock(mu_);
  if (plans_.count(key) != 0) return true;
  if (stop_ || !pending_or_failed_.insert(key).second) return false;
  if (!builder_.joinable()) {
    cudnnHandle_t h = nullptr;
    if (cudnnStatus_t st = cudnnCreate(&h); st != CUDNN_STATUS_SUCCESS) {
      std::fprintf(stderr, "attnres cuda: no background cuDNN plan builder: cudnnCreate: %s\n",
                   LastError(st).c_str());
      return false;  // the key stays marked (not ready); Run and Prepare still build on the spot
    }
    builder_handle_ = h;
    builder_ = std::thread(&CudnnAttention::BuilderLoop, this);
  }
  queue_.push_back(key);
  wake_.notify_all();
  return false;
}

void CudnnAttention::BuilderLoop() {
  cudaSetDevice(device_);  // the runtime's current device is per thread
  std::unique_lock<std::mutex> lock(mu_);
  for (;;) {
    wake_.wait(lock, [&] { return stop_ || !queue_.empty(); });
    if (stop_) return;
    const Key key = queue_.front();
    queue_.pop_front();
    building_ = true;
    lock.unlock();
    auto plan = Build(builder_handle_, key);
    lock.lock();
    building_ = false;
    if (plan.ok()) {
      Insert(key, *std::move(plan));
      pending_or_failed_.erase(key);  // so that it is queued again if ever evicted
    } else {
      std::fprintf(stderr, "attnres cuda: cuDNN attention plan %d x %d: %s\n", key.first,
                   key.second, std::string(plan.status().message()).c_str());
    }
    wake_.notify_all();
  }
}

void CudnnAttention::WaitForQueued() {
  std::unique_lock<std::mutex> lock(mu_);
  wake_.wait(lock, [&] { return stop_ || (queue_.empty() && !building_); });
}

absl::Status CudnnAttention::EnsureWorkspace(int64_t bytes) {
  if (static_cast<size_t>(bytes) <= workspace_bytes_) return absl::OkStatus();
  if (workspace_) cudaFree(workspace_);
  workspace_ = nullptr;
  workspace_bytes_ = 0;
  if (cudaError_t e = cudaMalloc(&workspace_, bytes); e != cudaSuccess) {
    return absl::ResourceExhaustedError(absl::StrCat("cuDNN attention workspace of ", bytes,
                                                     " bytes: ", cudaGetErrorString(e)));
  }
  workspace_bytes_ = bytes;
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<CudnnAttention::Plan>> CudnnAttention::Build(void* handle,
                                                                          Key key) const {
  const int64_t sq = key.first, skv = key.second;
  auto plan = std::make_shared<Plan>();
  GraphBuilder& g = plan->graph;
  const int64_t H = H_, KV = KV_, hd = hd_;
  using T = GraphBuilder::Tensor;
  // Q, O: [1, H, sq, hd] over token-major [sq, H*hd]; K as its transpose [1, KV, hd, skv] and V
  // as [1, KV, skv, hd], both over token-major [skv, KV*hd].
  const T q = g.Make4d(kQ, CUDNN_DATA_BFLOAT16, {1, H, sq, hd}, {sq * H * hd, hd, H * hd, 1}, false);
  const T o = g.Make4d(kO, CUDNN_DATA_BFLOAT16, {1, H, sq, hd}, {sq * H * hd, hd, H * hd, 1}, false);
  const T kt =
      g.Make4d(kK, CUDNN_DATA_BFLOAT16, {1, KV, hd, skv}, {skv * KV * hd, hd, 1, KV * hd}, false);
  const T v =
      g.Make4d(kV, CUDNN_DATA_BFLOAT16, {1, KV, skv, hd}, {skv * KV * hd, hd, KV * hd, 1}, false);
  const T seq_q = g.Scalar(kSeqQ, CUDNN_DATA_INT32, false);
  const T seq_kv = g.Scalar(kSeqKv, CUDNN_DATA_INT32, false);
  const T scale = g.Scalar(kScale, CUDNN_DATA_FLOAT, true);
  // The masks' fill value, one tensor per select, as the cuDNN frontend emits them.
  const T lowest1 = g.Scalar(kLowest1, CUDNN_DATA_FLOAT, true);
  const T lowest2 = g.Scalar(kLowest2, CUDNN_DATA_FLOAT, true);
  const T s = g.Virtual(CUDNN_DATA_FLOAT, {1, H, sq, skv}, {H * sq * skv, sq * skv, skv, 1});
  g.Matmul(q, kt, s, &seq_q, &seq_kv, nullptr);
  T x = g.Pointwise(CUDNN_POINTWISE_MUL, CUDNN_DATA_FLOAT, s, &scale, nullptr,
                    g.Virtual(CUDNN_DATA_FLOAT, s));
  {  // padding: row < s_q and column < s_kv
    const T row = g.Pointwise(CUDNN_POINTWISE_GEN_INDEX, CUDNN_DATA_INT32, x, nullptr, nullptr,
                              g.Virtual(CUDNN_DATA_INT32, x), 2);
    const T col = g.Pointwise(CUDNN_POINTWISE_GEN_INDEX, CUDNN_DATA_INT32, x, nullptr, nullptr,
                              g.Virtual(CUDNN_DATA_INT32, x), 3);
    const T row_in = g.Pointwise(CUDNN_POINTWISE_CMP_LT, CUDNN_DATA_BOOLEAN, row, &seq_q, nullptr,
                                 g.Virtual(CUDNN_DATA_BOOLEAN, x));
    const T col_in = g.Pointwise(CUDNN_POINTWISE_CMP_LT, CUDNN_DATA_BOOLEAN, col, &seq_kv,
                                 nullptr, g.Virtual(CUDNN_DATA_BOOLEAN, x));
    const T in = g.Pointwise(CUDNN_POINTWISE_LOGICAL_AND, CUDNN_DATA_BOOLEAN, row_in, &col_in,
                             nullptr, g.Virtual(CUDNN_DATA_BOOLEAN, x));
    x = g.Pointwise(CUDNN_POINTWISE_BINARY_SELECT, CUDNN_DATA_FLOAT, x, &lowest1, &in,
                    g.Virtual(CUDNN_DATA_FLOAT, x));
  }
  {  // bottom-right causal: row + s_kv - s_q >= column
    T row = g.Pointwise(CUDNN_POINTWISE_GEN_INDEX, CUDNN_DATA_FLOAT, x, nullptr, nullptr,
                        g.Virtual(CUDNN_DATA_INT32, x), 2);
    const T col = g.Pointwise(CUDNN_POINTWISE_GEN_INDEX, CUDNN_DATA_FLOAT, x, nullptr, nullptr,
                              g.Virtual(CUDNN_DATA_INT32, x), 3);
    row = g.Pointwise(CUDNN_POINTWISE_ADD, CUDNN_DATA_INT32, row, &seq_kv, nullptr,
                      g.Virtual(CUDNN_DATA_INT32, x));
    row = g.Pointwise(CUDNN_POINTWISE_SUB, CUDNN_DATA_INT32, row, &seq_q, nullptr,
                      g.Virtual(CUDNN_DATA_INT32, x));
    const T keep = g.Pointwise(CUDNN_POINTWISE_CMP_GE, CUDNN_DATA_BOOLEAN, row, &col, nullptr,
                               g.Virtual(CUDNN_DATA_BOOLEAN, x));
    x = g.Pointwise(CUDNN_POINTWISE_BINARY_SELECT, CUDNN_DATA_FLOAT, x, &lowest2, &keep,
                    g.Virtual(CUDNN_DATA_FLOAT, x));
  }
  // Softmax over the keys; the statistics max + log(sum) are part of the matched pattern.
  const std::array<int64_t, 4> rdims = {1, H, sq, 1}, rstrides = {H * sq, sq, 1, 1};
  const T max = g.Virtual(CUDNN_DATA_FLOAT, rdims, rstrides);
  g.Reduce(CUDNN_REDUCE_TENSOR_MAX, x, max);
  const T shifted = g.Pointwise(CUDNN_POINTWISE_SUB, CUDNN_DATA_FLOAT, x, &max, nullptr,
                                g.Virtual(CUDNN_DATA_FLOAT, x));
  const T e = g.Pointwise(CUDNN_POINTWISE_EXP, CUDNN_DATA_FLOAT, shifted, nullptr, nullptr,
                          g.Virtual(CUDNN_DATA_FLOAT, x));
  const T sum = g.Virtual(CUDNN_DATA_FLOAT, rdims, rstrides);
  g.Reduce(CUDNN_REDUCE_TENSOR_ADD, e, sum);
  const T log_sum = g.Pointwise(CUDNN_POINTWISE_LOG, CUDNN_DATA_FLOAT, sum, nullptr, nullptr,
                                g.Virtual(CUDNN_DATA_FLOAT, sum));
  g.Pointwise(CUDNN_POINTWISE_ADD, CUDNN_DATA_FLOAT, max, &log_sum, nullptr,
              g.Virtual(CUDNN_DATA_FLOAT, sum));
  const T p = g.Pointwise(CUDNN_POINTWISE_DIV, CUDNN_DATA_FLOAT, e, &sum, nullptr,
                          g.Virtual(CUDNN_DATA_BFLOAT16, x));
  g.Matmul(p, v, o, &seq_q, nullptr, &seq_kv);

  cudnnHandle_t h = static_cast<cudnnHandle_t>(handle);
  Desc graph = g.Make(CUDNN_BACKEND_OPERATIONGRAPH_DESCRIPTOR);
  g.Set(graph, CUDNN_ATTR_OPERATIONGRAPH_HANDLE, CUDNN_TYPE_HANDLE, 1, &h, "graph handle");
  g.Set(graph, CUDNN_ATTR_OPERATIONGRAPH_OPS, CUDNN_TYPE_BACKEND_DESCRIPTOR,
        static_cast<int64_t>(g.ops().size()), g.ops().data(), "graph ops");
  g.Finalize(graph, "operation graph");
  Desc heur = g.Make(CUDNN_BACKEND_ENGINEHEUR_DESCRIPTOR);
  const cudnnBackendHeurMode_t mode = CUDNN_HEUR_MODE_A;
  g.Set(heur, CUDNN_ATTR_ENGINEHEUR_OPERATION_GRAPH, CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &graph,
        "heuristics graph");
  g.Set(heur, CUDNN_ATTR_ENGINEHEUR_MODE, CUDNN_TYPE_HEUR_MODE, 1, &mode, "heuristics mode");
  g.Finalize(heur, "heuristics");
  if (!g.status().ok()) return g.status();
  int64_t n = 0;
  g.Check(cudnnBackendGetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_RESULTS,
                                   CUDNN_TYPE_BACKEND_DESCRIPTOR, 0, &n, nullptr),
          "heuristics results");
  std::vector<Desc> configs(n);
  for (Desc& c : configs) c = g.Make(CUDNN_BACKEND_ENGINECFG_DESCRIPTOR);
  g.Check(cudnnBackendGetAttribute(heur, CUDNN_ATTR_ENGINEHEUR_RESULTS,
                                   CUDNN_TYPE_BACKEND_DESCRIPTOR, n, &n, configs.data()),
          "heuristics results");
  if (!g.status().ok()) return g.status();
  // The heuristics' first config that builds (the Hopper-native engine, when it matches).
  std::string tried;
  for (int64_t i = 0; i < n && !plan->plan; ++i) {
    Desc candidate = nullptr;
    if (cudnnBackendCreateDescriptor(CUDNN_BACKEND_EXECUTION_PLAN_DESCRIPTOR, &candidate) !=
        CUDNN_STATUS_SUCCESS) {
      break;
    }
    cudnnBackendSetAttribute(candidate, CUDNN_ATTR_EXECUTION_PLAN_HANDLE, CUDNN_TYPE_HANDLE, 1, &h);
    cudnnBackendSetAttribute(candidate, CUDNN_ATTR_EXECUTION_PLAN_ENGINE_CONFIG,
                             CUDNN_TYPE_BACKEND_DESCRIPTOR, 1, &configs[i]);
    if (cudnnStatus_t st = cudnnBackendFinalize(candidate); st != CUDNN_STATUS_SUCCESS) {
      absl::StrAppend(&tried, " [config ", i, ": ", LastError(st), "]");
      cudnnBackendDestroyDescriptor(candidate);
      continue;
    }
    plan->plan = candidate;
    int64_t count = 0;
    cudnnBackendGetAttribute(candidate, CUDNN_ATTR_EXECUTION_PLAN_WORKSPACE_SIZE, CUDNN_TYPE_INT64,
                             1, &count, &plan->workspace);
  }
  if (!plan->plan) {
    return absl::UnavailableError(absl::StrCat("cuDNN attention: no engine for ", sq, " x ", skv,
                                               " (", n, " configs)", tried));
  }
  return plan;
}

absl::Status CudnnAttention::Prepare(int s_q, int s_kv) {
  auto p = PlanFor(KeyFor(s_q, s_kv));
  return p.ok() ? EnsureWorkspace((*p)->workspace) : p.status();
}

absl::Status CudnnAttention::Run(const Chunk& c, cudaStream_t stream) {
  if (c.s_q < 1 || c.s_q > c.s_kv) {
    return absl::InvalidArgumentError(absl::StrCat("cuDNN attention: ", c.s_q, " query rows over ",
                                                   c.s_kv, " keys"));
  }
  auto plan = PlanFor(KeyFor(c.s_q, c.s_kv));
  if (!plan.ok()) return plan.status();
  // (Freeing a smaller workspace waits for the work queued on it.)
  if (auto st = EnsureWorkspace((*plan)->workspace); !st.ok()) return st;
  cudnnHandle_t h = static_cast<cudnnHandle_t>(handle_);
  if (cudnnStatus_t s = cudnnSetStream(h, stream); s != CUDNN_STATUS_SUCCESS) {
    return absl::InternalError(absl::StrCat("cudnnSetStream: ", LastError(s)));
  }
  float scale = scale_, lowest = std::numeric_limits<float>::lowest();
  void* ptrs[] = {const_cast<__nv_bfloat16*>(c.q), const_cast<__nv_bfloat16*>(c.k),
                  const_cast<__nv_bfloat16*>(c.v), c.out, &scale,
                  const_cast<int32_t*>(c.lens), const_cast<int32_t*>(c.lens + 4), &lowest, &lowest};
  int64_t uids[] = {kQ, kK, kV, kO, kScale, kSeqQ, kSeqKv, kLowest1, kLowest2};
  Desc pack = nullptr;
  cudnnStatus_t s = cudnnBackendCreateDescriptor(CUDNN_BACKEND_VARIANT_PACK_DESCRIPTOR, &pack);
  if (s == CUDNN_STATUS_SUCCESS) {
    cudnnBackendSetAttribute(pack, CUDNN_ATTR_VARIANT_PACK_DATA_POINTERS, CUDNN_TYPE_VOID_PTR, 9,
                             ptrs);
    cudnnBackendSetAttribute(pack, CUDNN_ATTR_VARIANT_PACK_UNIQUE_IDS, CUDNN_TYPE_INT64, 9, uids);
    cudnnBackendSetAttribute(pack, CUDNN_ATTR_VARIANT_PACK_WORKSPACE, CUDNN_TYPE_VOID_PTR, 1,
                             &workspace_);
    s = cudnnBackendFinalize(pack);
    if (s == CUDNN_STATUS_SUCCESS) s = cudnnBackendExecute(h, (*plan)->plan, pack);
  }
  if (pack) cudnnBackendDestroyDescriptor(pack);
  if (s != CUDNN_STATUS_SUCCESS) {
    return absl::InternalError(absl::StrCat("cuDNN attention (", c.s_q, " x ", c.s_kv,
                                            "): ", LastError(s)));
  }
  return absl::OkStatus();
}

#endif  // ATTNRES_HAVE_CUDNN

}  // namespace attnres::cuda
