// Single-threaded behaviour of the arena on the host backend.
#include "shim/arena/arena.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <random>
#include <thread>
#include <vector>

#include "tests/shim/arena/arena_test_support.hpp"

namespace cudefrag::arena {
namespace {

using testing::backend_stats;
using testing::HostArenaConfig;
using testing::make_host_arena;
using testing::Patterns;

constexpr AllocKind kAsync = AllocKind::kStreamOrdered;
constexpr FreeKind kAsyncFree = FreeKind::kStreamOrdered;

DevicePtr must_allocate(Arena& a, Bytes size, vmm::StreamRef s = {}, AllocKind k = kAsync) {
  const AllocResult r = a.allocate(size, s, k);
  EXPECT_TRUE(r.ok()) << "allocate " << size.value;
  return r.ptr;
}

// Queues a "kernel" on `s` that waits until `go` is set, then runs `then`: what is queued or
// freed on `s` after it stays pending until the test lets it go.
void hold_until(vmm::HostStream& s, const std::atomic<bool>& go, std::function<void()> then = {}) {
  s.enqueue([&go, then = std::move(then)] {
    while (!go.load()) std::this_thread::sleep_for(std::chrono::microseconds(50));
    if (then) then();
  });
}

TEST(Arena, ZeroBytesAndNullAreNoOps) {
  auto arena = make_host_arena({});
  const AllocResult r = arena->allocate(Bytes{0}, {}, kAsync);
  EXPECT_TRUE(r.ok());
  EXPECT_FALSE(r.ptr);
  EXPECT_EQ(arena->free(DevicePtr{}, {}, kAsyncFree), FreeResult::kOk);
  EXPECT_EQ(backend_stats(*arena).create, 0u);
}

TEST(Arena, SmallAllocationsAreAlignedDistinctAndKeepTheirBytes) {
  HostArenaConfig config;
  config.capacity = MiB(256);  // a slab of each class in use
  auto arena = make_host_arena(config);
  const Patterns patterns(MiB(1));
  std::mt19937 rng(1);
  std::map<std::uintptr_t, std::pair<Bytes, std::uint64_t>> live;
  for (std::uint64_t id = 0; id < 2000; ++id) {
    const Bytes size{1 + rng() % (rng() % 16 == 0 ? KiB(256).value : 8192)};
    const DevicePtr p = must_allocate(*arena, size);
    ASSERT_TRUE(arena->owns(p));
    ASSERT_TRUE(Bytes{p.value}.is_aligned(Bytes{256}));
    const auto range = arena->allocation_range(p + Bytes{size.value / 2});
    ASSERT_TRUE(range.has_value());
    EXPECT_EQ(range->base, p);
    EXPECT_EQ(range->size, size);
    EXPECT_GE(range->granted, size);
    patterns.fill(p, size, id);
    live.emplace(p.value, std::make_pair(size, id));
  }
  std::uintptr_t end = 0;
  for (const auto& [p, block] : live) {
    ASSERT_GE(p, end) << "overlap";
    end = p + block.first.value;
    ASSERT_TRUE(patterns.check(DevicePtr{p}, block.first, block.second));
  }
  const ArenaStats s = arena->stats();
  EXPECT_EQ(s.live_allocations, live.size());
  EXPECT_LE(s.physical, s.limit);
}

TEST(Arena, LargeAllocationsGetWholePagesAndTheirRange) {
  auto arena = make_host_arena({});
  const DevicePtr p = must_allocate(*arena, MiB(5));
  const auto range = arena->allocation_range(p + (MiB(5) - Bytes{1}));
  ASSERT_TRUE(range.has_value());
  EXPECT_EQ(range->base, p);
  EXPECT_EQ(range->size, MiB(5));
  EXPECT_EQ(range->granted, MiB(6));
  EXPECT_EQ(arena->stats().live, MiB(6));
  EXPECT_EQ(arena->stats().requested, MiB(5));
  EXPECT_EQ(backend_stats(*arena).create, 1u);  // one handle for the whole range
  EXPECT_EQ(arena->free(p, {}, kAsyncFree), FreeResult::kOk);
  EXPECT_FALSE(arena->allocation_range(p).has_value());  // cached, not live
}

TEST(Arena, CachedPairsMakeNoBackendCall) {
  auto arena = make_host_arena({});
  vmm::HostStream s;
  const std::vector<Bytes> sizes{Bytes{1}, Bytes{512},        KiB(3), KiB(100),
                                 MiB(1),   MiB(1) + Bytes{1}, MiB(3), MiB(16)};
  for (const Bytes size : sizes) {  // warm up
    ASSERT_EQ(arena->free(must_allocate(*arena, size, s.ref()), s.ref(), kAsyncFree),
              FreeResult::kOk);
  }
  const std::uint64_t slow = arena->stats().slow_allocations;  // stats() asks mem_info
  const std::uint64_t calls = backend_stats(*arena).calls();
  for (int round = 0; round < 100; ++round) {
    for (const Bytes size : sizes) {
      const DevicePtr p = must_allocate(*arena, size, s.ref());
      ASSERT_EQ(arena->free(p, s.ref(), kAsyncFree), FreeResult::kOk);
    }
  }
  EXPECT_EQ(backend_stats(*arena).calls(), calls);
  EXPECT_EQ(arena->stats().slow_allocations, slow);
  EXPECT_LE(slow, sizes.size());
}

TEST(Arena, SameStreamReusesAFreedBlockAtOnce) {
  auto arena = make_host_arena({});
  vmm::HostStream s;
  for (const Bytes size : {KiB(4), MiB(8)}) {
    const DevicePtr p = must_allocate(*arena, size, s.ref());
    ASSERT_EQ(arena->free(p, s.ref(), kAsyncFree), FreeResult::kOk);
    EXPECT_EQ(must_allocate(*arena, size, s.ref()), p) << size.value;
  }
}

TEST(Arena, OtherStreamsDoNotGetMemoryStillInUse) {
  auto arena = make_host_arena({});
  vmm::HostStream s1;
  vmm::HostStream s2;
  std::atomic<bool> go{false};
  for (const Bytes size : {KiB(4), MiB(8)}) {
    go = false;
    const DevicePtr p = must_allocate(*arena, size, s1.ref());
    hold_until(s1, go);
    ASSERT_EQ(arena->free(p, s1.ref(), kAsyncFree), FreeResult::kOk);
    EXPECT_NE(must_allocate(*arena, size, s2.ref()), p);
    EXPECT_NE(must_allocate(*arena, size, {}, AllocKind::kLegacy), p);
    go = true;
    s1.synchronize();
  }
}

// The pattern that defeats a plain pool: holes everywhere, none large enough.
class Fragmentation : public ::testing::TestWithParam<FreeKind> {};

TEST_P(Fragmentation, ALargeRequestIsStitchedFromTheHoles) {
  HostArenaConfig config;
  config.capacity = MiB(64);
  auto arena = make_host_arena(config);
  vmm::HostStream s;
  const Patterns patterns(MiB(32));
  std::vector<DevicePtr> blocks;
  for (int i = 0; i < 16; ++i) {
    blocks.push_back(must_allocate(*arena, MiB(4), s.ref()));
    patterns.fill(blocks.back(), MiB(4), static_cast<std::uint64_t>(i));
  }
  EXPECT_EQ(arena->stats().physical, MiB(64));
  EXPECT_FALSE(arena->allocate(MiB(4), s.ref(), kAsync).ok());  // full
  for (std::size_t i = 0; i < blocks.size(); i += 2) {
    ASSERT_EQ(arena->free(blocks[i], s.ref(), GetParam()), FreeResult::kOk);
  }
  // 32 MiB free in eight 4 MiB holes, each between two live blocks.
  const ArenaStats before = arena->stats();
  EXPECT_EQ(before.largest_allocatable, MiB(32));

  vmm::HostStream other;
  const AllocResult big = arena->allocate(MiB(32), other.ref(), kAsync);
  ASSERT_TRUE(big.ok());
  patterns.fill(big.ptr, MiB(32), 1000);
  EXPECT_TRUE(patterns.check(big.ptr, MiB(32), 1000));
  for (std::size_t i = 1; i < blocks.size(); i += 2) {
    EXPECT_TRUE(patterns.check(blocks[i], MiB(4), static_cast<std::uint64_t>(i)));
  }
  const ArenaStats after = arena->stats();
  EXPECT_EQ(after.stitches, 1u);
  EXPECT_EQ(after.remaps, 8u);
  EXPECT_EQ(after.reclaims, 8u);
  EXPECT_EQ(after.physical, MiB(64));
  EXPECT_EQ(after.live, MiB(64));
  EXPECT_EQ(backend_stats(*arena).device_bytes, MiB(64));
  if (GetParam() == FreeKind::kLegacy) {
    EXPECT_EQ(after.device_syncs, 1u);
  } else {
    EXPECT_EQ(after.device_syncs, 0u);
    EXPECT_GE(after.event_waits, 1u);
  }
}

INSTANTIATE_TEST_SUITE_P(Arena, Fragmentation,
                         ::testing::Values(FreeKind::kStreamOrdered, FreeKind::kLegacy));

TEST(Arena, ManyStitchedPiecesAreConsolidated) {
  HostArenaConfig config;
  config.capacity = MiB(128);
  config.options.max_stitch_pieces = 4;
  auto arena = make_host_arena(config);
  std::vector<DevicePtr> blocks;
  for (int i = 0; i < 64; ++i) blocks.push_back(must_allocate(*arena, MiB(2)));
  for (std::size_t i = 0; i < blocks.size(); i += 2) {
    ASSERT_EQ(arena->free(blocks[i], {}, kAsyncFree), FreeResult::kOk);
  }
  const DevicePtr big = must_allocate(*arena, MiB(64));
  std::memset(big.as_void(), 0x5a, MiB(64).value);
  const ArenaStats s = arena->stats();
  EXPECT_EQ(s.remaps, 3u);  // three reused handles plus one created for the rest
  EXPECT_EQ(s.physical, MiB(128));
  EXPECT_EQ(backend_stats(*arena).live_mappings, 32u + 4u);
}

TEST(Arena, OutOfMemoryLeavesEverythingIntactAndReportsTheState) {
  HostArenaConfig config;
  config.capacity = MiB(64);
  config.options.limit = MiB(32);
  auto arena = make_host_arena(config);
  const Patterns patterns(MiB(8));
  std::vector<DevicePtr> live;
  for (int i = 0; i < 5; ++i) {
    live.push_back(must_allocate(*arena, MiB(4)));
    patterns.fill(live.back(), MiB(4), static_cast<std::uint64_t>(i));
  }
  const DevicePtr cached = must_allocate(*arena, MiB(8));
  ASSERT_EQ(arena->free(cached, {}, kAsyncFree), FreeResult::kOk);
  // live 20 MiB, cached 8 MiB, 4 MiB never created: 12 MiB is the most one request can get.
  const ArenaStats before = arena->stats();
  EXPECT_EQ(before.largest_allocatable, MiB(12));
  const vmm::HostBackendStats backend_before = backend_stats(*arena);

  const AllocResult r = arena->allocate(MiB(16), {}, kAsync);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error, ArenaError::kOutOfMemory);
  EXPECT_EQ(r.request, MiB(16));
  EXPECT_EQ(r.state.live, MiB(20));
  EXPECT_EQ(r.state.mapped, MiB(28));
  EXPECT_EQ(r.state.cached, MiB(8));
  EXPECT_EQ(r.state.physical, MiB(28));
  EXPECT_EQ(r.state.limit, MiB(32));
  EXPECT_EQ(r.state.largest_allocatable, MiB(12));
  EXPECT_EQ(r.state.backend_free, MiB(64) - MiB(28));
  EXPECT_EQ(r.state.out_of_memory, 1u);

