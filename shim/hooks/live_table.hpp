// Size and device of each live allocation, by address: what a free needs to take the bytes off
// the right device's live figure. Passthrough bookkeeping; in arena mode the arena owns its own.
//
// Sharded by address, one lock per shard, so threads allocating at once rarely meet; each shard
// is an open-addressing table, so inserting and erasing allocate nothing (except when a shard
// grows), which keeps the cudaMallocAsync/cudaFreeAsync hot path short.
#pragma once

#include <array>
#include <cstdint>
#include <mutex>
#include <optional>
#include <vector>

#include "shim/common/units.hpp"

namespace cudefrag::hooks {

struct LiveEntry {
  Bytes size;
  DeviceOrdinal device;
};

class LiveTable {
 public:
  // Records `key` (non-zero), replacing any entry it had. False when memory for the table ran
  // out; the entry is then simply not recorded.
  bool insert(std::uint64_t key, LiveEntry entry) noexcept;
  // Removes `key` and returns its entry, if it had one.
  std::optional<LiveEntry> erase(std::uint64_t key) noexcept;

 private:
  struct Slot {
    std::uint64_t key = 0;  // 0: empty
    LiveEntry entry;
  };
  struct alignas(64) Shard {
    std::mutex mutex;
    std::vector<Slot> slots;  // power-of-two size, at most half full
    std::size_t used = 0;
  };
  static constexpr std::size_t kShards = 64;

  static std::uint64_t mix(std::uint64_t key) noexcept;
  Shard& shard(std::uint64_t key) noexcept;
  static bool grow(Shard& s) noexcept;

  std::array<Shard, kShards> shards_;
};

}  // namespace cudefrag::hooks
