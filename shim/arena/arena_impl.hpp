// Internals of Arena (arena.hpp), shared by its fast paths (arena.cpp) and slow path
// (arena_slow.cpp). Not part of the interface.
//
// Locks, always taken in this order: slow_mu -> a ClassHeap's mutex -> the SlabPages' mutex ->
// the LargeCache's mutex. The fast paths take a heap mutex or the large cache's mutex (and the
// pages' mutex when a slab is carved or given back), never slow_mu. Backend calls that map,
// unmap, create or release happen under slow_mu only.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <vector>

#include "shim/arena/arena.hpp"
#include "shim/arena/class_heap.hpp"
#include "shim/arena/extent_set.hpp"
#include "shim/arena/large_cache.hpp"
#include "shim/arena/range.hpp"
#include "shim/arena/size_classes.hpp"
#include "shim/arena/slab_pages.hpp"
#include "shim/arena/stream_fences.hpp"

namespace cudefrag::arena {

struct Arena::Impl {
  Impl(std::unique_ptr<vmm::Backend> backend, const ArenaOptions& options, Bytes limit,
       DevicePtr va_base, Bytes va_size);

  // --- fast paths (arena.cpp) ---
  AllocResult allocate(Bytes size, vmm::StreamRef stream, AllocKind kind);
  FreeResult free(DevicePtr p, vmm::StreamRef stream, FreeKind kind);
  std::optional<DevicePtr> take_small(ClassHeap& heap, StreamIndex by, Bytes size);
  // A new slab for `heap` from free units of the slab pages (no backend call), and a slot of it.
  std::optional<DevicePtr> slab_from_pages(ClassHeap& heap, Bytes size);
  Range* take_large(Bytes size, Bytes max, StreamIndex by, Bytes requested);
  void grant(Bytes granted, Bytes requested);
  // Files ranges of slabs that emptied into the large cache (caller holds no large mutex).
  void file_surplus(std::vector<Range*>& surplus);
  Bytes slack(Bytes size) const;
  // What the limit still allows the arena to create: limit - physical, at least 0.
  Bytes under_limit() const;
  // What may still be created before physical memory passes the growth budget
  // (ArenaOptions::grow_percent) for a request of `min`; nullopt when there is no budget.
  std::optional<Bytes> under_growth_budget(Bytes min) const;

  // --- slow path (arena_slow.cpp); all need slow_mu held ---
  AllocResult allocate_small_slow(std::uint32_t class_index, Bytes size, StreamIndex by);
  AllocResult allocate_large_slow(Bytes size, StreamIndex by);
  // A range of min..max bytes for `by` (kAnyStream: safe for any stream), in `state`; nullptr
  // and *status on failure.
  Range* obtain(Bytes min, Bytes max, StreamIndex by, RangeState state, Bytes requested,
                vmm::Status* status);
  Range* join_cached(Bytes min, Bytes max, RangeState state, Bytes requested);
  // Clears `tight` when the device and the limit leave room again (one mem_info call).
  void loosen_if_roomy();
  // Unmaps cached ranges (oldest first) and empty slabs until `need` bytes of physical memory
  // are free to reuse; their handles are appended to `freed`. With `same_stream` a real stream,
  // ranges still pending on that stream come next, retired instead of unmapped (retire_range):
  // only for a range that will be used on that stream. False if the cache cannot give that
  // much (nothing changed) or an unmap failed (`freed` holds what was taken).
  bool reclaim(Bytes need, std::vector<Piece>& freed, StreamIndex same_stream = kAnyStream);
  // reclaim() what `headroom` (memory that may still be created) does not cover of `min`, then
  // build() the range from it; nullptr with *status when either fails, *built telling whether
  // build() ran (and so whether cached memory may have been given back to the driver).
  Range* reclaim_and_build(Bytes min, Bytes max, Bytes headroom, RangeState state, Bytes requested,
                           vmm::Status* status, bool* built, StreamIndex same_stream = kAnyStream);
  // Moves the handles of a range pending on a stream to `freed` and leaves its addresses mapped
  // (kRetired) until its fence passes; they no longer count as mapped (the memory behind them is
  // counted where it is used now). Out of every cache already; never fails.
  void retire_range(Range* r, std::vector<Piece>& freed);
  // Unmaps the retired ranges whose fence has passed and gives their addresses back (one that
  // the backend refuses to unmap stays retired, tried again at the next slow path).
  void unmap_retired();
  // Maps a new range of `size` bytes from `reuse` (handles unmapped elsewhere; those not needed
  // are released) and newly created memory.
  Range* build(Bytes size, Bytes max, std::vector<Piece> reuse, RangeState state, Bytes requested,
               vmm::Status* status);
  // Creates `size` bytes of physical memory, in as few handles as the device gives, appended to
  // `out` (also those created before a failure).
  vmm::Status create_pieces(Bytes size, std::vector<Piece>& out);
  vmm::Status create_new_pieces(Bytes size, std::vector<Piece>& out);
  // Gives `pieces` back to the device; the first `cached` of them held memory of the cache
  // (ranges or empty slabs unmapped by reclaim or trim), the others memory just created. A
  // piece a retired range still maps goes to that range instead (see `aliased`).
  void release_pieces(std::span<const Piece> pieces, std::size_t cached);
  // Unmaps a range that is out of every cache, appends its handles to `freed` and recycles it.
  // False when the backend refuses (the range is left as it was).
  bool unmap_range(Range* r, std::vector<Piece>& freed);
  void promote_everything();
  void fence_everything();
  vmm::Status trim(Bytes keep);
  AllocResult failure(Bytes size, ArenaError error, vmm::Status status);
  void emit(ArenaEventKind kind, DevicePtr va, Bytes size, std::size_t handles,
            const ArenaStats* state = nullptr);
  // Hands a range out of the caches to its user, under the large cache's mutex.
  void hand_out(Range* r, RangeState state, Bytes requested);

