// A contiguous virtual range of the arena and the physical handles mapped behind it.
//
// The CUDA driver maps a handle only whole (cuMemMap's offset must be 0 and its size the
// handle's; measured: CUDA_ERROR_NOT_SUPPORTED otherwise) and unmaps only whole mappings, so a
// physical handle is the arena's indivisible unit of remapping: a range is a run of whole handles
// ("pieces"), it can be split only between pieces, and ranges that touch can be joined.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <vector>

#include "shim/arena/fence_tag.hpp"
#include "shim/common/units.hpp"
#include "shim/vmm/backend.hpp"

namespace cudefrag::arena {

struct Piece {
  vmm::PhysHandle handle;
  Bytes size;
};

class SlabPage;

enum class RangeState : std::uint8_t {
  kSpare,   // not in use (a recycled Range object)
  kLive,    // one large allocation
  kCached,  // freed, still mapped, in the large cache
  kSlab,    // a slab page: units carved into slabs of small slots (slab_pages.hpp)
  // Freed on a stream, its free not yet known complete, and its handles already moved behind a
  // new range for an allocation on that same stream (CUDA's stream order puts the new user after
  // the old one). Owns no pieces; its addresses stay mapped until `tag` is fenced, so that work
  // still queued through them finds memory there.
  kRetired,
};

struct Range {
  DevicePtr base;
  Bytes size;                 // sum of the pieces
  std::vector<Piece> pieces;  // in address order
  // Guarded by the large cache's mutex.
  RangeState state = RangeState::kSpare;
  Bytes requested;              // kLive: what the program asked for
  FenceTag tag;                 // kCached: when it may be reused; kRetired: when to unmap
  std::uint64_t cached_at = 0;  // kCached: clock value when it entered the cache (oldest go first)
  std::multimap<std::uint64_t, Range*>::iterator by_size;  // kCached
  std::map<std::uintptr_t, Range*>::iterator by_address;   // kCached and ready
  // The slab page this range is (kSlab); changed under the slab pages' mutex.
  std::atomic<SlabPage*> page{nullptr};
};

// Finds the Range holding an address in one lookup per level (granule -> Range*), without a lock,
// so that free() needs no arena-wide lock. Entries change only on the slow path.
class RangeMap {
 public:
  RangeMap(DevicePtr base, Bytes size, Bytes granularity);
  ~RangeMap();
  RangeMap(const RangeMap&) = delete;
  RangeMap& operator=(const RangeMap&) = delete;

  Range* find(DevicePtr p) const {
    if (p < base_ || p - base_ >= size_) return nullptr;
    const std::uint64_t g = (p - base_) / granularity_;
    const Leaf* leaf = leaves_[g / kLeafEntries].load(std::memory_order_acquire);
    if (leaf == nullptr) return nullptr;
    return leaf->entries[g % kLeafEntries].load(std::memory_order_acquire);
  }
  // Points every granule of [base, base + size) at `range` (nullptr clears). Slow path only.
  void assign(DevicePtr base, Bytes size, Range* range);

 private:
  static constexpr std::uint64_t kLeafEntries = 4096;
  struct Leaf {
    std::atomic<Range*> entries[kLeafEntries] = {};
  };

  DevicePtr base_;
  Bytes size_;
  Bytes granularity_;
  std::unique_ptr<std::atomic<Leaf*>[]> leaves_;
  std::uint64_t leaf_count_ = 0;
};

// Range objects are recycled, never freed until the arena goes: a stale lookup from a bad free()
// racing with the slow path then reads a valid object and is refused, instead of crashing.
// Slow path only.
class RangePool {
 public:
  Range* get();
  void put(Range* r);
  template <class F>
  void for_each_in_use(F&& f) {
    for (Range& r : storage_) {
      if (r.state != RangeState::kSpare) f(r);
    }
  }

 private:
  std::deque<Range> storage_;
  std::vector<Range*> spare_;
};

}  // namespace cudefrag::arena
