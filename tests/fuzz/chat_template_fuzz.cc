// Fuzz target: chat templates. The bytes up to the first NUL are a template's source; the rest
// make its context (messages with roles and contents, add_generation_prompt, tools as a string
// list). Compiling either succeeds or gives INVALID_ARGUMENT with a position; rendering (under
// small limits) either succeeds within the output limit or gives INVALID_ARGUMENT, a
// raise_exception's own message or one naming a line. Never a crash, a hang or unbounded memory.
#include <cstdint>
#include <string>
#include <string_view>

#include "models/chat_template.h"
#include "nlohmann/json.hpp"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  const size_t nul = bytes.find('\0');
  const std::string_view source = bytes.substr(0, nul);
  const std::string_view rest = nul == std::string_view::npos ? "" : bytes.substr(nul + 1);

  auto tmpl = attnres::ChatTemplate::Compile(source);
  if (!tmpl.ok()) {
    FUZZ_CHECK(tmpl.status().code() == absl::StatusCode::kInvalidArgument,
               "compile errors are INVALID_ARGUMENT");
    FUZZ_CHECK(std::string(tmpl.status().message()).rfind("chat template line ", 0) == 0,
               "compile errors name a position");
    return 0;
  }

  // Context: messages from '\x01'-separated chunks; a chunk's first byte picks the role.
  nlohmann::ordered_json context = {{"bos_token", "<s>"},
                                    {"eos_token", "</s>"},
                                    {"add_generation_prompt", !rest.empty() && (rest[0] & 1)},
                                    {"tools", nullptr}};
  nlohmann::ordered_json messages = nlohmann::ordered_json::array();
  static constexpr const char* kRoles[] = {"system", "user", "assistant", "tool"};
  size_t pos = 0;
  while (pos < rest.size() && messages.size() < 64) {
    size_t end = rest.find('\x01', pos);
    if (end == std::string_view::npos) end = rest.size();
    const std::string_view chunk = rest.substr(pos, end - pos);
    if (!chunk.empty()) {
      // Raw bytes may be invalid UTF-8; the renderer must cope, so they go in as they are.
      nlohmann::ordered_json m = {{"role", kRoles[static_cast<uint8_t>(chunk[0]) % 4]},
                                  {"content", std::string(chunk.substr(1))}};
      if (static_cast<uint8_t>(chunk[0]) & 4) {
        m["tool_calls"] = {{{"function", {{"name", "f"}, {"arguments", {{"x", 1.5}}}}}}};
      }
      messages.push_back(std::move(m));
    }
    pos = end + 1;
  }
  context["messages"] = std::move(messages);
  if (rest.size() > 2 && (rest[1] & 2)) context["tools"] = {"a", {{"type", "function"}}};

  attnres::ChatTemplateLimits limits;
  limits.max_output_bytes = 1 << 16;
  limits.max_steps = 200000;
  limits.max_macro_depth = 20;
  auto text = tmpl->Render(context, limits);
  if (!text.ok()) {
    FUZZ_CHECK(text.status().code() == absl::StatusCode::kInvalidArgument,
               "render errors are INVALID_ARGUMENT");
    FUZZ_CHECK(attnres::IsTemplateRaise(text.status()) ||
                   std::string(text.status().message()).rfind("chat template line ", 0) == 0,
               "render errors are the template's raise or name a line");
    return 0;
  }
  FUZZ_CHECK(text->size() <= limits.max_output_bytes, "output stays within the limit");
  return 0;
}
