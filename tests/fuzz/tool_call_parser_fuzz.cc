// Fuzz target: the tool-call parsers (server/grpc/tool_call_parser.h) on arbitrary generated
// text. Input: byte 0 picks the parser (bit 0: hermes or llama3_json), parallel_tool_calls (bit
// 1), and the stream's piece size (1 + bits 2-7); the rest is the text. Checks: a whole-text parse
// holds calls whose arguments are JSON objects, only one without parallel calls, and content (for
// hermes only) that is a prefix of the text; streamed in pieces, the text releases content in
// order and reads the same calls, and a stream without calls, or cut short, is exactly the text.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "nlohmann/json.hpp"
#include "server/grpc/tool_call_parser.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using attnres::ToolCallMode;
  using attnres::ToolCallParser;
  using attnres::ToolCallStream;
  if (size < 1) return 0;
  ToolCallMode mode;
  mode.parser = data[0] & 1 ? ToolCallParser::kLlama3Json : ToolCallParser::kHermes;
  mode.parallel_tool_calls = (data[0] & 2) != 0;
  const size_t piece = 1 + (data[0] >> 2);
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);

  const std::optional<attnres::ParsedToolCalls> parsed = attnres::ParseToolCalls(text, mode);
  if (parsed.has_value()) {
    FUZZ_CHECK(!parsed->calls.empty(), "a parse holds at least one call");
    FUZZ_CHECK(mode.parallel_tool_calls || parsed->calls.size() == 1,
               "without parallel calls only the first is kept");
    for (const attnres::ParsedToolCall& c : parsed->calls) {
      const nlohmann::json args = nlohmann::json::parse(c.arguments_json, nullptr, false);
      FUZZ_CHECK(!args.is_discarded() && args.is_object(), "arguments are a JSON object");
    }
    if (parsed->content.has_value()) {
      FUZZ_CHECK(mode.parser == ToolCallParser::kHermes, "only hermes has content before calls");
      FUZZ_CHECK(text.substr(0, parsed->content->size()) == *parsed->content,
                 "the content is the text before the calls");
    }
  }

  ToolCallStream stream(mode);
  std::string released;
  for (size_t at = 0; at < text.size(); at += piece)
    released += stream.Push(text.substr(at, piece));
  FUZZ_CHECK(text.substr(0, released.size()) == released, "a stream releases the text in order");
  const ToolCallStream::End end = stream.Finish(/*parse=*/true);
  FUZZ_CHECK(end.calls.size() == (parsed.has_value() ? parsed->calls.size() : 0),
             "a stream reads the calls the whole text has");
  for (size_t i = 0; i < end.calls.size(); ++i) {
    FUZZ_CHECK(end.calls[i].name == parsed->calls[i].name &&
                   end.calls[i].arguments_json == parsed->calls[i].arguments_json,
               "a stream reads the same calls");
  }
  if (end.calls.empty()) {
    FUZZ_CHECK(released + end.content == text, "a stream without calls is its text");
  }
  // Cut short (parse false), the whole text comes out as content.
  ToolCallStream cut(mode);
  std::string all;
  for (size_t at = 0; at < text.size(); at += piece) all += cut.Push(text.substr(at, piece));
  all += cut.Finish(/*parse=*/false).content;
  FUZZ_CHECK(all == text, "a stream cut short is its text");
  return 0;
}
