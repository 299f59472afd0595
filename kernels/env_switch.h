// The CUDA backend's environment switches (ATTNRES_*), read once when a kernel launcher, runner or
// forward pass first needs them (to measure what a path buys, or to turn one off). Host code.
#pragma once

#include <cstdlib>
#include <cstring>

namespace attnres::kernels {

// An on-by-default switch: off only when the variable is "0".
inline bool EnvOn(const char* name) {
  const char* v = std::getenv(name);
  return v == nullptr || std::strcmp(v, "0") != 0;
}

// An opt-in switch: on only when the variable is "1".
inline bool EnvOptIn(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && std::strcmp(v, "1") == 0;
}

// An integer setting: the variable's value (atoi), or fallback when it is unset.
inline int EnvInt(const char* name, int fallback) {
  const char* v = std::getenv(name);
  return v == nullptr ? fallback : std::atoi(v);
}

}  // namespace attnres::kernels
