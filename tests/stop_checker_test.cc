// StopChecker: hold-back of possible stop prefixes, cutting at a match, arming (min_tokens).
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

// min_tokens: text appended unarmed never stops, but is held back while it could start a stop.
TEST(StopChecker, UnarmedTextNeverStopsButAStopMayStartInIt) {
  StopChecker s({"ab"});
  EXPECT_FALSE(s.Append("xab", /*armed=*/false));
  EXPECT_EQ(s.TakeReady(false), "xab");
  EXPECT_FALSE(s.Append("xa", /*armed=*/false));
  EXPECT_EQ(s.TakeReady(false), "x");
  EXPECT_TRUE(s.Append("b!", /*armed=*/true));
  EXPECT_EQ(s.matched(), "ab");
  EXPECT_EQ(s.TakeReady(true), "");
}

// A stop lying wholly in unarmed text is not found once armed, even beside a longer stop.
TEST(StopChecker, ArmingDoesNotFindOldMatches) {
  StopChecker s({"ab", "zzzzz"});
  EXPECT_FALSE(s.Append("abc", /*armed=*/false));
  EXPECT_FALSE(s.Append("d", /*armed=*/true));
  EXPECT_EQ(s.TakeReady(true), "abcd");
}

}  // namespace
}  // namespace attnres
