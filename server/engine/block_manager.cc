// Page allocator with reference counts and a hash-chained prefix cache (see block_manager.h).
// Invariant: a page is in exactly one of free_ (refs 0, uncached), lru_ (refs 0, cached), or
// held (refs > 0, cached or not). Only full prompt pages are ever published, and nobody writes
// into a full page again, so sharing needs no copy-on-write.
#include "server/engine/block_manager.h"

#include <algorithm>
#include <cassert>

namespace attnres {
namespace {

uint64_t Mix(uint64_t x) {  // splitmix64 finalizer
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

}  // namespace

BlockManager::BlockManager(int64_t num_pages, int page_size, bool enable_prefix_cache)
    : num_pages_(num_pages), page_size_(page_size), prefix_cache_(enable_prefix_cache) {
  meta_.resize(num_pages);
  free_.reserve(num_pages);
  for (int64_t p = num_pages - 1; p >= 0; --p) free_.push_back(static_cast<int32_t>(p));
}

uint64_t BlockManager::PageHash(uint64_t parent, std::span<const int32_t> page_tokens) const {
  uint64_t h = Mix(parent ^ 0x5bd1e995ULL);
  for (int32_t t : page_tokens) h = Mix(h ^ static_cast<uint32_t>(t));
  return h;
}

int32_t BlockManager::TakeFreePage() {
  int32_t page;
  if (!free_.empty()) {
    page = free_.back();
    free_.pop_back();
  } else {
    page = lru_.front();  // evict the least recently released cached page
    lru_.pop_front();
    PageMeta& m = meta_[page];
    cached_.erase(m.hash);
    m.cached = false;
    m.tokens.clear();
  }
  meta_[page].refs = 1;
  return page;
}

bool BlockManager::EnsureCapacity(std::vector<int32_t>* pages, int64_t tokens) {
  const int64_t need = PagesFor(tokens) - static_cast<int64_t>(pages->size());
  if (need <= 0) return true;
  if (need > num_free()) return false;
  for (int64_t i = 0; i < need; ++i) pages->push_back(TakeFreePage());
  return true;
}

void BlockManager::Release(std::vector<int32_t>* pages) {
  for (auto it = pages->rbegin(); it != pages->rend(); ++it) {
    PageMeta& m = meta_[*it];
    assert(m.refs > 0);
    if (--m.refs > 0) continue;  // still shared with another sequence
    if (m.cached) {
      m.lru_it = lru_.insert(lru_.end(), *it);
    } else {
      free_.push_back(*it);
    }
  }
  pages->clear();
}

int BlockManager::MatchPrefix(std::span<const int32_t> tokens, int max_pages,
                              std::vector<int32_t>* pages, PrefixCursor* cursor) {
  if (!prefix_cache_) return 0;
  const int full = std::min<int>(max_pages, static_cast<int>(tokens.size()) / page_size_);
  int matched = 0;
  uint64_t hash = cursor->hash;
  for (int i = cursor->num_pages; i < full; ++i) {
    const auto page_tokens = tokens.subspan(static_cast<size_t>(i) * page_size_, page_size_);
    const uint64_t h = PageHash(hash, page_tokens);
    auto it = cached_.find(h);
    if (it == cached_.end()) break;
    PageMeta& m = meta_[it->second];
    if (m.parent_hash != hash ||
        !std::equal(page_tokens.begin(), page_tokens.end(), m.tokens.begin(), m.tokens.end())) {
      break;  // a hash collision: treat as a miss
    }
    if (m.refs++ == 0) lru_.erase(m.lru_it);
    pages->push_back(it->second);
    hash = h;
    ++matched;
  }
  cursor->num_pages += matched;
  cursor->hash = hash;
  return matched;
}

void BlockManager::Publish(std::span<const int32_t> tokens, const std::vector<int32_t>& pages,
                           PrefixCursor* cursor) {
  if (!prefix_cache_) return;
  const int full =
      std::min<int>(static_cast<int>(pages.size()), static_cast<int>(tokens.size()) / page_size_);
  for (int i = cursor->num_pages; i < full; ++i) {
    const auto page_tokens = tokens.subspan(static_cast<size_t>(i) * page_size_, page_size_);
    const uint64_t h = PageHash(cursor->hash, page_tokens);
    PageMeta& m = meta_[pages[i]];
    if (!m.cached && !cached_.contains(h)) {
      m.cached = true;
      m.hash = h;
      m.parent_hash = cursor->hash;
      m.tokens.assign(page_tokens.begin(), page_tokens.end());
      cached_.emplace(h, pages[i]);
    }
    cursor->hash = h;
    cursor->num_pages = i + 1;
  }
}

}  // namespace attnres
