// Per-entry-point counters and live bytes per device, for allocations the hooks saw succeed.
//
// Counters are lock-free atomics in a stats::StatsBlock: the launcher's shared file when there is
// one, a block inside the process otherwise. Live bytes need the size of each live allocation at
// free time, kept in a table sharded by address (one lock per shard, no global lock); in arena mode
// the arena will own this bookkeeping (live_table.hpp).
#pragma once

#include <cstdint>

#include "shim/common/units.hpp"
#include "shim/hooks/hook_table.hpp"
#include "shim/hooks/stats_file.hpp"

namespace cudefrag::hooks {

// Directs the counters to `block` (called once, at initialisation, before any counting).
void attach_counters(stats::StatsBlock* block) noexcept;
stats::StatsBlock& counters_block() noexcept;

// A call of `id` that allocates nothing.
void count_call(HookId id, bool ok) noexcept;

// An allocation request of `requested` bytes; when `ok`, `ptr` now holds `granted` bytes on
// `device`.
void count_alloc(HookId id, Bytes requested, bool ok, DevicePtr ptr, Bytes granted,
                 DeviceOrdinal device) noexcept;

// Frees go in two steps so that another thread that receives the same address from the driver
// right after the real free cannot have its entry removed by ours: forget the allocation before
// the real free, and restore it if the real free fails.
struct Forgotten {
  DevicePtr ptr;
  Bytes size;
  DeviceOrdinal device;
  bool found = false;
};
Forgotten forget_allocation(DevicePtr ptr) noexcept;
void count_free(HookId id, bool ok, const Forgotten& f) noexcept;

// Physical allocations made by the program itself through cuMemCreate / cuMemRelease, keyed by
// handle (they count towards the device's live bytes).
void count_create(HookId id, Bytes size, bool ok, std::uint64_t handle,
                  DeviceOrdinal device) noexcept;
Forgotten forget_handle(std::uint64_t handle) noexcept;
void count_release(HookId id, bool ok, const Forgotten& f) noexcept;

// Reading, for tests and diagnostics.
struct EntryCount {
  std::uint64_t calls = 0;
  std::uint64_t bytes = 0;
  std::uint64_t failures = 0;
};
EntryCount entry_count(HookId id) noexcept;
struct DeviceCount {
  Bytes live;
  Bytes peak;
};
DeviceCount device_count(DeviceOrdinal device) noexcept;

}  // namespace cudefrag::hooks
