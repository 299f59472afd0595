// BlockManager: the pool of KV pages (fixed-size token blocks), their reference counts, and the
// prefix cache: full prompt pages published under a hash chained over all tokens before them,
// shared by later requests with the same prefix, and kept after release in an LRU until the pool
// needs them. Pure bookkeeping on the engine thread; the runner owns the memory page ids index.
#pragma once

#include <cstdint>
#include <list>
#include <span>
#include <vector>

#include "absl/container/flat_hash_map.h"

namespace attnres {

// A sequence's progress through the prefix cache: how many of its leading pages are published
// (or were taken from the cache), and the chained hash of the last of them.
struct PrefixCursor {
  int num_pages = 0;
  uint64_t hash = 0;
};

class BlockManager {
 public:
  // `enable_prefix_cache` false: pages are never published or matched (plain free list).
  BlockManager(int64_t num_pages, int page_size, bool enable_prefix_cache = true);

  int page_size() const { return page_size_; }
  int64_t num_pages() const { return num_pages_; }
  // Pages that an allocation can take: never used, or cached with no reader (evictable).
  int64_t num_free() const { return static_cast<int64_t>(free_.size() + lru_.size()); }
  // Pages referenced by at least one sequence (cached-but-unreferenced pages do not count).
  int64_t num_used() const { return num_pages_ - num_free(); }
  int64_t num_cached() const { return static_cast<int64_t>(cached_.size()); }
  int64_t PagesFor(int64_t tokens) const { return (tokens + page_size_ - 1) / page_size_; }

  // Grows `pages` so it covers `tokens` positions with fresh (exclusively owned) pages, evicting
  // least recently used cached pages when the free list is empty. False (and nothing taken) when
  // the pool is short.
  bool EnsureCapacity(std::vector<int32_t>* pages, int64_t tokens);
  // Drops one reference to every page in `pages` (last pages first, so a prefix's tail is
  // evicted before its head) and clears it. Unreferenced published pages go to the LRU.
  void Release(std::vector<int32_t>* pages);

  // Longest run of cached full pages matching `tokens` from position 0, at most `max_pages`.
  // Appends them to `pages` (which must be empty), takes a reference to each, and advances
  // `cursor`. Returns the number of pages matched.
  int MatchPrefix(std::span<const int32_t> tokens, int max_pages, std::vector<int32_t>* pages,
                  PrefixCursor* cursor);
  // Publishes the full pages of `tokens` (the part of a prompt whose K/V are computed) beyond
  // `cursor`. A page whose hash is already cached under another page stays private.
  void Publish(std::span<const int32_t> tokens, const std::vector<int32_t>& pages,
               PrefixCursor* cursor);

  int ref_count(int32_t page) const { return meta_[page].refs; }

 private:
  struct PageMeta {
    int refs = 0;
    bool cached = false;  // in cached_ under `hash`
    uint64_t hash = 0;
    uint64_t parent_hash = 0;             // the chain hash before this page (collision check)
    std::vector<int32_t> tokens;          // [page_size] when cached (collision check)
    std::list<int32_t>::iterator lru_it;  // valid when cached and refs == 0
  };

  uint64_t PageHash(uint64_t parent, std::span<const int32_t> page_tokens) const;
  int32_t TakeFreePage();  // free list first, else evict the LRU head; requires num_free() > 0

  int64_t num_pages_;
  int page_size_;
  bool prefix_cache_;
  std::vector<PageMeta> meta_;                     // [num_pages]
  std::vector<int32_t> free_;                      // stack of uncached free page ids
  std::list<int32_t> lru_;                         // cached, unreferenced; front = oldest
  absl::flat_hash_map<uint64_t, int32_t> cached_;  // chain hash -> page
};

}  // namespace attnres
