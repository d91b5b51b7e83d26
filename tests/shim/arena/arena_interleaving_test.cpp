// Interleavings that the random concurrent test reaches only now and then, made deterministic: a
// backend decorator runs test code inside a chosen backend call of the arena's slow path, which
// is what another thread does when it acts while the slow path is busy with the driver.
#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <utility>
#include <vector>

#include "shim/arena/arena.hpp"
#include "shim/vmm/forwarding_backend.hpp"
#include "shim/vmm/host_backend.hpp"

namespace cudefrag::arena {
namespace {

// Forwards to a host backend. `before_create` runs (once) at the start of the next create();
// unmap() fails with kBackendError from the `fail_unmap_at`-th call on (1-based; 0: never);
// mem_info() claims `phantom` bytes more, free and total, than there are (a driver whose free
// figure includes memory it keeps for itself, on a card much larger than what is free).
class HookedBackend final : public vmm::ForwardingBackend {
 public:
  using ForwardingBackend::ForwardingBackend;

  vmm::HostBackendStats host_stats() const { return *vmm::host_backend_stats(inner()); }

  std::function<void()> before_create;
  int fail_unmap_at = 0;
  Bytes phantom;

  vmm::Status mem_info(Bytes* free_bytes, Bytes* total) override {
    const vmm::Status s = inner().mem_info(free_bytes, total);
    if (s != vmm::Status::kOk) return s;
    if (free_bytes != nullptr) *free_bytes += phantom;
    if (total != nullptr) *total += phantom;
    return s;
  }

  vmm::Status create(Bytes size, vmm::Location where, vmm::PhysHandle* out) override {
    if (before_create) std::exchange(before_create, nullptr)();
    return inner().create(size, where, out);
  }
  vmm::Status unmap(DevicePtr va, Bytes size) override {
    if (fail_unmap_at != 0 && ++unmaps_ >= fail_unmap_at) return vmm::Status::kBackendError;
    return inner().unmap(va, size);
  }

