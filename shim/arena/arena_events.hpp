// Events the arena reports to an optional listener (the trace writer): what changed in its
// mappings and why. Raised on the slow path only, under the arena's slow-path mutex, so a
// listener sees them in order; it must be quick and must not call back into the arena. Nothing is
// done, and nothing costs, when no listener is set. Plain allocations and frees are not reported
// here: the hooks trace those.
#pragma once

#include <cstdint>
#include <functional>

#include "shim/arena/arena_stats.hpp"
#include "shim/common/units.hpp"

namespace cudefrag::arena {

// One backend action may raise several events, each a different view of it: a new range mapped
// from new memory is a kPhysicalCreate then a kMap; memory that sat in the cache and goes back
// to the device is a kPhysicalRelease then a kCacheRelease.
enum class ArenaEventKind : std::uint8_t {
  kMap,              // a new range from newly created physical memory
  kStitch,           // a new range that reuses physical memory unmapped from other ranges
  kJoin,             // cached ranges joined or split to serve a request, without a backend call
  kUnmap,            // a cached range or empty slab unmapped (reclaim or trim), or retired
                     // (RangeState::kRetired: its addresses are unmapped once its free completes)
  kPhysicalCreate,   // physical memory created (size: bytes; handles: how many)
  kPhysicalRelease,  // physical memory handed back to the device (size: bytes; handles)
  kCacheRelease,     // of that, memory that was cached (size: bytes); `state` after it
  kDeviceSync,       // a device-wide synchronize to fence parked (cudaFree'd) blocks
  kTrim,             // trim() finished
  kOutOfMemory,      // a request failed; `state` holds the arena's state at that moment
};

struct ArenaEvent {
  ArenaEventKind kind;
  DevicePtr va;           // the range concerned (none for kPhysical*, kCacheRelease, kDeviceSync,
                          // kTrim)
  Bytes size;             // its size (kPhysical*, kCacheRelease: bytes; kOutOfMemory: request)
  std::uint32_t handles;  // physical handles involved
  ArenaStats state;       // filled for kOutOfMemory, kCacheRelease and kTrim only
};

using ArenaListener = std::function<void(const ArenaEvent&)>;

}  // namespace cudefrag::arena
