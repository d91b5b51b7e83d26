// A set of disjoint free extents [start, start + length) of some unit, with best-fit search and
// coalescing of neighbours. The arena keeps its free virtual address space in one, in units of
// the allocation granularity. Not thread-safe (the arena's slow path owns it).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <utility>

namespace cudefrag::arena {

class ExtentSet {
 public:
  // Adds a free extent; it must not overlap one already there. Merges with touching neighbours.
  void insert(std::uint64_t start, std::uint64_t length);
  // Takes `length` units from the start of the smallest extent that holds them.
  std::optional<std::uint64_t> take_best_fit(std::uint64_t length);

  std::uint64_t total() const { return total_; }
  std::uint64_t largest() const { return by_length_.empty() ? 0 : by_length_.rbegin()->first; }
  std::size_t extents() const { return by_start_.size(); }

 private:
  void erase(std::map<std::uint64_t, std::uint64_t>::iterator it);

  std::map<std::uint64_t, std::uint64_t> by_start_;              // start -> length
  std::set<std::pair<std::uint64_t, std::uint64_t>> by_length_;  // (length, start)
  std::uint64_t total_ = 0;
};

}  // namespace cudefrag::arena
