// BlockManager on its own: reference counts, the hash-chained prefix cache (publish, match,
// partial match, collisions of content), LRU eviction of unreferenced cached pages only, and
// that a page still referenced is never handed out again.
#include "server/engine/block_manager.h"

#include <algorithm>
#include <numeric>
#include <set>
#include <vector>

#include "gtest/gtest.h"

namespace attnres {
namespace {

std::vector<int32_t> Tokens(int n, int32_t first = 0) {
  std::vector<int32_t> t(n);
  std::iota(t.begin(), t.end(), first);
  return t;
}

TEST(BlockManagerTest, AllocatesAndReleasesWithoutCache) {
  BlockManager b(8, 4, /*enable_prefix_cache=*/false);
  std::vector<int32_t> pages;
  ASSERT_TRUE(b.EnsureCapacity(&pages, 9));
  EXPECT_EQ(pages.size(), 3u);
  EXPECT_EQ(b.num_used(), 3);
  EXPECT_FALSE(b.EnsureCapacity(&pages, 40));  // 10 pages > 8: nothing taken
  EXPECT_EQ(pages.size(), 3u);
  const std::vector<int32_t> t = Tokens(12);
  PrefixCursor cursor;
  b.Publish(t, pages, &cursor);  // a no-op with the cache off
  std::vector<int32_t> none;
  EXPECT_EQ(b.MatchPrefix(t, 3, &none, &cursor), 0);
  EXPECT_EQ(b.num_cached(), 0);
  b.Release(&pages);
  EXPECT_TRUE(pages.empty());
  EXPECT_EQ(b.num_used(), 0);
  EXPECT_EQ(b.num_free(), 8);
}

TEST(BlockManagerTest, PublishedFullPagesAreSharedWithReferenceCounts) {
  BlockManager b(8, 4);
  const std::vector<int32_t> prompt = Tokens(10);  // 2 full pages + 2 tokens
  std::vector<int32_t> a;
  PrefixCursor ca;
  ASSERT_TRUE(b.EnsureCapacity(&a, 10));
  b.Publish(prompt, a, &ca);
  EXPECT_EQ(ca.num_pages, 2);  // the partial third page is never published
  EXPECT_EQ(b.num_cached(), 2);

  std::vector<int32_t> s;
  PrefixCursor cs;
  EXPECT_EQ(b.MatchPrefix(prompt, 8, &s, &cs), 2);
  EXPECT_EQ(s, std::vector<int32_t>(a.begin(), a.begin() + 2));
  EXPECT_EQ(b.ref_count(a[0]), 2);
  EXPECT_EQ(b.num_used(), 3);  // shared pages count once

  // The owner leaves: shared pages stay referenced by s, its private page is freed.
  b.Release(&a);
  EXPECT_EQ(b.ref_count(s[0]), 1);
  EXPECT_EQ(b.num_used(), 2);
  // Taking every free page never hands out a page s still holds.
  std::vector<int32_t> rest;
  ASSERT_TRUE(b.EnsureCapacity(&rest, 6 * 4));
  for (int32_t p : rest) EXPECT_TRUE(std::find(s.begin(), s.end(), p) == s.end());
  EXPECT_EQ(b.num_free(), 0);
  b.Release(&rest);
  b.Release(&s);
  EXPECT_EQ(b.num_used(), 0);
  EXPECT_EQ(b.num_cached(), 2);  // cached but unreferenced: free for allocation, still matchable
  EXPECT_EQ(b.num_free(), 8);
}

TEST(BlockManagerTest, MatchStopsAtFirstDifferenceAndAtMaxPages) {
  BlockManager b(16, 4);
  const std::vector<int32_t> prompt = Tokens(16);
  std::vector<int32_t> a;
  PrefixCursor ca;
  ASSERT_TRUE(b.EnsureCapacity(&a, 16));
  b.Publish(prompt, a, &ca);
  ASSERT_EQ(b.num_cached(), 4);

  std::vector<int32_t> other = prompt;
  other[9] = 999;  // differs in the third page
  std::vector<int32_t> s;
  PrefixCursor cs;
  EXPECT_EQ(b.MatchPrefix(other, 8, &s, &cs), 2);
  b.Release(&s);
  cs = PrefixCursor();
  EXPECT_EQ(b.MatchPrefix(prompt, 3, &s, &cs), 3);
  b.Release(&s);
  // Same page content after a different first page: the chain hash differs, no match.
  std::vector<int32_t> shifted = prompt;
  shifted[0] = 777;
  cs = PrefixCursor();
  EXPECT_EQ(b.MatchPrefix(shifted, 8, &s, &cs), 0);
  EXPECT_TRUE(s.empty());
}

TEST(BlockManagerTest, EvictsLeastRecentlyReleasedCachedPagesTailFirst) {
  BlockManager b(4, 2);
  const std::vector<int32_t> p1 = Tokens(4, 0), p2 = Tokens(4, 100);
  std::vector<int32_t> a, c;
  PrefixCursor ca, cc;
  ASSERT_TRUE(b.EnsureCapacity(&a, 4));
  ASSERT_TRUE(b.EnsureCapacity(&c, 4));
  b.Publish(p1, a, &ca);
  b.Publish(p2, c, &cc);
  b.Release(&a);  // p1's pages become the oldest in the LRU, its tail page first
  b.Release(&c);
  EXPECT_EQ(b.num_free(), 4);
  EXPECT_EQ(b.num_cached(), 4);
  // One fresh page evicts p1's tail: p1 now matches one page only, p2 still two.
  std::vector<int32_t> x;
  ASSERT_TRUE(b.EnsureCapacity(&x, 1));
  EXPECT_EQ(b.num_cached(), 3);
  std::vector<int32_t> m;
  PrefixCursor cm;
  EXPECT_EQ(b.MatchPrefix(p1, 2, &m, &cm), 1);
  b.Release(&m);
  cm = PrefixCursor();
  EXPECT_EQ(b.MatchPrefix(p2, 2, &m, &cm), 2);
  // Referenced cached pages are not evictable: only 1 page is left to allocate.
  EXPECT_EQ(b.num_free(), 1);
  EXPECT_FALSE(b.EnsureCapacity(&x, 6));  // two more pages
  b.Release(&m);
  b.Release(&x);
}

TEST(BlockManagerTest, DuplicateContentStaysPrivate) {
  BlockManager b(8, 4);
  const std::vector<int32_t> prompt = Tokens(8);
  std::vector<int32_t> a, c;
  PrefixCursor ca, cc;
  ASSERT_TRUE(b.EnsureCapacity(&a, 8));
  ASSERT_TRUE(b.EnsureCapacity(&c, 8));  // computed concurrently, before either published
  b.Publish(prompt, a, &ca);
  b.Publish(prompt, c, &cc);
  EXPECT_EQ(b.num_cached(), 2);  // c's copies are not published twice
  EXPECT_EQ(cc.num_pages, 2);    // but c's cursor moves on (later pages chain correctly)
  b.Release(&c);
  EXPECT_EQ(b.num_free(), 6);
  b.Release(&a);
  EXPECT_EQ(b.num_free(), 8);
}

}  // namespace
}  // namespace attnres
