// Freed large ranges, still mapped, waiting to be reused: the fast path of large allocations.
//
// A cached range is either ready (its free is known complete: any allocation may take it) or
// pending on the stream it was freed on (only allocations on that stream may take it until the
// stream's fence passes). Lookup is best fit by size within a window [min, max], so a reuse
// never wastes more than the caller allows. Ready ranges are also kept in address order, so
// that the slow path can join neighbours, and carry the time they entered the cache, so that
// reclaim unmaps the oldest first.
//
// Not thread-safe: every call needs mutex() held.
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <vector>

#include "shim/arena/range.hpp"
#include "shim/arena/stream_fences.hpp"

namespace cudefrag::arena {

class LargeCache {
 public:
  LargeCache();

  std::mutex& mutex() { return mu_; }

  // The best-fitting range with min <= size <= max that `by` may reuse (kAnyStream: ready
  // ones only), removed from the cache; nullptr if none.
  Range* take(Bytes min, Bytes max, StreamIndex by);
  // Adds a freed range; sets its state and tag. The tag must have been taken under mutex(), so
  // that a fence that covers it cannot have been seen by an earlier promote().
  void put(Range* r, FenceTag tag);
  // Takes a cached range out of the cache (its state is left to the caller).
  void remove(Range* r);
  // Moves ranges whose fence has passed to the ready set; returns how many moved.
  std::size_t promote(const StreamFences& fences);

  const std::map<std::uintptr_t, Range*>& ready_by_address() const { return ready_by_address_; }
  std::vector<Range*> ready_oldest_first() const;
  // Ranges pending on `stream` (its frees not yet known complete), oldest first; none for
  // kAnyStream and kParked.
  std::vector<Range*> pending_oldest_first(StreamIndex stream) const;

  Bytes cached_bytes() const { return cached_; }
  Bytes ready_bytes() const { return ready_; }
  std::size_t cached_count() const { return count_; }

 private:
  using BySize = std::multimap<std::uint64_t, Range*>;

  void insert(Range* r);  // by r->tag

  std::mutex mu_;
  BySize ready_by_size_;
  std::map<std::uintptr_t, Range*> ready_by_address_;
  std::vector<BySize> pending_;                 // indexed by StreamIndex
  std::vector<std::uint64_t> promoted_upto_;    // fence value at the last promote, per stream
  std::vector<std::uint32_t> pending_streams_;  // streams whose pending_ may be non-empty
  std::vector<bool> listed_;                    // by StreamIndex: in pending_streams_
  std::uint64_t clock_ = 0;
  Bytes cached_;
  Bytes ready_;
  std::size_t count_ = 0;
};

}  // namespace cudefrag::arena
