// A slab: a run of units of a slab page (slab_pages.hpp) cut into equal slots of one size class.
//
// Each slot is live (handed out), pending (freed, waiting for its fence, listed in its class
// heap's pending queue) or ready (free for anyone). The slab tracks live and ready slots in two
// bitmaps; a free is refused unless the slot is live, which catches double and stray frees.
// Not thread-safe: the owning ClassHeap's mutex guards it.
#pragma once

#include <cstdint>
#include <optional>
#include <vector>

#include "shim/common/units.hpp"

namespace cudefrag::arena {

class SlabPage;

class Slab {
 public:
  explicit Slab(std::uint32_t class_index) : class_index_(class_index) {}

  // Cuts units [first, first + units) of `page`, at `base`, into slots of `slot` bytes, all ready.
  void attach(SlabPage* page, DevicePtr base, std::uint32_t first, std::uint32_t units, Bytes unit,
              Bytes slot);
  void detach();

  std::uint32_t class_index() const { return class_index_; }
  SlabPage* page() const { return page_; }  // nullptr: detached (a recycled object)
  std::uint32_t first_unit() const { return first_; }
  std::uint32_t units() const { return units_; }
  std::uint32_t capacity() const { return capacity_; }
  std::uint32_t ready() const { return ready_; }
  std::uint32_t live() const { return live_; }
  bool all_ready() const { return ready_ == capacity_; }

  DevicePtr address(std::uint32_t slot) const { return base_ + slot_ * slot; }
  // The slot starting at p, if p is a slot boundary of this slab.
  std::optional<std::uint32_t> slot_at(DevicePtr p) const;
  // The slot holding p (anywhere inside it), if p is in this slab.
  std::optional<std::uint32_t> slot_holding(DevicePtr p) const;
  bool is_live(std::uint32_t slot) const { return test(live_bits_, slot); }
  Bytes requested(std::uint32_t slot) const { return Bytes{requested_[slot]}; }

  // A ready slot, made live; nullopt if none.
  std::optional<std::uint32_t> take_ready(Bytes requested);
  // A pending slot of this slab handed out again (same-stream reuse).
  void revive(std::uint32_t slot, Bytes requested);
  // A live slot freed: it becomes pending.
  void release(std::uint32_t slot);
  // A pending slot whose fence has passed: it becomes ready.
  void make_ready(std::uint32_t slot);

  // Position in the heap's partial or empty list (-1: in neither).
  std::int64_t list_pos = -1;

 private:
  static bool test(const std::vector<std::uint64_t>& bits, std::uint32_t i) {
    return (bits[i / 64] >> (i % 64)) & 1u;
  }
  static void set(std::vector<std::uint64_t>& bits, std::uint32_t i) {
    bits[i / 64] |= std::uint64_t{1} << (i % 64);
  }
  static void clear(std::vector<std::uint64_t>& bits, std::uint32_t i) {
    bits[i / 64] &= ~(std::uint64_t{1} << (i % 64));
  }

  const std::uint32_t class_index_;
  SlabPage* page_ = nullptr;
  DevicePtr base_;
  std::uint32_t first_ = 0;
  std::uint32_t units_ = 0;
  Bytes slot_;
  std::uint32_t capacity_ = 0;
  std::uint32_t ready_ = 0;
  std::uint32_t live_ = 0;
  std::uint32_t hint_ = 0;  // first bitmap word that may hold a ready slot
  std::vector<std::uint64_t> ready_bits_;
  std::vector<std::uint64_t> live_bits_;
  std::vector<std::uint32_t> requested_;
};

}  // namespace cudefrag::arena