 private:
  int unmaps_ = 0;
};

struct Hooked {
  std::unique_ptr<Arena> arena;
  HookedBackend* backend = nullptr;
};

Hooked make_hooked_arena(Bytes capacity, Bytes granularity, const ArenaOptions& options = {},
                         Bytes phantom = Bytes{}) {
  vmm::HostBackendOptions host;
  host.capacity = capacity;
  host.granularity = granularity;
  auto backend = std::make_unique<HookedBackend>(vmm::make_host_backend(host));
  backend->phantom = phantom;
  Hooked h;
  h.backend = backend.get();
  vmm::Status why = vmm::Status::kOk;
  h.arena = Arena::create(std::move(backend), options, &why);
  EXPECT_NE(h.arena, nullptr) << vmm::to_string(why);
  return h;
}

// A slot of the class is freed on the allocating stream while the slow path builds a new slab for
// that class. The new slab must still end up where reclaim and trim find it once it is empty
// (found by RandomOperationsKeepEveryPromise: after every block was freed, trim(0) left one slab
// mapped).
TEST(ArenaInterleaving, ASlotFreedWhileANewSlabIsBuiltLeavesTheSlabReclaimable) {
  ArenaOptions options;
  options.small_threshold = MiB(1);
  Hooked h = make_hooked_arena(MiB(4), KiB(64), options);
  ASSERT_NE(h.arena, nullptr);
  Arena& arena = *h.arena;
  vmm::HostStream s;
  // 1 MiB slots, one per slab; a 2 MiB slab page holds two.
  ASSERT_EQ(arena.small_threshold(), MiB(1));
  std::vector<DevicePtr> full;
  for (int i = 0; i < 2; ++i) {
    const AllocResult r = arena.allocate(MiB(1), s.ref(), AllocKind::kStreamOrdered);
    ASSERT_TRUE(r.ok());
    full.push_back(r.ptr);
  }
  ASSERT_EQ(h.backend->host_stats().create, 1u);

  h.backend->before_create = [&] {
    EXPECT_EQ(arena.free(full[0], s.ref(), FreeKind::kStreamOrdered), FreeResult::kOk);
  };
  const AllocResult extra = arena.allocate(Bytes{256}, s.ref(), AllocKind::kStreamOrdered);
  ASSERT_TRUE(extra.ok());
  EXPECT_EQ(h.backend->host_stats().create, 2u);  // the hook ran inside the new slab's create

  for (std::size_t i = 1; i < full.size(); ++i) {
    ASSERT_EQ(arena.free(full[i], s.ref(), FreeKind::kStreamOrdered), FreeResult::kOk);
  }
  ASSERT_EQ(arena.free(extra.ptr, s.ref(), FreeKind::kStreamOrdered), FreeResult::kOk);
  // Nothing is live: every byte the arena holds is reclaimable, and trim(0) gives all of it back.
  EXPECT_EQ(arena.stats().live, Bytes{0});
  ASSERT_EQ(arena.trim(Bytes{0}), vmm::Status::kOk);
  EXPECT_EQ(arena.stats().physical, Bytes{0});
  EXPECT_EQ(h.backend->host_stats().live_handles, 0u);
  EXPECT_EQ(h.backend->host_stats().live_mappings, 0u);
}

// The device is full, and the driver's free figure promises memory its cuMemCreate refuses (an
// H200 said 15.6 MiB free and refused 12 MiB while the arena held 2.2 GiB of cache): the arena
// must stitch the request from its cache, not count on that figure and give up.
TEST(ArenaInterleaving, ARefusedCreateIsServedFromTheCacheWhateverTheFreeFigureSays) {
  ArenaOptions options;
  options.small_threshold = Bytes{0};  // every request is a range of its own
  Hooked h = make_hooked_arena(MiB(4), KiB(64), options, MiB(2));
  ASSERT_NE(h.arena, nullptr);
  Arena& arena = *h.arena;
  // a | b | c | d fill the device; a and c freed: 2 MiB cached in two ranges that cannot be
  // joined.
  std::vector<DevicePtr> p;
  for (int i = 0; i < 4; ++i) {
    const AllocResult r = arena.allocate(MiB(1), {}, AllocKind::kLegacy);
    ASSERT_TRUE(r.ok());
    p.push_back(r.ptr);
  }
  ASSERT_EQ(arena.free(p[0], {}, FreeKind::kLegacy), FreeResult::kOk);
  ASSERT_EQ(arena.free(p[2], {}, FreeKind::kLegacy), FreeResult::kOk);
  const AllocResult big = arena.allocate(MiB(2), {}, AllocKind::kLegacy);
  ASSERT_TRUE(big.ok()) << "the cache could serve it, stitched";
  EXPECT_EQ(arena.stats().physical, MiB(4));
  EXPECT_EQ(arena.stats().stitches, 1u);
  ASSERT_EQ(arena.free(big.ptr, {}, FreeKind::kLegacy), FreeResult::kOk);
  ASSERT_EQ(arena.free(p[1], {}, FreeKind::kLegacy), FreeResult::kOk);
  ASSERT_EQ(arena.free(p[3], {}, FreeKind::kLegacy), FreeResult::kOk);
}

// Reclaim unmaps victims one by one; when a later unmap fails, the handles of the victims already
// unmapped must not be lost (they are neither mapped nor cached any more).
TEST(ArenaInterleaving, AFailedReclaimReleasesWhatItUnmapped) {
  ArenaOptions options;
  options.limit = MiB(1);
  options.small_threshold = Bytes{0};  // every request is a range of its own
  Hooked h = make_hooked_arena(MiB(4), KiB(64), options);
  ASSERT_NE(h.arena, nullptr);
  Arena& arena = *h.arena;
  // a | c | b with a and b freed: 960 KiB cached in two ranges that cannot be joined.
  const AllocResult a = arena.allocate(KiB(512), {}, AllocKind::kLegacy);
  const AllocResult c = arena.allocate(KiB(64), {}, AllocKind::kLegacy);
  const AllocResult b = arena.allocate(KiB(448), {}, AllocKind::kLegacy);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  ASSERT_EQ(arena.free(a.ptr, {}, FreeKind::kLegacy), FreeResult::kOk);
  ASSERT_EQ(arena.free(b.ptr, {}, FreeKind::kLegacy), FreeResult::kOk);

  h.backend->fail_unmap_at = 2;  // the first victim unmaps, the second does not
  const AllocResult big = arena.allocate(KiB(960), {}, AllocKind::kLegacy);
  EXPECT_FALSE(big.ok());
  h.backend->fail_unmap_at = 0;
  EXPECT_EQ(arena.stats().physical, h.backend->host_stats().device_bytes);

  ASSERT_EQ(arena.free(c.ptr, {}, FreeKind::kLegacy), FreeResult::kOk);
  ASSERT_EQ(arena.trim(Bytes{0}), vmm::Status::kOk);
  EXPECT_EQ(arena.stats().physical, Bytes{0});
  EXPECT_EQ(h.backend->host_stats().live_handles, 0u);
  EXPECT_EQ(h.backend->host_stats().live_mappings, 0u);
}

}  // namespace
}  // namespace cudefrag::arena
