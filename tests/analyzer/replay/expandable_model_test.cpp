// PyTorch's expandable segments (expandable_model.hpp), worked out by hand.
#include "analyzer/replay/expandable_model.hpp"

#include <gtest/gtest.h>

namespace cudefrag::analyzer::replay {
namespace {

constexpr std::uint64_t kStream = 0;

TEST(ExpandableModel, MapsTwoMiBPagesForSmallAndTwentyForLarge) {
  ExpandableModel m(GiB(1));
  ASSERT_TRUE(m.allocate(1, Bytes{1000}, kStream, false));
  EXPECT_EQ(m.reserved(), MiB(2));
  ASSERT_TRUE(m.allocate(2, MiB(3), kStream, false));
  EXPECT_EQ(m.reserved(), MiB(22));
  ASSERT_TRUE(m.allocate(3, MiB(17), kStream, false));  // fits in the first large page
  EXPECT_EQ(m.reserved(), MiB(22));
  ASSERT_TRUE(m.allocate(4, MiB(1) + Bytes{512}, kStream, false));  // crosses into page 2
  EXPECT_EQ(m.reserved(), MiB(42));
  EXPECT_EQ(m.driver_allocations(), 3u);  // the small page, large page 1, large page 2
}

// The native allocator's worst case (caching_model_test.cpp): here the 8 MiB blocks sit side by
// side in one segment, 80 MiB in four 20 MiB pages, and the 16 MiB request grows the segment by
// one page: 100 MiB, where the native allocator needs 116.
TEST(ExpandableModel, GrowsInPlaceWhereSegmentsWouldFragment) {
  ExpandableModel m(MiB(100));
  for (std::uint64_t i = 0; i < 5; ++i) {
    ASSERT_TRUE(m.allocate(100 + i, MiB(8), kStream, false));
    ASSERT_TRUE(m.allocate(200 + i, MiB(8), kStream, false));
  }
  EXPECT_EQ(m.reserved(), MiB(80));
  for (std::uint64_t i = 0; i < 5; ++i) m.free(100 + i, kStream, false);
  EXPECT_TRUE(m.allocate(1, MiB(16), kStream, false));
  EXPECT_EQ(m.reserved(), MiB(100));
}

// What remains: the 8 MiB holes never cover a whole 20 MiB page, so on an 88 MiB cap nothing
// can be unmapped to make room and the request fails.
TEST(ExpandableModel, LiveBlocksPinThePagesTheyTouch) {
  ExpandableModel m(MiB(88));
  for (std::uint64_t i = 0; i < 5; ++i) {
    ASSERT_TRUE(m.allocate(100 + i, MiB(8), kStream, false));
    ASSERT_TRUE(m.allocate(200 + i, MiB(8), kStream, false));
  }
  for (std::uint64_t i = 0; i < 5; ++i) m.free(100 + i, kStream, false);
  EXPECT_FALSE(m.allocate(1, MiB(16), kStream, false));
  EXPECT_EQ(m.reserved(), MiB(80));
}

TEST(ExpandableModel, UnmapsWholeFreePagesWhenTheCapIsReached) {
  // A 40 MiB cap: the segment spans 9/8 of it, rounded to pages: 60 MiB, three pages.
  ExpandableModel m(MiB(40));
  ASSERT_TRUE(m.allocate(1, MiB(20), kStream, false));  // page 0
  ASSERT_TRUE(m.allocate(2, MiB(2), kStream, false));   // page 1: 2 MiB live, 18 MiB free
  m.free(1, kStream, false);                            // page 0 free, still mapped
  EXPECT_EQ(m.reserved(), MiB(40));
  // 30 MiB: no free block is large enough; the free 18 MiB can grow into page 2, which would
  // pass the cap, so page 0 is unmapped first (release_cached_blocks), then page 2 mapped.
  EXPECT_TRUE(m.allocate(3, MiB(30), kStream, false));
  EXPECT_EQ(m.reserved(), MiB(40));
  EXPECT_EQ(m.peak_reserved(), MiB(40));
}

TEST(ExpandableModel, EachStreamHasItsOwnSegment) {
  ExpandableModel m(GiB(1));
  ASSERT_TRUE(m.allocate(1, MiB(4), 0x11, false));
  ASSERT_TRUE(m.allocate(2, MiB(4), 0x22, false));
  EXPECT_EQ(m.reserved(), MiB(40));
}

}  // namespace
}  // namespace cudefrag::analyzer::replay
