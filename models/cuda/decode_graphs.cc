// Capture and replay of decode-step graphs.
#include "models/cuda/decode_graphs.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "models/cuda/cuda_check.h"

namespace attnres::cuda {

int DecodeBucket(int rows, int max_rows) {
  int b = 1;
  while (b < rows) b *= 2;
  if (b > 256) return 0;
  b = std::min(b, max_rows);
  return b >= rows ? b : 0;
}

void DecodeGraphs::Clear() {
  for (auto& [key, exec] : graphs_) cudaGraphExecDestroy(exec);
  graphs_.clear();
}

absl::Status DecodeGraphs::Launch(int bucket, int splits, uint64_t generation,
                                  const std::function<absl::Status(cudaStream_t)>& body,
                                  cudaStream_t stream) {
  if (generation != generation_) {
    Clear();
    generation_ = generation;
  }
  auto it = graphs_.find({bucket, splits});
  if (it == graphs_.end()) {
    ATTNRES_CUDA_RETURN(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal));
    const absl::Status st = body(stream);
    cudaGraph_t graph = nullptr;
    const cudaError_t end = cudaStreamEndCapture(stream, &graph);
    if (!st.ok()) {
      if (graph) cudaGraphDestroy(graph);
      return st;
    }
    if (end != cudaSuccess) {
      return absl::InternalError(absl::StrCat("decode graph capture (bucket ", bucket,
                                              "): ", cudaGetErrorString(end)));
    }
    if (const char* dir = std::getenv("ATTNRES_GRAPH_DOT"); dir != nullptr && *dir != '\0') {
      // For inspection (node kinds, edge types, launch attributes). A failed dump only warns,
      // and its error is cleared so no later launch check picks it up.
      const std::string path = absl::StrCat(dir, "/decode_graph_b", bucket, "_s", splits, ".dot");
      if (const cudaError_t e =
              cudaGraphDebugDotPrint(graph, path.c_str(), cudaGraphDebugDotFlagsVerbose);
          e != cudaSuccess) {
        std::fprintf(stderr, "attnres cuda: ATTNRES_GRAPH_DOT: cannot write %s: %s\n", path.c_str(),
                     cudaGetErrorString(e));
        cudaGetLastError();
      }
    }
    cudaGraphExec_t exec = nullptr;
    const cudaError_t inst = cudaGraphInstantiate(&exec, graph, 0);
    cudaGraphDestroy(graph);
    if (inst != cudaSuccess) {
      return absl::InternalError(absl::StrCat("decode graph instantiate (bucket ", bucket,
                                              "): ", cudaGetErrorString(inst)));
    }
    it = graphs_.emplace(std::make_pair(bucket, splits), exec).first;
  }
  ATTNRES_CUDA_RETURN(cudaGraphLaunch(it->second, stream));
  return absl::OkStatus();
}

}  // namespace attnres::cuda
