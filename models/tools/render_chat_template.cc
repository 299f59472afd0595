// attnres-render-chat-template TEMPLATE CONTEXT_JSON: renders a chat template file with a JSON
// object file's keys as variables and prints the result to stdout, byte for byte. For comparing
// the renderer with Python's jinja2 (tests/reference/render_chat_templates.py). Exit status: 0
// rendered; 1 compile or render error (message on stderr); 2 raise_exception (its message on
// stderr); 64 usage or unreadable input.
#include <cstdio>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "models/chat_template.h"
#include "nlohmann/json.hpp"

namespace {

bool ReadFile(const char* path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::stringstream ss;
  ss << in.rdbuf();
  *out = ss.str();
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s TEMPLATE CONTEXT_JSON\n", argv[0]);
    return 64;
  }
  std::string source, context_text;
  if (!ReadFile(argv[1], &source) || !ReadFile(argv[2], &context_text)) {
    std::fprintf(stderr, "cannot read %s or %s\n", argv[1], argv[2]);
    return 64;
  }
  const auto context =
      nlohmann::ordered_json::parse(context_text, nullptr, /*allow_exceptions=*/false);
  if (context.is_discarded()) {
    std::fprintf(stderr, "%s: not JSON\n", argv[2]);
    return 64;
  }
  auto tmpl = attnres::ChatTemplate::Compile(source);
  if (!tmpl.ok()) {
    std::fprintf(stderr, "%s\n", std::string(tmpl.status().message()).c_str());
    return 1;
  }
  auto text = tmpl->Render(context);
  if (!text.ok()) {
    std::fprintf(stderr, "%s\n", std::string(text.status().message()).c_str());
    return attnres::IsTemplateRaise(text.status()) ? 2 : 1;
  }
  std::fwrite(text->data(), 1, text->size(), stdout);
  return 0;
}
