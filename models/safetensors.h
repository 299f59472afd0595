// Memory-mapped safetensors files and a name -> tensor view over one file or a sharded set
// (model.safetensors.index.json). Owns the mappings; converts nothing. Names have a
// "language_model." prefix stripped (Kimi K3 checkpoints).
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace attnres {

enum class DType { kF32, kF16, kBF16 };
const char* DTypeName(DType dtype);
int DTypeSize(DType dtype);

struct TensorView {
  std::string file;             // which file holds it, for error messages
  DType dtype = DType::kF32;
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;  // little-endian, row-major; valid while the store lives
  int64_t num_elements() const;
};

class MappedFile;

class SafetensorsStore {
 public:
  // Opens <dir>/model.safetensors.index.json when present, else every <dir>/*.safetensors.
  static absl::StatusOr<std::unique_ptr<SafetensorsStore>> Open(const std::filesystem::path& dir);
  // Opens one file (used by tests and tools).
  static absl::StatusOr<std::unique_ptr<SafetensorsStore>> OpenFile(
      const std::filesystem::path& file);
  ~SafetensorsStore();

  // NOT_FOUND naming the tensor and the directory when absent.
  absl::StatusOr<const TensorView*> Get(const std::string& name) const;
  bool Contains(const std::string& name) const { return tensors_.count(name) > 0; }
  const std::map<std::string, TensorView>& tensors() const { return tensors_; }

 private:
  absl::Status AddFile(const std::filesystem::path& file);
  std::string origin_;
  std::vector<std::unique_ptr<MappedFile>> files_;
  std::map<std::string, TensorView> tensors_;
};

// Parses one safetensors file's bytes (8-byte header length, JSON header, data) into (name,
// view) pairs in header order, "language_model." stripped; views point into `bytes`. Every
// inconsistency (truncation, a shape whose byte count overflows, offsets out of range or not
// matching shape and dtype, an unknown dtype) is INVALID_ARGUMENT naming `file` and the tensor.
absl::StatusOr<std::vector<std::pair<std::string, TensorView>>> ParseSafetensors(
    std::span<const uint8_t> bytes, const std::string& file);

// Writes tensors to a .safetensors file (used by the random-model tool and tests).
struct TensorToWrite {
  std::string name;
  DType dtype;
  std::vector<int64_t> shape;
  std::vector<uint8_t> bytes;
};
absl::Status WriteSafetensors(const std::filesystem::path& file,
                              const std::vector<TensorToWrite>& tensors);

}  // namespace attnres
