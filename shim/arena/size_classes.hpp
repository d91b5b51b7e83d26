// Size classes for small requests, packed into slabs (runs of equal slots).
//
// Classes: multiples of 256 B up to 2 KiB, then 8 classes per doubling (2^k + j * 2^(k-3),
// j = 1..8). Every slot is a multiple of 256 B, so a slab at a unit boundary keeps cudaMalloc's
// 256-byte alignment. Internal waste (slot - request) is < 256 B up to 2 KiB and < 1/9 (11.1%)
// of the slot above 2 KiB: the step in an octave is 2^(k-3) and the smallest slot it can round
// to is 2^k + 2^(k-3).
//
// Slabs are carved from slab pages shared by every class (slab_pages.hpp): a page is one physical
// handle of page() bytes (the granularity, at least 2 MiB, and at least the largest slot rounded
// up to a power of two), cut into kUnitsPerPage units. A class's slab is the smallest run of
// units (at least one slot) whose tail (bytes after the last whole slot) is at most 1/16 of the
// slab; when none is, the run with the smallest tail fraction. So a slab's size follows its
// class: it holds at most unit / 256 B slots (128 with 2 MiB pages) and at least one.
#pragma once

#include <cstdint>
#include <vector>

#include "shim/common/units.hpp"

namespace cudefrag::arena {

struct SizeClass {
  Bytes slot;
  Bytes slab;  // units * unit()
  std::uint32_t slots_per_slab = 0;
  std::uint32_t units = 0;  // of a slab page
};

class SizeClasses {
 public:
  static constexpr Bytes kMinSlot{256};
  // Largest threshold the class scheme supports (slabs beyond that would pin too much).
  static constexpr Bytes kMaxThreshold = MiB(16);
  // Units per slab page (one bit each in a 64-bit word).
  static constexpr std::uint32_t kUnitsPerPage = 64;
  // Smallest slab page: the H200's granularity. Pages are physical handles, and mapping costs
  // ~30 us per handle: smaller pages would multiply handles for the same memory.
  static constexpr Bytes kMinPage = MiB(2);

  // Classes for requests of 1..threshold bytes (threshold rounded up to a class; 0: none).
  SizeClasses(Bytes threshold, Bytes granularity);

  // Index of the smallest class holding `request` (1 <= request <= threshold()).
  static std::uint32_t index_for(Bytes request);
  // Slot size of class `index`, following the scheme above (no table needed).
  static Bytes slot_of(std::uint32_t index);

  Bytes threshold() const { return threshold_; }
  Bytes page() const { return page_; }
  Bytes unit() const { return unit_; }
  std::uint32_t count() const { return static_cast<std::uint32_t>(classes_.size()); }
  const SizeClass& operator[](std::uint32_t index) const { return classes_[index]; }

 private:
  Bytes threshold_;
  Bytes page_;
  Bytes unit_;
  std::vector<SizeClass> classes_;
};

}  // namespace cudefrag::arena
