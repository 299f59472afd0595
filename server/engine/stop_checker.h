// StopChecker: turns a request's growing detokenized text into what may be sent now, holding
// back a tail that could still become a stop string and cutting the text at a matched one.
#pragma once

#include <string>
#include <vector>

namespace attnres {

class StopChecker {
 public:
  explicit StopChecker(std::vector<std::string> stop_strings);

  // Appends newly decoded text. Returns true when a stop string now ends inside it (only when
  // `armed`; min_tokens disarms the first tokens' text); the text is then cut just before it and
  // matched() names it. Unarmed text is still held back while it could start a stop string.
  bool Append(const std::string& text, bool armed = true);
  // Text that is final and not yet taken (everything when `flush`, e.g. at the end).
  std::string TakeReady(bool flush);
  const std::string& matched() const { return matched_; }

 private:
  size_t HoldBack() const;  // length of the longest tail that is a proper prefix of a stop

  std::vector<std::string> stops_;
  std::string text_;        // all text so far (cut at a match)
  size_t taken_ = 0;        // bytes of text_ already returned
  std::string matched_;
};

}  // namespace attnres
