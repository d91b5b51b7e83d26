// What an arena holds and has done, as the trace, cudaMemGetInfo and the pool-attribute queries
// report it. Read from atomics without a common lock: each figure is exact, the set is a snapshot
// good enough for reporting (two figures may be a few operations apart under load).
#pragma once

#include <cstdint>

#include "shim/common/units.hpp"

namespace cudefrag::arena {

struct ArenaStats {
  // Bytes granted to live allocations (slot or range sizes) and what the program asked for;
  // their difference is internal waste (size-class and page rounding).
  Bytes live;
  Bytes requested;
  // Virtual bytes backed by physical memory: live allocations, free slots of slabs, and freed
  // ranges kept mapped for reuse.
  Bytes mapped;
  // mapped - live: mapped but not granted (what a pool would call reserved-but-unused).
  Bytes cached;
  // Physical memory the arena holds (every handle it created and has not released); equal to
  // mapped, because the arena releases a handle as soon as it is unmapped and not reused.
  Bytes physical;
  Bytes limit;
  // The largest single request that could succeed now: cached ranges and empty slabs that can be
  // unmapped and stitched, plus what can still be created within the limit and the device's
  // free memory. Partly filled slabs do not count: their free slots serve small requests only.
  Bytes largest_allocatable;
  // The device's free and total memory as the driver reports them (cuMemGetInfo; memory of
  // other users included); both 0 when the backend cannot tell.
  Bytes backend_free;
  Bytes backend_total;

  Bytes peak_live;
  Bytes peak_mapped;
  Bytes peak_physical;

  std::uint64_t live_allocations = 0;
  std::uint64_t allocations = 0;       // successful allocate() calls
  std::uint64_t frees = 0;             // successful free() calls
  std::uint64_t slow_allocations = 0;  // allocations that missed the caches
  std::uint64_t handles_created = 0;
  std::uint64_t handles_released = 0;
  std::uint64_t stitches = 0;  // new ranges that reuse physical memory unmapped from elsewhere
  std::uint64_t remaps = 0;    // physical handles mapped again at a new address
  std::uint64_t joins = 0;     // requests served by joining or splitting cached ranges, no remap
  std::uint64_t reclaims = 0;  // cached ranges and empty slabs unmapped to make room
  // Requests rebuilt from cache (idle, or freed on the request's own stream) because growing
  // would pass the growth budget (ArenaOptions::grow_percent); each is also a stitch when it
  // reused a handle.
  std::uint64_t budget_rebuilds = 0;
  std::uint64_t device_syncs = 0;
  std::uint64_t events_recorded = 0;
  std::uint64_t event_waits = 0;
  std::uint64_t trims = 0;
  std::uint64_t out_of_memory = 0;
  // Wall time spent in slow allocations and trims (creating, mapping, unmapping, releasing,
  // waiting for streams), what the arena's growth and reshaping cost the program's threads.
  std::uint64_t slow_ns = 0;
};

}  // namespace cudefrag::arena
