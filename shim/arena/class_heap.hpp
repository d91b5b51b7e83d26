// The slabs of one size class and the slots freed into it: the fast path of small allocations.
//
// One mutex per class, so threads allocating different sizes never meet. Freed slots wait in a
// queue per stream (in free order) until their fence passes: allocations on that stream take the
// newest at once (CUDA's stream order covers it), others take ready slots only. A slab whose
// slots are all ready is "empty": the heap keeps one (so that a size that comes and goes does
// not carve a slab each time) and gives the others' units back to their slab pages; a page left
// with no slab is handed to the arena, which caches its range as a free range for anyone to
// reuse or reclaim.
//
// Not thread-safe: every call needs mutex() held.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "shim/arena/size_classes.hpp"
#include "shim/arena/slab.hpp"
#include "shim/arena/slab_pages.hpp"
#include "shim/arena/stream_fences.hpp"

namespace cudefrag::arena {

class ClassHeap {
 public:
  static constexpr std::size_t kRetainedEmpty = 1;

  ClassHeap(std::uint32_t index, SizeClass size_class, SlabPages& pages);

  std::mutex& mutex() { return mu_; }
  const SizeClass& size_class() const { return class_; }

  // A slot for an allocation on `by` (kAnyStream: ready slots only): the newest slot freed on
  // `by`, else a ready one; nullopt when neither exists.
  std::optional<DevicePtr> take(StreamIndex by, Bytes requested);
  // Frees the slot at p of `slab`, stamping it for `stream`. False (nothing changed) unless p is
  // a live slot of this heap's slab.
  bool release(Slab* slab, DevicePtr p, StreamIndex stream, StreamFences& fences, Bytes* requested);
  // Moves slots whose fence has passed to ready. Empty slabs beyond the one kept are detached;
  // the ranges of pages they leave empty are appended to `surplus` (state still kSlab: the
  // caller re-files them).
  std::size_t promote(const StreamFences& fences, std::vector<Range*>& surplus);
  // A new slab over `carved` units, and a slot of it for the allocation the slab was made for.
  // The slot comes from the new slab even when a slot of the class was freed while the units
  // were found: a slab left with every slot ready in partial_ would be out of reach of reclaim
  // and trim.
  DevicePtr add_slab(const SlabPages::Carved& carved, Bytes requested);
  // Detaches every empty slab kept, appending the ranges of pages left empty to `out`.
  void take_empty(std::vector<Range*>& out);

  bool has_pending() const { return !pending_streams_.empty(); }

 private:
  struct PendingSlot {
    Slab* slab;
    std::uint32_t slot;
    std::uint64_t seq;
  };
  using Queue = std::deque<PendingSlot>;

  Slab* new_slab();
  void make_ready(Slab* s, std::uint32_t slot, std::vector<Range*>& surplus);
  static void list_add(std::vector<Slab*>& list, Slab* s);
  static void list_remove(std::vector<Slab*>& list, Slab* s);
  void retire(Slab* s, std::vector<Range*>& out);

  std::mutex mu_;
  const std::uint32_t index_;
  const SizeClass class_;
  SlabPages& pages_;
  // Every attached slab is in exactly one place: partial_ (0 < ready < capacity), empty_ (every
  // slot ready) or neither (no slot ready).
  std::vector<Slab*> partial_;
  std::vector<Slab*> empty_;
  std::vector<std::unique_ptr<Slab>> slabs_;  // owned; recycled through spare_
  std::vector<Slab*> spare_;
  std::vector<std::unique_ptr<Queue>> pending_;  // by StreamIndex, made on first use
  std::vector<std::uint32_t> pending_streams_;   // streams whose queue is non-empty
};

}  // namespace cudefrag::arena
