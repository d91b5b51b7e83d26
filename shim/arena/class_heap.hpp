// The slabs of one size class and the slots freed into it: the fast path of small allocations.
//
// One mutex per class, so threads allocating different sizes never meet. Freed slots wait in a
// queue per stream (in free order) until their fence passes: allocations on that stream take the
// newest at once (CUDA's stream order covers it), others take ready slots only. A slab whose
// slots are all ready is "empty": the heap keeps one (so that a size that comes and goes does
// not remap each time) and hands the others back to the arena, which caches their ranges as
// large free ranges for anyone to reuse or reclaim.
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
#include "shim/arena/stream_fences.hpp"

namespace cudefrag::arena {

class ClassHeap {
 public:
  static constexpr std::size_t kRetainedEmpty = 1;

  ClassHeap(std::uint32_t index, SizeClass size_class);

  std::mutex& mutex() { return mu_; }
  const SizeClass& size_class() const { return class_; }

  // A slot for an allocation on `by` (kAnyStream: ready slots only): the newest slot freed on
  // `by`, else a ready one; nullopt when neither exists.
  std::optional<DevicePtr> take(StreamIndex by, Bytes requested);
  // Frees the slot at p of `slab`, stamping it for `stream`. False (nothing changed) unless p is
  // a live slot of this heap's slab.
  bool release(Slab* slab, DevicePtr p, StreamIndex stream, StreamFences& fences, Bytes* requested);
  // Moves slots whose fence has passed to ready. Empty slabs beyond the one kept are detached;
  // their ranges are appended to `surplus` (state still kSlab: the caller re-files them).
  std::size_t promote(const StreamFences& fences, std::vector<Range*>& surplus);
  // A new slab over `range`.
  void add_slab(Range* range);
  // Detaches every empty slab kept, appending their ranges to `out`.
  void take_empty(std::vector<Range*>& out);

  bool has_pending() const { return !pending_streams_.empty(); }
  Bytes empty_bytes() const;

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
  std::vector<Slab*> partial_;                // some ready slots
  std::vector<Slab*> empty_;                  // every slot ready
  std::vector<std::unique_ptr<Slab>> slabs_;  // owned; recycled through spare_
  std::vector<Slab*> spare_;
  std::vector<std::unique_ptr<Queue>> pending_;  // by StreamIndex, made on first use
  std::vector<std::uint32_t> pending_streams_;   // streams whose queue is non-empty
};

}  // namespace cudefrag::arena
