// The arenas behind the hooks in arena mode: one per device, created lazily and thread-safely on
// the first allocation for that device, on the CUDA backend of that device (make_cuda_backend)
// with the limit from CUDEFRAG_LIMIT. Creating one reserves address space but allocates no device
// memory, and it happens inside a hook, never in a constructor.
//
// If an arena cannot start (no VMM support, old driver, backend error), its device runs in
// passthrough and the shim says so once. Arenas live until the process ends: they are never
// destroyed (the driver may be gone by the time static destructors run), except by the test-only
// reset below.
//
// Finding an arena (arena_for after the first call, owning_arena, default_pool_arena) takes no
// lock: a few atomic loads.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>

#include "shim/arena/arena.hpp"
#include "shim/common/units.hpp"
#include "shim/vmm/backend.hpp"

namespace cudefrag::hooks {

// Devices the shim can give an arena; allocations on higher ordinals pass through.
inline constexpr int kMaxArenaDevices = 64;

// The device's arena, created on first use; nullptr when its device runs in passthrough.
arena::Arena* arena_for(DeviceOrdinal device) noexcept;
// The device's arena if it has been created; never creates one.
arena::Arena* existing_arena(DeviceOrdinal device) noexcept;

struct OwnedBy {
  arena::Arena* arena = nullptr;
  DeviceOrdinal device;
};
// The arena whose address region holds `p` (nothing when none does).
OwnedBy owning_arena(DevicePtr p) noexcept;

// One more than the highest device ordinal that has had an arena: loops over arenas stop there.
int arena_device_bound() noexcept;

// Calls f(device, arena) for every arena created so far.
template <typename F>
void for_each_arena(F&& f) noexcept {
  const int bound = arena_device_bound();
  for (int d = 0; d < bound; ++d) {
    if (arena::Arena* a = existing_arena(DeviceOrdinal{d})) f(DeviceOrdinal{d}, *a);
  }
}

// The device's default memory pool (cudaDeviceGetDefaultMemPool), asked of the driver once;
// nullptr when the driver cannot say.
void* default_pool(DeviceOrdinal device) noexcept;
// Whether the program allocates stream-ordered (cudaMallocAsync & co., served in place of the
// device's default pool); set on the first such allocation the arena serves, never cleared.
void note_stream_ordered_use(DeviceOrdinal device) noexcept;
bool stream_ordered_in_use(DeviceOrdinal device) noexcept;

// The device whose default pool is `pool`, whether or not it has an arena yet.
std::optional<DeviceOrdinal> default_pool_device(const void* pool) noexcept;
// The device whose default pool is `pool`, among devices that have an arena.
std::optional<OwnedBy> default_pool_arena(const void* pool) noexcept;

// cudaMemPoolAttrReleaseThreshold of a replaced default pool, as the program last set it.
void remember_release_threshold(DeviceOrdinal device, std::uint64_t value) noexcept;
std::optional<std::uint64_t> release_threshold(DeviceOrdinal device) noexcept;

// `peer` may touch `device`'s memory (cudaDeviceEnablePeerAccess(device) called on `peer`, or
// cudaMemPoolSetAccess on `device`'s default pool for `peer`): `device`'s arena, now or when it
// is created, grants `peer` access to every mapping.
void enable_peer(DeviceOrdinal device, DeviceOrdinal peer) noexcept;

// After an arena call: if the arena's slow path changed what it holds, copies its figures
// (physical memory held, its peak, stitches) into the stats file. One atomic load otherwise.
void publish_if_changed(DeviceOrdinal device, arena::Arena& a) noexcept;

// Most physical memory each arena may hold (CUDEFRAG_LIMIT); 0: no limit.
Bytes arena_limit() noexcept;

// Test only (not exported from libcudefrag.so). The factory that makes each device's backend
// (make_cuda_backend by default): tests put the host backend here.
using BackendFactory = std::unique_ptr<vmm::Backend> (*)(DeviceOrdinal device, vmm::Status* why);
void set_backend_factory_for_testing(BackendFactory factory) noexcept;
// Test only: destroys every arena and forgets every device's state, so that the next allocation
// creates a fresh arena with the configuration then active. No hook may run concurrently.
void reset_arenas_for_testing() noexcept;
// Test only: the limit arenas created from now on get, in place of CUDEFRAG_LIMIT.
void set_limit_for_testing(Bytes limit) noexcept;

}  // namespace cudefrag::hooks
