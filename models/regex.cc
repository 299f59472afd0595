// PCRE2 wrapper for the pre-tokenizer regexes. Each thread gets its own JIT stack and match
// data lazily, so one compiled Regex serves concurrent Encode calls.
#define PCRE2_CODE_UNIT_WIDTH 8
#include "models/regex.h"

#include <pcre2.h>

#include "models/tokenizer_json_util.h"

namespace attnres {
namespace {

constexpr std::string_view kOnigSpaceSet = "\\t\\n\\x0B\\f\\r\\x{85}\\p{Z}";

// Per-thread scratch: a JIT stack large enough for long whitespace runs under \s+(?!\S).
struct ThreadScratch {
  pcre2_jit_stack* jit_stack = nullptr;
  pcre2_match_context* context = nullptr;
  ThreadScratch() {
    context = pcre2_match_context_create(nullptr);
    jit_stack = pcre2_jit_stack_create(32 * 1024, 16 * 1024 * 1024, nullptr);
    if (context != nullptr && jit_stack != nullptr) {
      pcre2_jit_stack_assign(context, nullptr, jit_stack);
    }
  }
  ~ThreadScratch() {
    pcre2_jit_stack_free(jit_stack);
    pcre2_match_context_free(context);
  }
};

ThreadScratch& Scratch() {
  thread_local ThreadScratch scratch;
  return scratch;
}

}  // namespace

std::string TranslateOnigurumaPattern(std::string_view pattern) {
  std::string out;
  bool in_class = false;
  size_t class_start = 0;  // index in `pattern` right after '[' or '[^'
  for (size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '\\' && i + 1 < pattern.size()) {
      const char e = pattern[++i];
      if (e == 's') {
        out += in_class ? std::string(kOnigSpaceSet) : json_util::Cat("[", kOnigSpaceSet, "]");
      } else if (e == 'S' && !in_class) {
        out += json_util::Cat("[^", kOnigSpaceSet, "]");
      } else {
        out += c;
        out += e;
      }
      continue;
    }
    out += c;
    if (!in_class && c == '[') {
      in_class = true;
      class_start = i + 1;
      if (class_start < pattern.size() && pattern[class_start] == '^') {
        out += '^';
        ++i;
        ++class_start;
      }
    } else if (in_class && c == ']' && i != class_start) {
      in_class = false;
    }
  }
  return out;
}

absl::StatusOr<std::unique_ptr<Regex>> Regex::Compile(std::string_view pattern, bool literal) {
  const std::string translated =
      literal ? std::string(pattern) : TranslateOnigurumaPattern(pattern);
  uint32_t options = PCRE2_UTF | PCRE2_UCP;
  if (literal) options |= PCRE2_LITERAL;
  int error = 0;
  PCRE2_SIZE offset = 0;
  pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(translated.data()),
                                   translated.size(), options, &error, &offset, nullptr);
  if (code == nullptr) {
    PCRE2_UCHAR message[256];
    pcre2_get_error_message(error, message, sizeof(message));
    return absl::InvalidArgumentError(json_util::Cat("regex does not compile at offset ", offset,
                                                     ": ", reinterpret_cast<char*>(message)));
  }
  pcre2_jit_compile(code, PCRE2_JIT_COMPLETE);  // best effort: the interpreter is the fallback
  return std::unique_ptr<Regex>(new Regex(code));
}

Regex::~Regex() { pcre2_code_free(static_cast<pcre2_code*>(code_)); }

void Regex::ForEachMatch(std::string_view text, absl::FunctionRef<void(size_t, size_t)> fn) const {
  auto* code = static_cast<pcre2_code*>(code_);
  ThreadScratch& scratch = Scratch();
  pcre2_match_data* data = pcre2_match_data_create_from_pattern(code, nullptr);
  const auto* subject = reinterpret_cast<PCRE2_SPTR>(text.data());
  size_t pos = 0;
  while (pos < text.size()) {
    int rc =
        pcre2_match(code, subject, text.size(), pos, PCRE2_NO_UTF_CHECK, data, scratch.context);
    if (rc == PCRE2_ERROR_JIT_STACKLIMIT) {
      rc = pcre2_match(code, subject, text.size(), pos, PCRE2_NO_UTF_CHECK | PCRE2_NO_JIT, data,
                       scratch.context);
    }
    if (rc < 0) break;  // no match (or a resource limit): the rest stays unmatched
    const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(data);
    const size_t begin = ovector[0], end = ovector[1];
    if (end > begin) {
      fn(begin, end);
      pos = end;
    } else {
      // Empty match: step over one whole character.
      pos = begin + 1;
      while (pos < text.size() && (static_cast<unsigned char>(text[pos]) & 0xC0) == 0x80) ++pos;
    }
  }
  pcre2_match_data_free(data);
}

}  // namespace attnres
