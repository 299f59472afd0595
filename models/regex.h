// Pre-tokenizer regexes: PCRE2 (UTF + UCP, JIT when available) running Oniguruma-syntax
// patterns as Hugging Face `tokenizers` writes them. Owns the translation of the few constructs
// whose meaning differs (\s, \S); does not split text into tokens itself.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <string_view>

#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"

namespace attnres {

// Rewrites \s and \S to Oniguruma's Unicode whitespace set: U+0009..U+000D, U+0085 and
// General_Category Z. PCRE2 with UCP also counts U+180E, which Oniguruma does not.
std::string TranslateOnigurumaPattern(std::string_view pattern);

class Regex {
 public:
  // Compiles an Oniguruma-syntax pattern; `literal` treats it as a plain string instead.
  static absl::StatusOr<std::unique_ptr<Regex>> Compile(std::string_view pattern, bool literal);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;

  // Calls fn(begin, end) for each non-overlapping, non-empty match in `text` (valid UTF-8), left
  // to right. Thread-safe.
  void ForEachMatch(std::string_view text, absl::FunctionRef<void(size_t, size_t)> fn) const;

 private:
  explicit Regex(void* code) : code_(code) {}
  void* code_;  // pcre2_code_8*; kept opaque so users need no PCRE2 headers
};

}  // namespace attnres
