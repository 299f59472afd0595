// Bounds on one chat-template render (public as ChatTemplateLimits, models/chat_template.h);
// exceeding one is an error naming the limit.
#pragma once

#include <cstddef>
#include <cstdint>

namespace attnres::jinja {

struct Limits {
  size_t max_output_bytes = 4 << 20;  // the output, and any one string or list built on the way
  int64_t max_steps = 10'000'000;     // expression evaluations, statements, loop iterations
  int max_macro_depth = 100;          // nested macro calls
};

}  // namespace attnres::jinja
