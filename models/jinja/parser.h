// Tokens -> statement tree, following jinja2's parser (3.1): the same precedence, the same
// statements (if/elif/else, for with filter and else, set and block set with namespace
// attributes, macro, filter, with, generation, print, break/continue), filters and tests bound to
// the built-in ones at compile time. Refuses what the renderer lacks (extends, include, import,
// call blocks, recursive loops, *args) with a CompileError naming it.
#pragma once

#include <memory>
#include <string_view>

#include "models/jinja/ast.h"

namespace attnres::jinja {

struct Template {
  Body body;
};

// Throws CompileError.
std::shared_ptr<const Template> Parse(std::string_view source);

}  // namespace attnres::jinja
