// Stop-string matching with hold-back.
#include "server/engine/stop_checker.h"

#include <algorithm>

namespace attnres {

StopChecker::StopChecker(std::vector<std::string> stop_strings) : stops_(std::move(stop_strings)) {}

bool StopChecker::Append(const std::string& text, bool armed) {
  const size_t old_len = text_.size();
  text_ += text;
  if (!armed || stops_.empty() || text.empty()) return false;
  // A match must end inside the new text, i.e. start at most size-1 bytes before it.
  size_t best = std::string::npos;
  for (const auto& s : stops_) {
    const size_t from = old_len >= s.size() ? old_len - s.size() + 1 : 0;
    const size_t pos = text_.find(s, from);
    if (pos != std::string::npos && pos < best) {
      best = pos;
      matched_ = s;
    }
  }
  if (best == std::string::npos) return false;
  text_.resize(std::max(best, taken_));
  return true;
}

size_t StopChecker::HoldBack() const {
  size_t hold = 0;
  for (const auto& s : stops_) {
    for (size_t n = std::min(s.size() - 1, text_.size()); n > hold; --n) {
      if (text_.compare(text_.size() - n, n, s, 0, n) == 0) {
        hold = n;
        break;
      }
    }
  }
  return hold;
}

std::string StopChecker::TakeReady(bool flush) {
  size_t end = text_.size();
  if (!flush) end -= std::min(end - taken_, HoldBack());
  std::string out = text_.substr(taken_, end - taken_);
  taken_ = end;
  return out;
}

}  // namespace attnres
