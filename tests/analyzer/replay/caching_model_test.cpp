// PyTorch's native caching allocator and the cudaMallocAsync pool (caching_model.hpp), on
// sequences whose answer follows from the rules in docs/replay.md.
#include "analyzer/replay/caching_model.hpp"

#include <gtest/gtest.h>

namespace cudefrag::analyzer::replay {
namespace {

constexpr std::uint64_t kStream = 0;

TEST(NativeModel, RoundsAndPicksSegmentsAsPyTorch) {
  const CachingModel m(CachingFlavor::kPyTorchNative, GiB(1));
  EXPECT_EQ(m.round_size(Bytes{1}), Bytes{512});
  EXPECT_EQ(m.round_size(Bytes{513}), Bytes{1024});
  EXPECT_EQ(m.segment_size(MiB(1)), MiB(2));  // small pool
  EXPECT_EQ(m.segment_size(MiB(1) + Bytes{512}), MiB(20));
  EXPECT_EQ(m.segment_size(MiB(10) - Bytes{512}), MiB(20));
  EXPECT_EQ(m.segment_size(MiB(10)), MiB(10));  // from 10 MiB: rounded to 2 MiB
  EXPECT_EQ(m.segment_size(MiB(11)), MiB(12));
  EXPECT_TRUE(m.should_split(true, Bytes{512}));
  EXPECT_FALSE(m.should_split(false, MiB(1)));  // large pool: only a rest above 1 MiB
  EXPECT_TRUE(m.should_split(false, MiB(1) + Bytes{512}));
}

TEST(NativeModel, SmallRequestsShareOneTwoMiBSegment) {
  CachingModel m(CachingFlavor::kPyTorchNative, GiB(1));
  for (std::uint64_t k = 1; k <= 100; ++k) ASSERT_TRUE(m.allocate(k, Bytes{1000}, kStream, false));
  EXPECT_EQ(m.reserved(), MiB(2));  // 100 x 1024 B fit in one small segment
  EXPECT_EQ(m.segments(), 1u);
  EXPECT_EQ(m.driver_allocations(), 1u);
}

TEST(NativeModel, ARestOfOneMiBIsNotSplitOff) {
  CachingModel m(CachingFlavor::kPyTorchNative, GiB(1));
  ASSERT_TRUE(m.allocate(1, MiB(11), kStream, false));  // segment of 12 MiB, rest 1 MiB
  EXPECT_EQ(m.reserved(), MiB(12));
  EXPECT_EQ(m.free_blocks(), 0u);                      // the whole 12 MiB block was handed out
  ASSERT_TRUE(m.allocate(2, MiB(6), kStream, false));  // segment of 20 MiB, rest 14 MiB
  EXPECT_EQ(m.free_blocks(), 1u);
}

// The classic: 8 MiB requests get 20 MiB segments, two per segment with a 4 MiB rest. Freeing
// the first of each pair leaves 5 x 8 MiB + 5 x 4 MiB = 60 MiB free, in pieces no 16 MiB
// request can use, and no segment is entirely free, so nothing can be given back.
void fill_and_free_alternate(Model& m) {
  for (std::uint64_t i = 0; i < 5; ++i) {
    ASSERT_TRUE(m.allocate(100 + i, MiB(8), kStream, false));
    ASSERT_TRUE(m.allocate(200 + i, MiB(8), kStream, false));
  }
  for (std::uint64_t i = 0; i < 5; ++i) m.free(100 + i, kStream, false);
}

TEST(NativeModel, SplitSegmentsLeaveHolesNoRequestCanUse) {
  CachingModel m(CachingFlavor::kPyTorchNative, MiB(100));
  fill_and_free_alternate(m);
  EXPECT_EQ(m.reserved(), MiB(100));
  EXPECT_EQ(m.segments(), 5u);
  EXPECT_FALSE(m.allocate(1, MiB(16), kStream, false));  // 40 MiB live on a 100 MiB cap
  EXPECT_EQ(m.reserved(), MiB(100));                     // nothing changed

  CachingModel roomy(CachingFlavor::kPyTorchNative, MiB(116));
  fill_and_free_alternate(roomy);
  EXPECT_TRUE(roomy.allocate(1, MiB(16), kStream, false));
  EXPECT_EQ(roomy.peak_reserved(), MiB(116));
}

TEST(NativeModel, FreesCachedSegmentsBeforeItGivesUp) {
  CachingModel m(CachingFlavor::kPyTorchNative, MiB(40));
  ASSERT_TRUE(m.allocate(1, MiB(30), kStream, false));
  m.free(1, kStream, false);
  EXPECT_EQ(m.reserved(), MiB(30));  // cached
  // 32 MiB does not fit in the cached 30 MiB block; 30 + 32 > 40: release_cached_blocks, retry.
  EXPECT_TRUE(m.allocate(2, MiB(32), kStream, false));
  EXPECT_EQ(m.reserved(), MiB(32));
  EXPECT_EQ(m.peak_reserved(), MiB(32));
  EXPECT_EQ(m.driver_allocations(), 2u);  // the 30 MiB segment, then the 32 MiB one
}

TEST(NativeModel, BlocksAreNotSharedAcrossStreams) {
  CachingModel m(CachingFlavor::kPyTorchNative, GiB(1));
  ASSERT_TRUE(m.allocate(1, MiB(30), 0x11, false));
  m.free(1, 0x11, false);
  ASSERT_TRUE(m.allocate(2, MiB(30), 0x22, false));
  EXPECT_EQ(m.reserved(), MiB(60));
}

TEST(NativeModel, FreedNeighboursMergeWithinTheirSegment) {
  CachingModel m(CachingFlavor::kPyTorchNative, MiB(20));
  ASSERT_TRUE(m.allocate(1, MiB(6), kStream, false));
  ASSERT_TRUE(m.allocate(2, MiB(6), kStream, false));
  ASSERT_TRUE(m.allocate(3, MiB(6), kStream, false));
  m.free(1, kStream, false);
  m.free(3, kStream, false);
  m.free(2, kStream, false);  // joins both neighbours and the 2 MiB rest: one 20 MiB block
  EXPECT_EQ(m.free_blocks(), 1u);
  EXPECT_TRUE(m.allocate(4, MiB(9), kStream, false));
  EXPECT_TRUE(m.allocate(5, MiB(9), kStream, false));
  EXPECT_EQ(m.reserved(), MiB(20));
}

TEST(AsyncPoolModel, OtherStreamsReuseFreedMemory) {
  CachingModel m(CachingFlavor::kAsyncPool, GiB(1));
  ASSERT_TRUE(m.allocate(1, MiB(30), 0x11, false));
  m.free(1, 0x11, false);
  ASSERT_TRUE(m.allocate(2, MiB(30), 0x22, false));
  EXPECT_EQ(m.reserved(), MiB(30));
}

TEST(AsyncPoolModel, GrowsInTwoMiBChunksAndTrimsFreeChunksWhenShort) {
  CachingModel m(CachingFlavor::kAsyncPool, MiB(88));
  EXPECT_EQ(m.segment_size(MiB(8) + Bytes{512}), MiB(10));
  fill_and_free_alternate(m);  // ten 8 MiB chunks, five of them free
  EXPECT_EQ(m.reserved(), MiB(80));
  // 80 + 16 > 88: the five free chunks go back first.
  EXPECT_TRUE(m.allocate(1, MiB(16), kStream, false));
  EXPECT_EQ(m.reserved(), MiB(56));
}

}  // namespace
}  // namespace cudefrag::analyzer::replay
