// Typed reads of single keys of JSON objects: a model directory's files (config.json,
// generation_config.json) and the HTTP API's request bodies. Every wrong type or range is
// INVALID_ARGUMENT worded `<origin>: key "<key>" <rule>`; no read throws. Absent or null keys
// leave the output unchanged.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json_fwd.hpp"

namespace attnres::config_json {

absl::Status KeyError(absl::string_view origin, absl::string_view key, absl::string_view rule);

// Whether `key` is present and not null.
bool Has(const nlohmann::json& j, const char* key);

// An integer in [min_value, 2^30]; a `required` key must be present.
absl::Status ReadInt(const nlohmann::json& j, absl::string_view origin, const char* key,
                     bool required, int min_value, int* out);
// A finite number.
absl::Status ReadDouble(const nlohmann::json& j, absl::string_view origin, const char* key,
                        double* out);
absl::Status ReadBool(const nlohmann::json& j, absl::string_view origin, const char* key,
                      bool* out);
absl::Status ReadString(const nlohmann::json& j, absl::string_view origin, const char* key,
                        std::string* out);
// An integer or a list of integers, each in [0, 2^31) (read wide, so that no value wraps into a
// valid-looking id); appended to *out.
absl::Status ReadTokenIds(const nlohmann::json& j, absl::string_view origin, const char* key,
                          std::vector<int32_t>* out);

}  // namespace attnres::config_json
