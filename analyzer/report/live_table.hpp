// The allocations live at the current point of the replay, by address: the report's only state
// that grows with the program (one entry per live allocation, never per event).
//
// An open-addressing table with linear probing and backward-shift deletion: a trace replays
// millions of insert/erase pairs, and a node-based map would allocate for each one.
// Address 0 is the empty marker; callers never insert it (a zero-size allocation has no memory).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <vector>

namespace cudefrag::analyzer {

struct LiveAllocation {
  std::uint64_t address = 0;
  std::uint64_t bytes = 0;
  std::uint64_t time_ns = 0;
  std::uint64_t serial = 0;  // its device's allocation count when this one was made
  std::uint32_t stack = 0;   // dense stack index (StackTable)
  std::int16_t device = -1;
  bool counted = false;  // selected by the report's device and site filters
};

class LiveTable {
 public:
  LiveTable();

  // The entry for `address` (not 0): a new one with only `address` set, or the existing one
  // (then `existed` is set).
  LiveAllocation& insert(std::uint64_t address, bool& existed);
  // Removes and returns the entry for `address`, if any.
  std::optional<LiveAllocation> take(std::uint64_t address);

  std::size_t size() const { return size_; }

  template <typename F>
  void for_each(F&& f) const {
    for (const LiveAllocation& slot : slots_) {
      if (slot.address != 0) f(slot);
    }
  }

 private:
  std::size_t home(std::uint64_t address) const {
    // Fibonacci hashing: device addresses share their low (alignment) and high (region) bits.
    return static_cast<std::size_t>((address * 0x9E3779B97F4A7C15u) >> 32) & mask_;
  }
  void grow();

  std::vector<LiveAllocation> slots_;
  std::size_t mask_ = 0;
  std::size_t size_ = 0;
};

}  // namespace cudefrag::analyzer
