// Slab pages: small-request slabs of every class carved from shared pages (slab_pages.hpp), alone
// and inside the arena on the host backend.
#include "shim/arena/slab_pages.hpp"

#include <gtest/gtest.h>

#include <vector>

#include "shim/arena/arena.hpp"
#include "tests/shim/arena/arena_test_support.hpp"

namespace cudefrag::arena {
namespace {

using testing::backend_stats;
using testing::HostArenaConfig;
using testing::make_host_arena;
using testing::Patterns;

constexpr Bytes kPage = MiB(2);
constexpr Bytes kUnit = KiB(32);

DevicePtr must_allocate_legacy(Arena& a, Bytes size) {
  const AllocResult r = a.allocate(size, {}, AllocKind::kLegacy);
  EXPECT_TRUE(r.ok()) << "allocate " << size.value;
  return r.ptr;
}

void make_page_range(Range& r, DevicePtr base) {
  r.base = base;
  r.size = kPage;
  r.state = RangeState::kSlab;
}

TEST(SlabPages, CarvesFirstFitAndDissolvesAnEmptyPage) {
  SlabPages pages(kPage, kUnit);
  EXPECT_FALSE(pages.carve(1).has_value());  // no page yet
  Range a;
  Range b;
  make_page_range(a, DevicePtr{0x10000000});
  make_page_range(b, DevicePtr{0x20000000});
  const SlabPages::Carved first = pages.add_and_carve(&b, 60);
  EXPECT_EQ(first.base, b.base);
  EXPECT_EQ(b.page.load(), first.page);
  const SlabPages::Carved in_a = pages.add_and_carve(&a, 10);

  // Lowest address first: a has 54 free units, b only 4.
  const auto c = pages.carve(4);
  ASSERT_TRUE(c.has_value());
  EXPECT_EQ(c->page, in_a.page);
  EXPECT_EQ(c->base, a.base + kUnit * 10);
  const auto d = pages.carve(50);  // a has 50 left: exactly
  ASSERT_TRUE(d.has_value());
  EXPECT_EQ(d->first, 14u);
  const auto e = pages.carve(4);  // only b has room
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->page, first.page);
  EXPECT_EQ(e->first, 60u);
  EXPECT_FALSE(pages.carve(1).has_value());

  // A page goes back only when its last slab leaves.
  EXPECT_EQ(pages.release(in_a.page, 0, 10), nullptr);
  EXPECT_EQ(pages.release(c->page, c->first, 4), nullptr);
  EXPECT_EQ(pages.page_count(), 2u);
  EXPECT_EQ(pages.release(d->page, d->first, 50), &a);
  EXPECT_EQ(a.page.load(), nullptr);
  EXPECT_EQ(pages.page_count(), 1u);
  const auto f = pages.carve(64);  // a is no page any more; b is nearly full
  EXPECT_FALSE(f.has_value());
}

TEST(SlabPages, APageOfKeptEmptySlabsIsReclaimable) {
  SlabPages pages(kPage, kUnit);
  Range a;
  make_page_range(a, DevicePtr{0x10000000});
  const SlabPages::Carved x = pages.add_and_carve(&a, 8);
  const auto y = pages.carve(16);
  ASSERT_TRUE(y.has_value());
  EXPECT_EQ(pages.reclaimable(), Bytes{0});
  pages.set_empty(x.page, 8, true);
  EXPECT_EQ(pages.reclaimable(), Bytes{0});  // y is still in use
  pages.set_empty(y->page, 16, true);
  EXPECT_EQ(pages.reclaimable(), kPage);
  pages.set_empty(x.page, 8, false);  // x handed out again
  EXPECT_EQ(pages.reclaimable(), Bytes{0});
  EXPECT_EQ(pages.release(x.page, x.first, 8), nullptr);
  EXPECT_EQ(pages.reclaimable(), kPage);  // only y, kept empty, is left
  pages.set_empty(y->page, 16, false);
  EXPECT_EQ(pages.release(y->page, y->first, 16), &a);
  EXPECT_EQ(pages.reclaimable(), Bytes{0});
}

// One slab of every class in use: a few shared pages, where one handle per class used to cost
// 190 MiB.
TEST(ArenaSlabPages, EveryClassInUseCostsAFewPages) {
  HostArenaConfig config;
  config.capacity = MiB(64);
  auto arena = make_host_arena(config);
  const SizeClasses classes(arena->small_threshold(), arena->granularity());
  const Patterns patterns(MiB(1));
  std::vector<DevicePtr> blocks;
  for (std::uint32_t i = 0; i < classes.count(); ++i) {
    const AllocResult r = arena->allocate(classes[i].slot, {}, AllocKind::kLegacy);
    ASSERT_TRUE(r.ok()) << i;
    patterns.fill(r.ptr, classes[i].slot, i);
    blocks.push_back(r.ptr);
  }
  const ArenaStats s = arena->stats();
  EXPECT_LE(s.physical, MiB(20));
  EXPECT_EQ(backend_stats(*arena).create, s.physical / kPage);  // one handle per page
  for (std::uint32_t i = 0; i < classes.count(); ++i) {
    EXPECT_TRUE(patterns.check(blocks[i], classes[i].slot, i)) << i;
    const auto range = arena->allocation_range(blocks[i] + (classes[i].slot - Bytes{1}));
    ASSERT_TRUE(range.has_value());
    EXPECT_EQ(range->base, blocks[i]);
    ASSERT_EQ(arena->free(blocks[i], {}, FreeKind::kLegacy), FreeResult::kOk);
  }
  ASSERT_EQ(arena->trim(Bytes{0}), vmm::Status::kOk);
  EXPECT_EQ(arena->stats().physical, Bytes{0});
  EXPECT_EQ(backend_stats(*arena).live_handles, 0u);
}

TEST(ArenaSlabPages, APageStaysWhileAnySlabInItIsLiveAndCountsOnceItIsFree) {
  HostArenaConfig config;
  config.capacity = MiB(64);
  auto arena = make_host_arena(config);
  const Patterns patterns(MiB(1));
  const DevicePtr a = must_allocate_legacy(*arena, KiB(4));
  const DevicePtr b = must_allocate_legacy(*arena, KiB(64));
  patterns.fill(b, KiB(64), 2);
  EXPECT_EQ(arena->stats().physical, kPage);  // two classes, one page
  EXPECT_EQ(backend_stats(*arena).create, 1u);

  ASSERT_EQ(arena->free(a, {}, FreeKind::kLegacy), FreeResult::kOk);
  ASSERT_EQ(arena->trim(Bytes{0}), vmm::Status::kOk);
  EXPECT_EQ(arena->stats().physical, kPage);  // b holds the page
  EXPECT_TRUE(patterns.check(b, KiB(64), 2));
  EXPECT_EQ(arena->stats().largest_allocatable, arena->stats().limit - kPage);

  ASSERT_EQ(arena->free(b, {}, FreeKind::kLegacy), FreeResult::kOk);
  // A large request fences the cudaFree'd slot; b's slab is then kept empty by its heap, and its
  // page, holding nothing else, counts as allocatable.
  must_allocate_legacy(*arena, MiB(8));
  const ArenaStats s = arena->stats();
  EXPECT_EQ(s.physical, kPage + MiB(8));
  EXPECT_EQ(s.largest_allocatable, s.limit - MiB(8));
  EXPECT_TRUE(arena->allocate(s.largest_allocatable, {}, AllocKind::kLegacy).ok());
}

}  // namespace
}  // namespace cudefrag::arena
