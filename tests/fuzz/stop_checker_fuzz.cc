// Fuzz target: StopChecker against a direct reference. Input: byte 0 gives the number of stop
// strings (1 + bits 0-1) and how many leading text chunks are unarmed (bits 2-7, as min_tokens
// leaves a request's first tokens); the rest, split at each 0x00 byte, gives the stop strings and
// then the text chunks as a sequence's decoded deltas. A stop counts only where it ends past the
// unarmed text (length U). After each chunk the text so far either holds such a stop, and the
// request's whole output is that text cut at the earliest start of one, or it holds none.
// Checks: the pieces TakeReady returns (then a final flush) concatenate to exactly that output,
// and matched() is a stop string found where the cut is.
#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "server/engine/stop_checker.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const size_t num_stops = 1 + data[0] % 4;
  const size_t num_unarmed = data[0] >> 2;
  std::vector<std::string> parts;
  std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  for (size_t cut; (cut = rest.find('\0')) != std::string_view::npos; rest.remove_prefix(cut + 1)) {
    parts.emplace_back(rest.substr(0, cut));
  }
  parts.emplace_back(rest);
  std::vector<std::string> stops;
  size_t i = 0;
  for (; i < parts.size() && stops.size() < num_stops; ++i) {
    if (!parts[i].empty()) stops.push_back(parts[i]);  // the API refuses empty stop strings
  }
  if (stops.empty()) return 0;

  attnres::StopChecker checker(stops);
  std::string out, text;
  size_t unarmed_len = 0;  // U
  // The earliest start of stop s in t that ends past U.
  const auto find_armed = [&](const std::string& t, const std::string& s) {
    return t.find(s, unarmed_len >= s.size() ? unarmed_len - s.size() + 1 : 0);
  };
  bool stopped = false;
  std::string expected;
  for (size_t chunk = 0; i < parts.size() && !stopped; ++i, ++chunk) {
    const bool armed = chunk >= num_unarmed;
    text += parts[i];
    if (!armed) unarmed_len = text.size();
    size_t cut = std::string::npos;
    for (const std::string& s : stops) cut = std::min(cut, find_armed(text, s));
    stopped = checker.Append(parts[i], armed);
    FUZZ_CHECK(stopped == (cut != std::string::npos),
               "Append reports a stop exactly when one occurs");
    if (stopped) {
      expected = text.substr(0, cut);
      FUZZ_CHECK(text.compare(cut, checker.matched().size(), checker.matched()) == 0 &&
                     std::find(stops.begin(), stops.end(), checker.matched()) != stops.end(),
                 "matched() is a stop string at the cut");
    }
    out += checker.TakeReady(/*flush=*/false);
    for (const std::string& s : stops) {
      FUZZ_CHECK(find_armed(out, s) == std::string::npos, "no sent text holds an armed stop");
    }
  }
  out += checker.TakeReady(/*flush=*/true);
  if (!stopped) expected = text;
  FUZZ_CHECK(out == expected, "the sent pieces are the text cut at the first stop string");
  return 0;
}
