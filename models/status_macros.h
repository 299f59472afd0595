// RETURN_IF_ERROR and ASSIGN_OR_RETURN for functions returning absl::Status or absl::StatusOr
// (absl ships no public macros). Include only in .cc files.
#pragma once

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define RETURN_IF_ERROR(expr)                   \
  do {                                          \
    if (absl::Status _st = (expr); !_st.ok()) { \
      return _st;                               \
    }                                           \
  } while (0)

// lhs may declare a variable (`ASSIGN_OR_RETURN(const Foo foo, MakeFoo())`).
#define ASSIGN_OR_RETURN(lhs, expr) \
  ATTNRES_ASSIGN_OR_RETURN_IMPL(ATTNRES_STATUS_CONCAT(_status_or_, __LINE__), lhs, expr)
#define ATTNRES_STATUS_CONCAT_INNER(a, b) a##b
#define ATTNRES_STATUS_CONCAT(a, b) ATTNRES_STATUS_CONCAT_INNER(a, b)
#define ATTNRES_ASSIGN_OR_RETURN_IMPL(tmp, lhs, expr) \
  auto tmp = (expr);                                  \
  if (!tmp.ok()) return tmp.status();                 \
  lhs = *std::move(tmp)
