// Whole-file reads of the small text files a model directory and the server's flags name
// (config.json, generation_config.json, tokenizer_config.json, chat templates).
#pragma once

#include <filesystem>
#include <string>

#include "absl/status/statusor.h"

namespace attnres {

// The file's bytes. NOT_FOUND "<path>: cannot open" when it cannot be opened; DATA_LOSS
// "<path>: read failed" when reading fails.
absl::StatusOr<std::string> ReadFileText(const std::filesystem::path& path);

}  // namespace attnres
