// safetensors parsing: 8-byte little-endian header length, a JSON header, then raw tensor data.
// Every inconsistency (truncation, out-of-range offsets, a byte count that does not match shape
// and dtype, unknown dtype) is an error naming the file and the tensor.
#include "models/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <limits>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "models/file_text.h"
#include "nlohmann/json.hpp"

namespace attnres {

class MappedFile {
 public:
  static absl::StatusOr<std::unique_ptr<MappedFile>> Open(const std::filesystem::path& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return absl::NotFoundError(absl::StrCat(path.string(), ": cannot open"));
    struct stat st;
    if (::fstat(fd, &st) != 0) {
      ::close(fd);
      return absl::InternalError(absl::StrCat(path.string(), ": cannot stat"));
    }
    auto f = std::unique_ptr<MappedFile>(new MappedFile);
    f->size_ = static_cast<size_t>(st.st_size);
    if (f->size_ > 0) {
      void* p = ::mmap(nullptr, f->size_, PROT_READ, MAP_PRIVATE, fd, 0);
      if (p == MAP_FAILED) {
        ::close(fd);
        return absl::InternalError(absl::StrCat(path.string(), ": mmap failed"));
      }
      f->data_ = static_cast<const uint8_t*>(p);
    }
    ::close(fd);
    return f;
  }
  ~MappedFile() {
    if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
  }
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }

