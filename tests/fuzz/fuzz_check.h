// FUZZ_CHECK: a property check inside a fuzz target. On failure it prints the condition and what
// was being checked, then aborts, which libFuzzer reports as a crash (and saves the input) and the
// replay driver turns into a failed ctest.
#pragma once

#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(cond, what)                                                                     \
  do {                                                                                             \
    if (!(cond)) {                                                                                 \
      std::fprintf(stderr, "%s:%d: FUZZ_CHECK(%s) failed: %s\n", __FILE__, __LINE__, #cond, what); \
      std::abort();                                                                                \
    }                                                                                              \
  } while (0)
