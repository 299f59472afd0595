// KernelTrace (kernel_trace.h): CUPTI's activity API, concurrent-kernel records only. CUPTI hands
// filled buffers to BufferCompleted on its own thread, or on Stop's flush; the spans go to one
// process-wide list under a mutex.
#include "bench/kernel_trace.h"

#include <cupti.h>
#include <cxxabi.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>

namespace attnres::bench {
namespace {

constexpr size_t kBufferBytes = 8 << 20;

std::mutex g_mu;
std::vector<KernelSpan>* g_spans = nullptr;  // guarded by g_mu; owned by the running trace

void CUPTIAPI BufferRequested(uint8_t** buffer, size_t* size, size_t* max_records) {
  *buffer = static_cast<uint8_t*>(std::aligned_alloc(8, kBufferBytes));
  *size = *buffer ? kBufferBytes : 0;
  *max_records = 0;  // as many as fit
}

void CUPTIAPI BufferCompleted(CUcontext, uint32_t, uint8_t* buffer, size_t, size_t valid) {
  std::lock_guard<std::mutex> lock(g_mu);
  CUpti_Activity* record = nullptr;
  while (cuptiActivityGetNextRecord(buffer, valid, &record) == CUPTI_SUCCESS) {
    if (record->kind != CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL || g_spans == nullptr) continue;
    const auto* k = reinterpret_cast<const CUpti_ActivityKernel10*>(record);
    KernelSpan s;
    s.name = ShortKernelName(k->name);
    s.start_ns = k->start;
    s.end_ns = k->end;
    s.stream = k->streamId;
    s.grid_x = k->gridX;
    s.grid_y = k->gridY;
    s.block_x = k->blockX;
    g_spans->push_back(std::move(s));
  }
  std::free(buffer);
}

bool Check(CUptiResult r, const char* what) {
  if (r == CUPTI_SUCCESS) return true;
  const char* text = nullptr;
  cuptiGetResultString(r, &text);
  std::fprintf(stderr, "CUPTI %s: %s\n", what, text ? text : "unknown error");
  return false;
}

std::vector<KernelSpan> g_storage;

}  // namespace

std::string ShortKernelName(const char* mangled) {
  if (mangled == nullptr) return "?";
  int status = 0;
  std::unique_ptr<char, decltype(&std::free)> demangled(
      abi::__cxa_demangle(mangled, nullptr, nullptr, &status), &std::free);
  std::string s = status == 0 && demangled ? demangled.get() : mangled;
  if (s.rfind("void ", 0) == 0) s.erase(0, 5);
  // Drop the parameter list: the last top-level "(...)".
  if (!s.empty() && s.back() == ')') {
    int depth = 0;
    for (size_t i = s.size(); i-- > 0;) {
      depth += s[i] == ')' ? 1 : s[i] == '(' ? -1 : 0;
      if (depth == 0) {
        s.erase(i);
        break;
      }
    }
  }
  // Drop the namespaces: everything up to the last "::" outside <...> and (...).
  size_t from = 0;
  int depth = 0;
  for (size_t i = 0; i + 1 < s.size(); ++i) {
    const char c = s[i];
    depth += c == '<' || c == '(' ? 1 : c == '>' || c == ')' ? -1 : 0;
    if (depth == 0 && c == ':' && s[i + 1] == ':') from = i + 2;
  }
  s.erase(0, from);
  constexpr size_t kMax = 96;
  if (s.size() > kMax) s = s.substr(0, kMax - 3) + "...";
  return s;
}

bool KernelTrace::Start() {
  {
    std::lock_guard<std::mutex> lock(g_mu);
    g_storage.clear();
    g_spans = &g_storage;
  }
  return Check(cuptiActivityRegisterCallbacks(BufferRequested, BufferCompleted),
               "register callbacks") &&
         Check(cuptiActivityEnable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL), "enable kernels");
}

std::vector<KernelSpan> KernelTrace::Stop() {
  Check(cuptiActivityFlushAll(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED), "flush");
  Check(cuptiActivityDisable(CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL), "disable kernels");
  std::vector<KernelSpan> out;
  {
    std::lock_guard<std::mutex> lock(g_mu);
    out.swap(g_storage);
    g_spans = nullptr;
  }
  std::sort(out.begin(), out.end(),
            [](const KernelSpan& a, const KernelSpan& b) { return a.start_ns < b.start_ns; });
  return out;
}

}  // namespace attnres::bench