  const vmm::HostBackendStats backend_after = backend_stats(*arena);
  EXPECT_EQ(backend_after.create, backend_before.create);
  EXPECT_EQ(backend_after.unmap, backend_before.unmap);
  EXPECT_EQ(backend_after.device_bytes, backend_before.device_bytes);
  for (std::size_t i = 0; i < live.size(); ++i) {
    EXPECT_TRUE(patterns.check(live[i], MiB(4), i));
  }
  // The cached range is still there: reusing it makes no backend call.
  EXPECT_EQ(must_allocate(*arena, MiB(8)), cached);
  EXPECT_EQ(backend_stats(*arena).calls(), backend_after.calls());
  // And what the report said is what one request can have.
  ASSERT_EQ(arena->free(cached, {}, kAsyncFree), FreeResult::kOk);
  EXPECT_TRUE(arena->allocate(MiB(12), {}, kAsync).ok());
}

TEST(Arena, ARequestBeyondTheLimitFailsWithoutTouchingTheDevice) {
  HostArenaConfig config;
  config.options.limit = MiB(16);
  auto arena = make_host_arena(config);
  const AllocResult r = arena->allocate(MiB(16) + Bytes{1}, {}, kAsync);
  EXPECT_EQ(r.error, ArenaError::kOutOfMemory);
  EXPECT_EQ(backend_stats(*arena).create, 0u);
  EXPECT_TRUE(arena->allocate(MiB(16), {}, kAsync).ok());
  const AllocResult huge = arena->allocate(Bytes{~std::uint64_t{0}}, {}, kAsync);
  EXPECT_EQ(huge.error, ArenaError::kOutOfMemory);
}

TEST(Arena, CachedNeighboursAreJoinedAndSplitWithoutBackendCalls) {
  auto arena = make_host_arena({});
  const DevicePtr a = must_allocate(*arena, MiB(4));
  const DevicePtr b = must_allocate(*arena, MiB(4));
  const DevicePtr c = must_allocate(*arena, MiB(4));
  ASSERT_EQ(b, a + MiB(4));  // best fit from an empty region: consecutive
  ASSERT_EQ(c, b + MiB(4));
  vmm::HostStream s;
  for (const DevicePtr p : {a, b, c})
    ASSERT_EQ(arena->free(p, s.ref(), kAsyncFree), FreeResult::kOk);
  ASSERT_EQ(arena->trim(GiB(1)), vmm::Status::kOk);  // fences the frees, releases nothing
  const std::uint64_t calls = backend_stats(*arena).calls();
  const DevicePtr ab = must_allocate(*arena, MiB(8));
  EXPECT_EQ(ab, a);
  EXPECT_EQ(backend_stats(*arena).calls(), calls);
  std::memset(ab.as_void(), 1, MiB(8).value);
  EXPECT_EQ(arena->stats().joins, 1u);
  // The remainder c is a cached range of its own: an exact hit.
  EXPECT_EQ(must_allocate(*arena, MiB(4)), c);
  // The joined range splits again at a handle boundary.
  ASSERT_EQ(arena->free(ab, {}, kAsyncFree), FreeResult::kOk);
  ASSERT_EQ(arena->trim(GiB(1)), vmm::Status::kOk);
  EXPECT_EQ(must_allocate(*arena, MiB(4)), a);
  EXPECT_EQ(arena->stats().joins, 2u);
}

TEST(Arena, ReuseWastesAtMostTheSlack) {
  auto arena = make_host_arena({});
  const DevicePtr p = must_allocate(*arena, MiB(20));
  ASSERT_EQ(arena->free(p, {}, kAsyncFree), FreeResult::kOk);
  const DevicePtr q = must_allocate(*arena, MiB(16));  // 20 > 16 + 16/8: not reused
  EXPECT_NE(q, p);
  const DevicePtr r = must_allocate(*arena, MiB(18));  // 20 <= 18 + 2: reused
  EXPECT_EQ(r, p);
  EXPECT_EQ(arena->allocation_range(r)->granted, MiB(20));
}

// Once the arena had to reclaim, a reuse grants no more than the request (to the granularity):
// slack that a live range holds is memory the program may lack. It grants slack again once a
// new range is made with room to spare.
TEST(Arena, ReuseGrantsNoSlackWhileMemoryIsShort) {
  HostArenaConfig config;
  config.capacity = MiB(128);
  auto arena = make_host_arena(config);
  // Loose: a 50 MiB cached range serves 46 MiB whole.
  const DevicePtr probe = must_allocate(*arena, MiB(50));
  ASSERT_EQ(arena->free(probe, {}, kAsyncFree), FreeResult::kOk);
  const DevicePtr loose = must_allocate(*arena, MiB(46));
  EXPECT_EQ(loose, probe);
  EXPECT_EQ(arena->allocation_range(loose)->granted, MiB(50));
  ASSERT_EQ(arena->free(loose, {}, kAsyncFree), FreeResult::kOk);
  ASSERT_EQ(arena->trim(Bytes{0}), vmm::Status::kOk);

  // Short: 64 MiB live and 20 MiB cached leave 44 MiB on the device; 50 MiB needs a reclaim.
  const DevicePtr held = must_allocate(*arena, MiB(64));
  const DevicePtr p = must_allocate(*arena, MiB(20));
  ASSERT_EQ(arena->free(p, {}, kAsyncFree), FreeResult::kOk);
  const DevicePtr big = must_allocate(*arena, MiB(50));
  EXPECT_EQ(arena->stats().reclaims, 1u);
  ASSERT_EQ(arena->free(big, {}, kAsyncFree), FreeResult::kOk);
  const DevicePtr tight = must_allocate(*arena, MiB(46));
  EXPECT_EQ(arena->allocation_range(tight)->granted, MiB(46));
  EXPECT_LE(arena->stats().physical, MiB(128));

  // Room again: everything given back, a new range made on an empty device loosens it.
  ASSERT_EQ(arena->free(tight, {}, kAsyncFree), FreeResult::kOk);
  ASSERT_EQ(arena->free(held, {}, kAsyncFree), FreeResult::kOk);
  ASSERT_EQ(arena->trim(Bytes{0}), vmm::Status::kOk);
  const DevicePtr again = must_allocate(*arena, MiB(50));
  ASSERT_EQ(arena->free(again, {}, kAsyncFree), FreeResult::kOk);
  EXPECT_EQ(arena->allocation_range(must_allocate(*arena, MiB(46)))->granted, MiB(50));
}

// A 512 MiB host device whose arena has growth budget `grow` (ArenaOptions::grow_percent).
std::unique_ptr<Arena> budget_arena(std::uint32_t grow) {
  HostArenaConfig config;
  config.capacity = MiB(512);
  config.options.grow_percent = grow;
  return make_host_arena(config);
}

// Growth budget (ArenaOptions::grow_percent): a request that would take physical memory past
// the budget is rebuilt from idle cache first, here with a budget of 100 % of the largest live
// figure. A 64 MiB range, freed, cannot serve 96 MiB whole; growing would hold 160 MiB for a
// 96 MiB peak, so its handle is stitched behind the new range with 32 MiB created beside it.
TEST(Arena, PastTheGrowthBudgetARequestIsRebuiltFromIdleCache) {
  for (const std::uint32_t grow : {100u, 0u}) {
    auto arena = budget_arena(grow);
    const DevicePtr first = must_allocate(*arena, MiB(64));
    ASSERT_EQ(arena->free(first, {}, FreeKind::kLegacy), FreeResult::kOk);
    const DevicePtr second = must_allocate(*arena, MiB(96));
    const ArenaStats s = arena->stats();
    if (grow == 0) {  // no budget: the arena grows while the limit allows
      EXPECT_EQ(s.physical, MiB(160));
      EXPECT_EQ(s.stitches, 0u);
      EXPECT_EQ(s.budget_rebuilds, 0u);
    } else {
      EXPECT_EQ(s.physical, MiB(96));
      EXPECT_EQ(s.budget_rebuilds, 1u);
      EXPECT_EQ(s.stitches, 1u);
      EXPECT_EQ(s.remaps, 1u);
      EXPECT_EQ(s.handles_created, 2u);
      EXPECT_EQ(s.handles_released, 0u);
      EXPECT_FALSE(s.out_of_memory);
    }
    EXPECT_EQ(arena->allocation_range(second)->granted, MiB(96));
    ASSERT_EQ(arena->free(second, {}, kAsyncFree), FreeResult::kOk);
  }
}

// The budget never waits for the device: memory whose stream-ordered free is not yet known
// complete stays where it is, and the arena grows instead (the limit still allows it).
TEST(Arena, TheGrowthBudgetTakesOnlyMemoryKnownIdle) {
  auto arena = budget_arena(100);
  vmm::HostStream s1;
  vmm::HostStream s2;
  std::atomic<bool> go{false};
  const DevicePtr first = must_allocate(*arena, MiB(64), s1.ref());
  hold_until(s1, go);
  ASSERT_EQ(arena->free(first, s1.ref(), kAsyncFree), FreeResult::kOk);
  const DevicePtr second = must_allocate(*arena, MiB(96), s2.ref());
  const ArenaStats s = arena->stats();
  EXPECT_EQ(s.physical, MiB(160));
  EXPECT_EQ(s.budget_rebuilds, 0u);
  EXPECT_EQ(s.event_waits, 0u);
  EXPECT_EQ(s.device_syncs, 0u);
  go = true;
  s1.synchronize();
  ASSERT_EQ(arena->free(second, s2.ref(), kAsyncFree), FreeResult::kOk);
}

// On the request's own stream the budget also takes memory whose free is not yet known
// complete: the stream's order puts the new user after the old one. The handles move behind the
// new range and the old addresses stay mapped until the free completes, so that work still
// queued through them (a "kernel" held back, then writing through the old address) finds
// memory there; unmapped at once, the host backend's reservation would fault.
TEST(Arena, TheGrowthBudgetTakesMemoryFreedOnTheSameStreamWithoutWaiting) {
  auto arena = budget_arena(100);
  const Patterns patterns(MiB(96));
  vmm::HostStream s1;
  std::atomic<bool> go{false};
  const DevicePtr first = must_allocate(*arena, MiB(64), s1.ref());
  hold_until(s1, go, [&] { patterns.fill(first, MiB(64), 1); });
  ASSERT_EQ(arena->free(first, s1.ref(), kAsyncFree), FreeResult::kOk);
  const DevicePtr second = must_allocate(*arena, MiB(96), s1.ref());
  const ArenaStats s = arena->stats();
  EXPECT_EQ(s.physical, MiB(96));
  EXPECT_EQ(s.budget_rebuilds, 1u);
  EXPECT_EQ(s.stitches, 1u);
  EXPECT_EQ(s.event_waits, 0u);
  EXPECT_EQ(s.device_syncs, 0u);
  // The old addresses stay mapped until the free completes; the memory counts once.
  EXPECT_EQ(s.mapped, MiB(96));
  EXPECT_EQ(backend_stats(*arena).live_mappings, 3u);  // old 64, new 64 + 32 MiB
  EXPECT_FALSE(arena->allocation_range(first).has_value());
  EXPECT_EQ(arena->free(first, s1.ref(), kAsyncFree), FreeResult::kInvalidPointer);
  s1.enqueue([&] { patterns.fill(second, MiB(96), 2); });
  go = true;
  s1.synchronize();
  EXPECT_TRUE(patterns.check(second, MiB(96), 2));
  // The next slow path finds the free complete and unmaps the old addresses.
  ASSERT_EQ(arena->trim(MiB(512)), vmm::Status::kOk);
  EXPECT_EQ(arena->stats().mapped, MiB(96));
  EXPECT_EQ(arena->stats().physical, MiB(96));
  EXPECT_EQ(backend_stats(*arena).live_mappings, 2u);
  ASSERT_EQ(arena->free(second, s1.ref(), kAsyncFree), FreeResult::kOk);
}

// A handle the rebuild does not need (64 MiB for a 40 MiB request) is not released while its old
// addresses still map it: the device keeps that memory until they are unmapped, so the arena
// keeps counting it, and releases it once the free has completed.
TEST(Arena, AHandleStillMappedAtARetiredAddressIsReleasedWhenThatAddressGoes) {
  auto arena = budget_arena(100);
  vmm::HostStream s1;
  std::atomic<bool> go{false};
  const DevicePtr first = must_allocate(*arena, MiB(64), s1.ref());
  hold_until(s1, go);
  ASSERT_EQ(arena->free(first, s1.ref(), kAsyncFree), FreeResult::kOk);
  const DevicePtr second = must_allocate(*arena, MiB(40), s1.ref());
  ArenaStats s = arena->stats();
  EXPECT_EQ(s.budget_rebuilds, 1u);
  EXPECT_EQ(s.handles_released, 0u);
  EXPECT_EQ(s.physical, MiB(104));
  EXPECT_EQ(s.mapped, MiB(104));
  EXPECT_EQ(backend_stats(*arena).device_bytes, MiB(104));
  go = true;
  s1.synchronize();
  ASSERT_EQ(arena->trim(MiB(512)), vmm::Status::kOk);
  s = arena->stats();
  EXPECT_EQ(s.handles_released, 1u);
  EXPECT_EQ(s.physical, MiB(40));
  EXPECT_EQ(s.mapped, MiB(40));
  EXPECT_EQ(backend_stats(*arena).device_bytes, MiB(40));
  EXPECT_EQ(backend_stats(*arena).live_mappings, 1u);
  ASSERT_EQ(arena->free(second, s1.ref(), kAsyncFree), FreeResult::kOk);
}

// The slow paths' time is counted (what the launcher's summary reports), the fast paths' not.
TEST(Arena, TimesItsSlowPathsOnly) {
  auto arena = make_host_arena({});
  EXPECT_EQ(arena->stats().slow_ns, 0u);
  const DevicePtr p = must_allocate(*arena, MiB(8));
  const ArenaStats after_slow = arena->stats();
  EXPECT_EQ(after_slow.slow_allocations, 1u);
  EXPECT_GT(after_slow.slow_ns, 0u);
  EXPECT_EQ(arena->figures().slow_ns, after_slow.slow_ns);
  ASSERT_EQ(arena->free(p, {}, kAsyncFree), FreeResult::kOk);
  EXPECT_EQ(must_allocate(*arena, MiB(8)), p);  // from the cache
  EXPECT_EQ(arena->stats().slow_ns, after_slow.slow_ns);
  ASSERT_EQ(arena->trim(Bytes{0}), vmm::Status::kOk);
  EXPECT_GT(arena->stats().slow_ns, after_slow.slow_ns);
}

TEST(Arena, TrimReleasesCachedMemoryDownToWhatIsKept) {
  auto arena = make_host_arena({});
  std::vector<DevicePtr> blocks;
  for (int i = 0; i < 8; ++i) blocks.push_back(must_allocate(*arena, MiB(4)));
  std::vector<DevicePtr> small;
  for (int i = 0; i < 100; ++i) small.push_back(must_allocate(*arena, KiB(16)));
  for (const DevicePtr p : blocks) ASSERT_EQ(arena->free(p, {}, kAsyncFree), FreeResult::kOk);
  for (const DevicePtr p : small) ASSERT_EQ(arena->free(p, {}, FreeKind::kLegacy), FreeResult::kOk);
  ASSERT_EQ(arena->trim(MiB(10)), vmm::Status::kOk);
  EXPECT_LE(arena->stats().physical, MiB(10));
  EXPECT_GT(arena->stats().physical, Bytes{0});
  ASSERT_EQ(arena->trim(Bytes{0}), vmm::Status::kOk);
  const ArenaStats s = arena->stats();
  EXPECT_EQ(s.physical, Bytes{0});
  EXPECT_EQ(s.mapped, Bytes{0});
  EXPECT_EQ(s.trims, 2u);
  const vmm::HostBackendStats b = backend_stats(*arena);
  EXPECT_EQ(b.live_handles, 0u);
  EXPECT_EQ(b.live_mappings, 0u);
  EXPECT_EQ(b.device_bytes, Bytes{0});
}

TEST(Arena, TrimKeepsLiveMemory) {
  auto arena = make_host_arena({});
  const DevicePtr p = must_allocate(*arena, MiB(4));
  const DevicePtr q = must_allocate(*arena, KiB(1));
  std::memset(p.as_void(), 7, MiB(4).value);
  ASSERT_EQ(arena->trim(Bytes{0}), vmm::Status::kOk);
  EXPECT_EQ(static_cast<unsigned char*>(p.as_void())[12345], 7);
  EXPECT_TRUE(arena->allocation_range(q).has_value());
  EXPECT_EQ(arena->stats().physical, MiB(6));
}

TEST(Arena, BadFreesAreRefusedAndChangeNothing) {
  auto arena = make_host_arena({});
  const DevicePtr large = must_allocate(*arena, MiB(4));
  const DevicePtr small = must_allocate(*arena, KiB(1));
  const ArenaStats before = arena->stats();
  int outside = 0;
  EXPECT_EQ(arena->free(DevicePtr::from(&outside), {}, kAsyncFree), FreeResult::kNotOwned);
  EXPECT_EQ(arena->free(large + KiB(4), {}, kAsyncFree), FreeResult::kInvalidPointer);
  EXPECT_EQ(arena->free(small + Bytes{256}, {}, kAsyncFree), FreeResult::kInvalidPointer);
  EXPECT_EQ(arena->free(small + Bytes{1}, {}, kAsyncFree), FreeResult::kInvalidPointer);
  EXPECT_EQ(arena->stats().live, before.live);
  EXPECT_EQ(arena->free(large, {}, kAsyncFree), FreeResult::kOk);
  EXPECT_EQ(arena->free(small, {}, kAsyncFree), FreeResult::kOk);
  EXPECT_EQ(arena->free(large, {}, kAsyncFree), FreeResult::kInvalidPointer);  // double free
  EXPECT_EQ(arena->free(small, {}, kAsyncFree), FreeResult::kInvalidPointer);
  EXPECT_EQ(arena->stats().live, Bytes{0});
  // Unmapped addresses inside the region.
  ASSERT_EQ(arena->trim(Bytes{0}), vmm::Status::kOk);
  EXPECT_EQ(arena->free(large, {}, kAsyncFree), FreeResult::kInvalidPointer);
}

TEST(Arena, LegacyFreesAreFencedByOneDeviceSynchronizePerBatch) {
  HostArenaConfig config;
  config.capacity = MiB(32);
  auto arena = make_host_arena(config);
  vmm::HostStream s;
  std::vector<DevicePtr> blocks;
  for (int i = 0; i < 8; ++i)
    blocks.push_back(must_allocate(*arena, MiB(4), {}, AllocKind::kLegacy));
  std::atomic<bool> kernel_done{false};
  // A "kernel" still using the first block when the program calls cudaFree on it.
  s.enqueue([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    std::memset(blocks[0].as_void(), 3, 4096);
    kernel_done = true;
  });
  for (const DevicePtr p : blocks)
    ASSERT_EQ(arena->free(p, {}, FreeKind::kLegacy), FreeResult::kOk);
  for (int i = 0; i < 8; ++i) must_allocate(*arena, MiB(4), {}, AllocKind::kLegacy);
  EXPECT_TRUE(kernel_done.load());  // the arena waited before handing the memory out again
  EXPECT_EQ(arena->stats().device_syncs, 1u);
  EXPECT_EQ(backend_stats(*arena).create, 8u);
}

TEST(Arena, EmptySlabsGoBackToTheLargeCacheAndCanBeStitched) {
  HostArenaConfig config;
  config.capacity = MiB(32);
  auto arena = make_host_arena(config);
  std::vector<DevicePtr> small;
  for (int i = 0; i < 64; ++i) small.push_back(must_allocate(*arena, KiB(256)));  // 16 MiB
  const DevicePtr large = must_allocate(*arena, MiB(16));
  for (const DevicePtr p : small) ASSERT_EQ(arena->free(p, {}, kAsyncFree), FreeResult::kOk);
  const AllocResult big = arena->allocate(MiB(16), vmm::StreamRef{}, AllocKind::kLegacy);
  ASSERT_TRUE(big.ok());
  std::memset(big.ptr.as_void(), 9, MiB(16).value);
  EXPECT_NE(big.ptr, large);
  EXPECT_LE(arena->stats().physical, MiB(32));
}

TEST(Arena, ListenerSeesWhatChanged) {
  HostArenaConfig config;
  config.capacity = MiB(16);
  config.options.small_threshold = MiB(1);  // 4 MiB requests get ranges of their own
  auto arena = make_host_arena(config);
  std::vector<ArenaEventKind> kinds;
  Bytes oom_request;
  Bytes oom_live;
  arena->set_listener([&](const ArenaEvent& e) {
    kinds.push_back(e.kind);
    if (e.kind == ArenaEventKind::kOutOfMemory) {
      oom_request = e.size;
      oom_live = e.state.live;
    }
  });
  const DevicePtr a = must_allocate(*arena, MiB(4));
  const DevicePtr b = must_allocate(*arena, MiB(4));
  must_allocate(*arena, MiB(4));
  must_allocate(*arena, MiB(4));
  ASSERT_EQ(arena->free(a, {}, kAsyncFree), FreeResult::kOk);
  ASSERT_EQ(arena->free(b, {}, kAsyncFree), FreeResult::kOk);
  EXPECT_FALSE(arena->allocate(MiB(10), {}, kAsync).ok());
  must_allocate(*arena, MiB(6));  // a and b are neighbours: joined (8 <= 6 + ... no: stitched)
  // Each new range: its physical memory created, then mapped.
  std::vector<ArenaEventKind> maps;
  for (int i = 0; i < 4; ++i) {
    maps.push_back(ArenaEventKind::kPhysicalCreate);
    maps.push_back(ArenaEventKind::kMap);
  }
  ASSERT_GE(kinds.size(), 9u);
  EXPECT_EQ(std::vector<ArenaEventKind>(kinds.begin(), kinds.begin() + 8), maps);
  EXPECT_EQ(kinds[8], ArenaEventKind::kOutOfMemory);
  EXPECT_EQ(oom_request, MiB(10));
  EXPECT_EQ(oom_live, MiB(8));
  const auto seen = [&](ArenaEventKind kind) {
    return std::find(kinds.begin(), kinds.end(), kind) != kinds.end();
  };
  EXPECT_TRUE(seen(ArenaEventKind::kStitch));
  EXPECT_TRUE(seen(ArenaEventKind::kUnmap));
  // b's memory, unmapped but not needed for the 6 MiB, went back: it had been cached.
  EXPECT_TRUE(seen(ArenaEventKind::kPhysicalRelease));
  EXPECT_TRUE(seen(ArenaEventKind::kCacheRelease));
}

TEST(Arena, StatsAddUp) {
  auto arena = make_host_arena({});
  std::mt19937 rng(3);
  std::map<std::uintptr_t, Bytes> live;
  Bytes requested;
  for (int step = 0; step < 3000; ++step) {
    if (live.empty() || rng() % 3 != 0) {
      const Bytes size{1 + rng() % (rng() % 8 == 0 ? MiB(4).value : KiB(64).value)};
      const AllocResult r = arena->allocate(size, {}, kAsync);
      if (!r.ok()) continue;
      live.emplace(r.ptr.value, size);
      requested += size;
    } else {
      auto it = std::next(live.begin(), static_cast<long>(rng() % live.size()));
      ASSERT_EQ(arena->free(DevicePtr{it->first}, {}, kAsyncFree), FreeResult::kOk);
      requested -= it->second;
      live.erase(it);
    }
    if (step % 100 == 0) {
      const ArenaStats s = arena->stats();
      ASSERT_EQ(s.requested, requested);
      ASSERT_EQ(s.live_allocations, live.size());
      ASSERT_GE(s.live, s.requested);
      ASSERT_EQ(s.cached, s.mapped - s.live);
      ASSERT_EQ(s.physical, s.mapped);
      ASSERT_LE(s.physical, s.limit);
      ASSERT_EQ(backend_stats(*arena).device_bytes, s.physical);
      ASSERT_GE(s.peak_live, s.live);
      ASSERT_GE(s.peak_physical, s.physical);
    }
  }
}

TEST(Arena, InvalidOptionsAreRefused) {
  ArenaOptions options;
  options.small_threshold = MiB(32);
  vmm::Status why = vmm::Status::kOk;
  EXPECT_EQ(Arena::create(vmm::make_host_backend({}), options, &why), nullptr);
  EXPECT_EQ(why, vmm::Status::kInvalidValue);
  EXPECT_EQ(Arena::create(nullptr, {}, &why), nullptr);
}

TEST(Arena, NoSmallThresholdServesEverythingAsRanges) {
  HostArenaConfig config;
  config.options.small_threshold = Bytes{0};
  auto arena = make_host_arena(config);
  const DevicePtr p = must_allocate(*arena, Bytes{10});
  EXPECT_EQ(arena->allocation_range(p)->granted, MiB(2));
}

}  // namespace
}  // namespace cudefrag::arena
