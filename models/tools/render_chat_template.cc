// attnres-render-chat-template TEMPLATE CONTEXT_JSON: renders a chat template file with a JSON
// object file's keys as variables and prints the result to stdout, byte for byte. For comparing
// the renderer with Python's jinja2 (tests/reference/render_chat_templates.py). Exit status: 0
// rendered; 1 compile or render error (message on stderr); 2 raise_exception (its message on
// stderr); 64 usage or unreadable input.
#include <cstdio>
#include <iostream>
#include <string>

#include "models/chat_template.h"
#include "models/file_text.h"
#include "nlohmann/json.hpp"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s TEMPLATE CONTEXT_JSON\n", argv[0]);
    return 64;
  }
  const absl::StatusOr<std::string> source = attnres::ReadFileText(argv[1]);
  const absl::StatusOr<std::string> context_text = attnres::ReadFileText(argv[2]);
  for (const auto* read : {&source, &context_text}) {
    if (!read->ok()) {
      std::fprintf(stderr, "%s\n", std::string(read->status().message()).c_str());
      return 64;
    }
  }
  const auto context =
      nlohmann::ordered_json::parse(*context_text, nullptr, /*allow_exceptions=*/false);
  if (context.is_discarded()) {
    std::fprintf(stderr, "%s: not JSON\n", argv[2]);
    return 64;
  }
  auto tmpl = attnres::ChatTemplate::Compile(*source);
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
