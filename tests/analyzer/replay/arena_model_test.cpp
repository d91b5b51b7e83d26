// cudefrag's real arena on the accounting-only backend (arena_model.hpp).
#include "analyzer/replay/arena_model.hpp"

#include <gtest/gtest.h>

namespace cudefrag::analyzer::replay {
namespace {

constexpr std::uint64_t kStream = 0;

// The arena's small threshold and slab page size are options being tuned (docs/arena.md); these
// tests hold for any setting: small requests share a page, and sizes above the largest possible
// threshold (16 MiB, SizeClasses::kMaxThreshold) get ranges of their own.
TEST(ArenaModel, SmallRequestsArePackedIntoOneSlabPage) {
  ArenaModel m(GiB(1));
  ASSERT_TRUE(m.allocate(1, Bytes{1000}, kStream, false));
  const Bytes page = m.reserved();
  EXPECT_GE(page, MiB(2));
  for (std::uint64_t k = 2; k <= 100; ++k) ASSERT_TRUE(m.allocate(k, Bytes{1000}, kStream, false));
  EXPECT_EQ(m.reserved(), page);
}

TEST(ArenaModel, LargeRequestsGetTheirOwnTwoMiBGranularHandles) {
  ArenaModel m(GiB(1));
  ASSERT_TRUE(m.allocate(1, MiB(17), kStream, true));
  ASSERT_TRUE(m.allocate(2, MiB(24), kStream, true));
  EXPECT_EQ(m.reserved(), MiB(42));  // 18 + 24
  EXPECT_EQ(m.driver_allocations(), 2u);
  m.free(1, kStream, true);
  ASSERT_TRUE(m.allocate(3, MiB(17), kStream, true));  // the cached 18 MiB range, no new handle
  EXPECT_EQ(m.driver_allocations(), 2u);
}

// Ten 20 MiB ranges on a 220 MiB cap, every other one freed: 100 MiB in holes that are not
// address neighbours. A 40 MiB request is not in the cache, and a new handle would pass the cap,
// so the arena unmaps one idle 20 MiB hole and maps it, with 20 MiB created (the headroom),
// behind a new 40 MiB range: a stitch.
TEST(ArenaModel, StitchesFreedHolesBehindANewRange) {
  ArenaModel m(MiB(220));
  for (std::uint64_t i = 0; i < 5; ++i) {
    ASSERT_TRUE(m.allocate(100 + i, MiB(20), kStream, false));
    ASSERT_TRUE(m.allocate(200 + i, MiB(20), kStream, false));
  }
  for (std::uint64_t i = 0; i < 5; ++i) m.free(100 + i, kStream, false);
  EXPECT_EQ(m.reserved(), MiB(200));
  EXPECT_TRUE(m.allocate(1, MiB(40), kStream, false));
  EXPECT_EQ(m.stats().stitches, 1u);
  EXPECT_EQ(m.peak_reserved(), MiB(220));
}

TEST(ArenaModel, FailsOnlyWhenLiveMemoryLeavesNoRoom) {
  ArenaModel m(MiB(64));
  ASSERT_TRUE(m.allocate(1, MiB(40), kStream, false));
  EXPECT_FALSE(m.allocate(2, MiB(40), kStream, false));
  m.free(1, kStream, false);
  EXPECT_TRUE(m.allocate(3, MiB(60), kStream, false));
  EXPECT_LE(m.peak_reserved(), MiB(64));
}

TEST(ArenaModel, ACapBelowOneHandleFailsEveryRequest) {
  ArenaModel m(MiB(1));
  EXPECT_FALSE(m.allocate(1, Bytes{512}, kStream, false));
  EXPECT_EQ(m.reserved(), Bytes{});
}

}  // namespace
}  // namespace cudefrag::analyzer::replay
