// The arena's figures as the hooks report them, and the peak resets the default pool's
// attributes allow (arena.hpp).
#include <algorithm>

#include "shim/arena/arena.hpp"
#include "shim/arena/arena_impl.hpp"

namespace cudefrag::arena {

ArenaFigures Arena::figures() const {
  const Impl& a = *impl_;
  ArenaFigures f;
  f.live = Bytes{a.c.live.load(std::memory_order_relaxed)};
  f.physical = Bytes{a.c.physical.load(std::memory_order_relaxed)};
  f.reclaimable = a.reclaimable_bytes();
  f.peak_live = Bytes{a.c.peak_live.load(std::memory_order_relaxed)};
  f.peak_physical = Bytes{a.c.peak_physical.load(std::memory_order_relaxed)};
  f.stitches = a.c.stitches.load(std::memory_order_relaxed);
  f.slow_allocations = a.c.slow_allocations.load(std::memory_order_relaxed);
  f.slow_ns = a.c.slow_ns.load(std::memory_order_relaxed);
  return f;
}

void Arena::reset_peak_live() {
  Impl& a = *impl_;
  // Racing allocations raise the peak with compare-exchange; whichever lands last wins, and
  // both values are at least what was live at the reset.
  a.c.peak_live.store(a.c.live.load(std::memory_order_relaxed), std::memory_order_relaxed);
}

void Arena::reset_peak_physical() {
  Impl& a = *impl_;
  // The physical figure and its peak change under slow_mu only.
  std::lock_guard lock(a.slow_mu);
  a.c.peak_physical.store(a.c.physical.load(std::memory_order_relaxed), std::memory_order_relaxed);
}

}  // namespace cudefrag::arena