  ArenaStats stats() const;
  Bytes reclaimable_bytes() const;  // takes the slab pages' and the large cache's mutexes
  std::optional<AllocationRange> allocation_range(DevicePtr inside) const;

  std::unique_ptr<vmm::Backend> backend;  // first: outlives everything that calls it
  const ArenaOptions options;
  const Bytes gran;
  const Bytes limit;
  const DevicePtr va_base;
  const Bytes va_size;
  std::vector<DeviceOrdinal> access;  // devices given access to every mapping

  SizeClasses classes;
  SlabPages pages;
  std::vector<std::unique_ptr<ClassHeap>> heaps;
  StreamFences fences;
  mutable LargeCache large;
  RangeMap map;

  // Memory is short (ArenaOptions::tight_slack_shift): set by the slow path when it has to
  // reclaim, cleared by loosen_if_roomy(). Read without a lock by the fast path:
  // a reuse decided a moment before the flag changes wastes at most the old slack.
  std::atomic<bool> tight{false};

  mutable std::mutex slow_mu;  // guards everything below, and every mapping change
  RangePool pool;
  ExtentSet va_free;            // in granules, from va_base
  std::vector<Range*> retired;  // kRetired ranges, still mapped
  // Handle -> the retired range still mapping it. A handle released while a retired range maps
  // it is handed to that range instead, counted as mapped (cached) and physical until the range
  // is unmapped and the handle released: the device keeps the memory until then.
  std::map<std::uint64_t, Range*> aliased;
  ArenaListener listener;

  struct Counters {
    std::atomic<std::uint64_t> live{0};
    std::atomic<std::uint64_t> requested{0};
    std::atomic<std::uint64_t> peak_live{0};
    std::atomic<std::uint64_t> live_allocations{0};
    std::atomic<std::uint64_t> allocations{0};
    std::atomic<std::uint64_t> frees{0};
    // Changed under slow_mu only.
    std::atomic<std::uint64_t> mapped{0};
    std::atomic<std::uint64_t> physical{0};
    std::atomic<std::uint64_t> peak_mapped{0};
    std::atomic<std::uint64_t> peak_physical{0};
    std::atomic<std::uint64_t> slow_allocations{0};
    std::atomic<std::uint64_t> handles_created{0};
    std::atomic<std::uint64_t> handles_released{0};
    std::atomic<std::uint64_t> stitches{0};
    std::atomic<std::uint64_t> remaps{0};
    std::atomic<std::uint64_t> joins{0};
    std::atomic<std::uint64_t> reclaims{0};
    std::atomic<std::uint64_t> budget_rebuilds{0};
    std::atomic<std::uint64_t> trims{0};
    std::atomic<std::uint64_t> out_of_memory{0};
    // Time inside the slow paths (allocation and trim), backend calls and waits included.
    std::atomic<std::uint64_t> slow_ns{0};
  };
  mutable Counters c;
};

}  // namespace cudefrag::arena
