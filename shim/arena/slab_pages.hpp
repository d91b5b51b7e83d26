// Slab pages: ranges of one page (size_classes.hpp) whose units are carved into the slabs of
// every size class, so that a class in use costs one slab of its own size, not a physical handle.
//
// A page is a Range in state kSlab whose `page` points here. Each unit is free or belongs to one
// slab; free() finds the slab of an address through slab_at() without a lock. A page whose last
// slab leaves is dissolved: release() hands its range back (still mapped, every slot fenced) for
// the arena to cache as a free range, where any request can reuse, join or reclaim it.
//
// Free units are found first fit, pages in address order, so that the pages at the top drain and
// dissolve. Pages whose longest free run is too short are skipped without a scan of their bits.
//
// Thread safety: every method takes the pages' own mutex (lock order: a class heap's mutex, then
// this one, then the large cache's). slab_at() and base() take none.
#pragma once

#include <array>
#include <atomic>
#include <bit>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <vector>

#include "shim/arena/range.hpp"
#include "shim/arena/size_classes.hpp"

namespace cudefrag::arena {

class Slab;

class SlabPage {
 public:
  static constexpr std::uint32_t kUnits = SizeClasses::kUnitsPerPage;

  DevicePtr base() const { return DevicePtr{base_.load(std::memory_order_acquire)}; }
  // The slab holding unit `unit` (nullptr: none, or out of the page). Lock-free: a stale answer
  // is caught by the class heap, which checks that the slab holds the address.
  Slab* slab_at(std::uint64_t unit) const {
    return unit < kUnits ? slabs_[unit].load(std::memory_order_acquire) : nullptr;
  }
  // Points units [first, first + count) at `slab` (nullptr clears). The caller owns those units.
  void assign(std::uint32_t first, std::uint32_t count, Slab* slab);

 private:
  friend class SlabPages;

  Range* range_ = nullptr;  // guarded by the pages' mutex
  std::atomic<std::uintptr_t> base_{0};
  std::uint64_t used_ = 0;          // a bit per unit carved into a slab
  std::uint32_t longest_free_ = 0;  // longest run of free units
  std::uint32_t empty_units_ = 0;   // units of slabs their heap keeps empty
  std::array<std::atomic<Slab*>, kUnits> slabs_{};
};

class SlabPages {
 public:
  // `unit` is a power of two.
  SlabPages(Bytes page, Bytes unit)
      : page_(page), unit_(unit), unit_shift_(std::countr_zero(unit.value)) {}
  SlabPages(const SlabPages&) = delete;
  SlabPages& operator=(const SlabPages&) = delete;

  Bytes page() const { return page_; }
  Bytes unit() const { return unit_; }
  // The unit of `page` holding p (past the page: an index slab_at() refuses).
  std::uint64_t unit_of(const SlabPage& page, DevicePtr p) const {
    return (p - page.base()).value >> unit_shift_;
  }

  struct Carved {
    SlabPage* page;
    DevicePtr base;
    std::uint32_t first;  // unit index
  };
  // `units` consecutive free units of some page; nullopt when no page has them.
  std::optional<Carved> carve(std::uint32_t units);
  // Makes `range` (page() bytes, state kSlab, out of every cache) a page and carves `units` of it.
  Carved add_and_carve(Range* range, std::uint32_t units);
  // Gives back the units of a slab that left them (and its heap's empty list). Returns the page's
  // range when no slab is left in it (the page is dissolved; the caller caches the range), else
  // nullptr.
  Range* release(SlabPage* page, std::uint32_t first, std::uint32_t units);
  // A slab of `units` units entered (true) or left (false) its heap's list of kept empty slabs.
  void set_empty(SlabPage* page, std::uint32_t units, bool empty);

  // Bytes of pages that hold nothing but kept empty slabs: what reclaim and trim free by taking
  // those slabs.
  Bytes reclaimable() const;
  std::size_t page_count() const;

 private:
  bool reclaimable(const SlabPage& p) const;
  void update(SlabPage& p, bool was_reclaimable);

  const Bytes page_;
  const Bytes unit_;
  const int unit_shift_;
  mutable std::mutex mu_;
  std::map<std::uintptr_t, SlabPage*> with_room_;  // by address
  std::deque<SlabPage> storage_;                   // recycled, never freed
  std::vector<SlabPage*> spare_;
  std::size_t pages_ = 0;
  Bytes reclaimable_;
};

}  // namespace cudefrag::arena
