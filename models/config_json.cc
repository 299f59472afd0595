// Typed key reads for the model directory's JSON files (see config_json.h).
#include "models/config_json.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace attnres::config_json {

using nlohmann::json;

absl::Status KeyError(absl::string_view origin, absl::string_view key, absl::string_view rule) {
  return absl::InvalidArgumentError(absl::StrCat(origin, ": key \"", key, "\" ", rule));
}

bool Has(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && !it->is_null();
}

absl::Status ReadInt(const json& j, absl::string_view origin, const char* key, bool required,
                     int min_value, int* out) {
  if (!Has(j, key)) return required ? KeyError(origin, key, "is required") : absl::OkStatus();
  const json& value = j[key];
  if (!value.is_number_integer()) return KeyError(origin, key, "must be an integer");
  const int64_t v = value.is_number_unsigned() && value.get<uint64_t>() > INT64_MAX
                        ? INT64_MAX
                        : value.get<int64_t>();
  if (v < min_value || v > (int64_t{1} << 30)) {
    return KeyError(origin, key, absl::StrCat("must be in [", min_value, ", 2^30], got ", v));
  }
  *out = static_cast<int>(v);
  return absl::OkStatus();
}

absl::Status ReadDouble(const json& j, absl::string_view origin, const char* key, double* out) {
  if (!Has(j, key)) return absl::OkStatus();
  const json& value = j[key];
  if (!value.is_number()) return KeyError(origin, key, "must be a number");
  const double v = value.get<double>();
  if (!std::isfinite(v)) return KeyError(origin, key, "must be a finite number");
  *out = v;
  return absl::OkStatus();
}

absl::Status ReadBool(const json& j, absl::string_view origin, const char* key, bool* out) {
  if (!Has(j, key)) return absl::OkStatus();
  const json& value = j[key];
  if (!value.is_boolean()) return KeyError(origin, key, "must be true or false");
  *out = value.get<bool>();
  return absl::OkStatus();
}

absl::Status ReadString(const json& j, absl::string_view origin, const char* key,
                        std::string* out) {
  if (!Has(j, key)) return absl::OkStatus();
  const json& value = j[key];
  if (!value.is_string()) return KeyError(origin, key, "must be a string");
  *out = value.get<std::string>();
  return absl::OkStatus();
}

absl::Status ReadTokenIds(const json& j, absl::string_view origin, const char* key,
                          std::vector<int32_t>* out) {
  if (!Has(j, key)) return absl::OkStatus();
  const json& value = j[key];
  if (!value.is_number_integer() && !value.is_array()) {
    return KeyError(origin, key, "must be an integer or a list of integers");
  }
  for (const json& v : value.is_array() ? value : json::array({value})) {
    if (!v.is_number_integer()) return KeyError(origin, key, "must hold integers only");
    const int64_t id =
        v.is_number_unsigned() && v.get<uint64_t>() > INT32_MAX ? int64_t{-1} : v.get<int64_t>();
    if (id < 0 || id > INT32_MAX) {
      return KeyError(origin, key, absl::StrCat("ids must be in [0, 2^31), got ", v.dump()));
    }
    out->push_back(static_cast<int32_t>(id));
  }
  return absl::OkStatus();
}

}  // namespace attnres::config_json