 private:
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

namespace {

constexpr absl::string_view kStripPrefix = "language_model.";

absl::StatusOr<DType> ParseDType(const std::string& s) {
  if (s == "F32") return DType::kF32;
  if (s == "F16") return DType::kF16;
  if (s == "BF16") return DType::kBF16;
  return absl::InvalidArgumentError(absl::StrCat("dtype \"", s, "\" is not F32, F16 or BF16"));
}

}  // namespace

const char* DTypeName(DType dtype) {
  switch (dtype) {
    case DType::kF32: return "F32";
    case DType::kF16: return "F16";
    case DType::kBF16: return "BF16";
  }
  return "?";
}

int DTypeSize(DType dtype) { return dtype == DType::kF32 ? 4 : 2; }

int64_t TensorView::num_elements() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

SafetensorsStore::~SafetensorsStore() = default;

absl::StatusOr<std::vector<std::pair<std::string, TensorView>>> ParseSafetensors(
    std::span<const uint8_t> bytes, const std::string& file) {
  auto error = [&](absl::string_view what) {
    return absl::InvalidArgumentError(absl::StrCat(file, ": ", what));
  };
  if (bytes.size() < 8) return error("truncated: shorter than the 8-byte header length");
  uint64_t header_len = 0;
  std::memcpy(&header_len, bytes.data(), 8);
  if (header_len > bytes.size() - 8) {
    return error(absl::StrCat("truncated: header of ", header_len, " bytes but file has ",
                              bytes.size(), " bytes"));
  }
  absl::string_view header(reinterpret_cast<const char*>(bytes.data()) + 8, header_len);
  nlohmann::json j = nlohmann::json::parse(header, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) return error("header is not a JSON object");
  const uint8_t* base = bytes.data() + 8 + header_len;
  const uint64_t data_size = bytes.size() - 8 - header_len;
  std::vector<std::pair<std::string, TensorView>> out;
  for (auto it = j.begin(); it != j.end(); ++it) {
    if (it.key() == "__metadata__") continue;
    const nlohmann::json& t = it.value();
    auto terr = [&](absl::string_view what) {
      return error(absl::StrCat("tensor \"", it.key(), "\": ", what));
    };
    if (!t.is_object() || !t.contains("dtype") || !t.contains("shape") ||
        !t.contains("data_offsets") || !t["dtype"].is_string() || !t["shape"].is_array() ||
        !t["data_offsets"].is_array() || t["data_offsets"].size() != 2) {
      return terr("needs dtype, shape and data_offsets [begin, end]");
    }
    auto dtype = ParseDType(t["dtype"].get<std::string>());
    if (!dtype.ok()) return terr(dtype.status().message());
    TensorView view;
    view.file = file;
    view.dtype = *dtype;
    // The byte count the shape needs, checked so that no product of dimensions overflows: a
    // shape whose element count wraps must not pass as a small tensor.
    uint64_t needed = DTypeSize(view.dtype);
    for (const auto& d : t["shape"]) {
      if (!d.is_number_integer() || d.get<int64_t>() < 0) return terr("bad shape");
      view.shape.push_back(d.get<int64_t>());
      if (__builtin_mul_overflow(needed, static_cast<uint64_t>(view.shape.back()), &needed) ||
          needed > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return terr("shape's byte count overflows 64 bits");
      }
    }
    const auto& off = t["data_offsets"];
    if (!off[0].is_number_unsigned() || !off[1].is_number_unsigned()) {
      return terr("data_offsets must be non-negative integers");
    }
    uint64_t begin = off[0].get<uint64_t>(), end = off[1].get<uint64_t>();
    if (begin > end || end > data_size) {
      return terr(absl::StrCat("data_offsets [", begin, ", ", end, ") out of the ", data_size,
                               " data bytes (truncated file?)"));
    }
    if (end - begin != needed) {
      return terr(absl::StrCat("holds ", end - begin, " bytes but shape and dtype need ", needed));
    }
    view.data = base + begin;
    std::string key = it.key();
    if (absl::StartsWith(key, kStripPrefix)) key = key.substr(kStripPrefix.size());
    out.emplace_back(std::move(key), std::move(view));
  }
  return out;
}

absl::Status SafetensorsStore::AddFile(const std::filesystem::path& path) {
  auto mapped = MappedFile::Open(path);
  if (!mapped.ok()) return mapped.status();
  const MappedFile& f = **mapped;
  auto parsed = ParseSafetensors(std::span<const uint8_t>(f.data(), f.size()), path.string());
  if (!parsed.ok()) return parsed.status();
  for (auto& [key, view] : *parsed) {
    if (auto it = tensors_.find(key); it != tensors_.end()) {
      return absl::InvalidArgumentError(
          absl::StrCat(path.string(), ": tensor \"", key, "\": also defined in ", it->second.file));
    }
    tensors_.emplace(std::move(key), std::move(view));
  }
  files_.push_back(std::move(*mapped));
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<SafetensorsStore>> SafetensorsStore::OpenFile(
    const std::filesystem::path& file) {
  auto store = std::unique_ptr<SafetensorsStore>(new SafetensorsStore);
  store->origin_ = file.string();
  if (auto st = store->AddFile(file); !st.ok()) return st;
  return store;
}

absl::StatusOr<std::unique_ptr<SafetensorsStore>> SafetensorsStore::Open(
    const std::filesystem::path& dir) {
  auto store = std::unique_ptr<SafetensorsStore>(new SafetensorsStore);
  store->origin_ = dir.string();
  std::set<std::filesystem::path> files;
  const auto index_path = dir / "model.safetensors.index.json";
  if (std::filesystem::exists(index_path)) {
    absl::StatusOr<std::string> text = ReadFileText(index_path);
    if (!text.ok()) return text.status();
    nlohmann::json j = nlohmann::json::parse(*text, nullptr, false);
    if (j.is_discarded() || !j.contains("weight_map") || !j["weight_map"].is_object()) {
      return absl::InvalidArgumentError(
          absl::StrCat(index_path.string(), ": needs a \"weight_map\" object"));
    }
    for (const auto& [tensor, file] : j["weight_map"].items()) {
      // Shards sit beside the index: a plain file name, never a path out of the directory.
      const std::filesystem::path name =
          file.is_string() ? std::filesystem::path(file.get<std::string>()) : "";
      if (name.empty() || name != name.filename() || name == "." || name == "..") {
        return absl::InvalidArgumentError(absl::StrCat(
            index_path.string(), ": weight_map[\"", tensor,
            "\"] must be the file name of a shard in the same directory, got ", file.dump()));
      }
      files.insert(dir / name);
    }
  } else {
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
      if (e.path().extension() == ".safetensors") files.insert(e.path());
    }
    if (ec) return absl::NotFoundError(absl::StrCat(dir.string(), ": ", ec.message()));
  }
  if (files.empty()) {
    return absl::NotFoundError(absl::StrCat(dir.string(), ": no *.safetensors files"));
  }
  for (const auto& f : files) {
    if (auto st = store->AddFile(f); !st.ok()) return st;
  }
  return store;
}

absl::StatusOr<const TensorView*> SafetensorsStore::Get(const std::string& name) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end()) {
    return absl::NotFoundError(
        absl::StrCat(origin_, ": missing tensor \"", name, "\""));
  }
  return &it->second;
}

absl::Status WriteSafetensors(const std::filesystem::path& file,
                              const std::vector<TensorToWrite>& tensors) {
  nlohmann::json header = nlohmann::json::object();
  uint64_t offset = 0;
  for (const auto& t : tensors) {
    header[t.name] = {{"dtype", DTypeName(t.dtype)},
                      {"shape", t.shape},
                      {"data_offsets", {offset, offset + t.bytes.size()}}};
    offset += t.bytes.size();
  }
  std::string h = header.dump();
  h.append((8 - h.size() % 8) % 8, ' ');  // align data to 8 bytes
  std::ofstream out(file, std::ios::binary);
  if (!out) return absl::InternalError(absl::StrCat(file.string(), ": cannot create"));
  uint64_t len = h.size();
  out.write(reinterpret_cast<const char*>(&len), 8);
  out.write(h.data(), static_cast<std::streamsize>(h.size()));
  for (const auto& t : tensors) {
    out.write(reinterpret_cast<const char*>(t.bytes.data()),
              static_cast<std::streamsize>(t.bytes.size()));
  }
  if (!out) return absl::InternalError(absl::StrCat(file.string(), ": write failed"));
  return absl::OkStatus();
}

}  // namespace attnres
