// Small helpers for reading tokenizer.json with nlohmann::json: typed optional fields and load
// errors that name the file and the key. Header-only; no tokenizer logic.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace attnres::json_util {

// Debian's Abseil is built with its own absl::string_view, so absl::StrCat and absl hash maps
// do not take std::string_view; these bridge the two.
inline absl::string_view Absl(std::string_view s) { return {s.data(), s.size()}; }

inline std::string_view Piece(std::string_view s) { return s; }
inline std::string_view Piece(absl::string_view s) { return {s.data(), s.size()}; }
inline std::string_view Piece(const char* s) { return s; }
inline std::string_view Piece(const std::string& s) { return s; }
inline std::string Piece(size_t n) { return std::to_string(n); }
inline std::string Piece(int n) { return std::to_string(n); }

// Concatenates strings and numbers (absl::StrCat for std::string_view arguments).
template <typename... Args>
std::string Cat(const Args&... args) {
  std::string out;
  (out.append(Piece(args)), ...);
  return out;
}

// Token ids index dense tables (id -> token), so a file may not name an id past this: 4M ids,
// 16 times the largest real vocabulary, keeps a corrupt or hostile id from allocating gigabytes.
inline constexpr int64_t kMaxTokenId = (int64_t{1} << 22) - 1;

// Whether `v` is a token id: an integer in [0, kMaxTokenId].
inline bool IsTokenId(const nlohmann::json& v) {
  return v.is_number_integer() && v.get<int64_t>() >= 0 && v.get<int64_t>() <= kMaxTokenId;
}
inline constexpr char kTokenIdRule[] = "expected an integer id in [0, 4194303]";

// "<origin>: key <key>: <detail>", as INVALID_ARGUMENT.
inline absl::Status LoadError(std::string_view origin, std::string_view key,
                              std::string_view detail) {
  return absl::InvalidArgumentError(Cat(origin, ": key ", key, ": ", detail));
}

// Reads an optional boolean `name` of object `j`; null or absent gives `fallback`.
inline absl::Status GetBool(const nlohmann::json& j, const char* name, bool fallback,
                            std::string_view origin, std::string_view key, bool* out) {
  *out = fallback;
  if (!j.contains(name) || j[name].is_null()) return absl::OkStatus();
  if (!j[name].is_boolean()) {
    return LoadError(origin, Cat(key, ".", name), "expected a boolean");
  }
  *out = j[name].get<bool>();
  return absl::OkStatus();
}

// Reads the required string `name` of object `j`.
inline absl::Status GetString(const nlohmann::json& j, const char* name, std::string_view origin,
                              std::string_view key, std::string* out) {
  if (!j.is_object() || !j.contains(name) || !j[name].is_string()) {
    return LoadError(origin, Cat(key, ".", name), "missing or not a string");
  }
  *out = j[name].get<std::string>();
  return absl::OkStatus();
}

}  // namespace attnres::json_util
