// Timeline keeps the peaks of every stretch of time whatever the run's length.
#include "analyzer/report/timeline.hpp"

#include <gtest/gtest.h>

namespace cudefrag::analyzer {
namespace {

TEST(Timeline, BucketsHoldTheirPeaksAndCarryTheLevel) {
  constexpr std::uint64_t ms = 1'000'000;
  Timeline t(1000 * ms);
  t.record(1000 * ms, 10, 100, true);
  t.record(1100 * ms, 50, 100, true);  // peak of the first half
  t.record(1200 * ms, 20, 100, true);
  t.record(1900 * ms, 30, 200, true);  // the second half
  const auto rows = t.rows(2000 * ms, 2);
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0].start_ns, 1000 * ms);
  EXPECT_EQ(rows[0].end_ns, 1500 * ms);
  EXPECT_EQ(rows[0].max_live, 50u);
  EXPECT_EQ(rows[0].max_physical, 100u);
  // The second half starts at the level the first left (20), and peaks at 30.
  EXPECT_EQ(rows[1].max_live, 30u);
  EXPECT_EQ(rows[1].max_physical, 200u);
}

TEST(Timeline, AnEmptyBucketRepeatsTheLevel) {
  constexpr std::uint64_t ms = 1'000'000;
  Timeline t(0);
  t.record(0, 7, 0, false);
  t.record(990 * ms, 9, 0, false);
  const auto rows = t.rows(1000 * ms, 10);
  for (std::size_t i = 1; i < 9; ++i) EXPECT_EQ(rows[i].max_live, 7u) << i;
  EXPECT_EQ(rows[9].max_live, 9u);
  EXPECT_FALSE(rows[5].has_physical);
}

TEST(Timeline, ALongRunKeepsItsPeaks) {
  Timeline t(0);
  // An hour of samples, far more than the fine buckets: the peak at 36 minutes survives.
  const std::uint64_t hour = 3'600'000'000'000;
  for (std::uint64_t time = 0; time < hour; time += hour / 100'000) {
    const std::uint64_t live = time == hour / 10 * 6 ? 1'000'000 : 10;
    t.record(time, live, 0, false);
  }
  const auto rows = t.rows(hour, 4);
  EXPECT_EQ(rows[0].max_live, 10u);
  EXPECT_EQ(rows[1].max_live, 10u);
  EXPECT_EQ(rows[2].max_live, 1'000'000u);
  EXPECT_EQ(rows[3].max_live, 10u);
}

}  // namespace
}  // namespace cudefrag::analyzer
