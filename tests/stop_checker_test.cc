// StopChecker: hold-back of possible stop prefixes and cutting at a match.
#include "gtest/gtest.h"
#include "server/engine/stop_checker.h"

namespace attnres {
namespace {

TEST(StopChecker, HoldsBackPrefixAndCutsAtMatch) {
  StopChecker s({"END", "\n\n"});
  EXPECT_FALSE(s.Append("hello E"));
  EXPECT_EQ(s.TakeReady(false), "hello ");
  EXPECT_FALSE(s.Append("x"));
  EXPECT_EQ(s.TakeReady(false), "Ex");
  EXPECT_FALSE(s.Append(" E"));
  EXPECT_TRUE(s.Append("ND tail"));
  EXPECT_EQ(s.matched(), "END");
  EXPECT_EQ(s.TakeReady(true), " ");
}

TEST(StopChecker, EarliestMatchWinsAcrossStops) {
  StopChecker s({"bc", "abcd"});
  EXPECT_TRUE(s.Append("xxabcd"));
  EXPECT_EQ(s.matched(), "abcd");
  EXPECT_EQ(s.TakeReady(true), "xx");
}

TEST(StopChecker, NoStopsPassesEverything) {
  StopChecker s({});
  EXPECT_FALSE(s.Append("abc"));
  EXPECT_EQ(s.TakeReady(false), "abc");
  EXPECT_EQ(s.TakeReady(true), "");
}

TEST(StopChecker, MatchSpanningManyPieces) {
  StopChecker s({"stop here"});
  std::string out;
  for (char c : std::string("we stop thestop here!")) {
    if (s.Append(std::string(1, c))) break;
    out += s.TakeReady(false);
  }
  out += s.TakeReady(true);
  EXPECT_EQ(out, "we stop the");
}

}  // namespace
}  // namespace attnres
