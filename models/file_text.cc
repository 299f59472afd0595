// Whole-file reads (see file_text.h).
#include "models/file_text.h"

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace attnres {

absl::StatusOr<std::string> ReadFileText(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat(path.string(), ": cannot open"));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) return absl::DataLossError(absl::StrCat(path.string(), ": read failed"));
  return text.str();
}

}  // namespace attnres
