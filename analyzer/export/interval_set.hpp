// A set of address ranges [begin, end), kept coalesced: the mapped virtual memory of one device
// as the export sees it (memory_model.hpp). add() and remove() return the pieces that actually
// changed, so that a caller can report exactly what was mapped or unmapped.
#pragma once

#include <cstdint>
#include <map>
#include <vector>

namespace cudefrag::analyzer {

struct AddressRange {
  std::uint64_t begin = 0;
  std::uint64_t end = 0;
  std::uint64_t size() const { return end - begin; }
};

class IntervalSet {
 public:
  // Adds [begin, end); returns the pieces that were not in the set before, lowest first.
  std::vector<AddressRange> add(std::uint64_t begin, std::uint64_t end);
  // Removes [begin, end); returns the pieces that were in the set, lowest first.
  std::vector<AddressRange> remove(std::uint64_t begin, std::uint64_t end);
  // The pieces of [begin, end) that are in the set, lowest first.
  std::vector<AddressRange> intersect(std::uint64_t begin, std::uint64_t end) const;

  std::uint64_t bytes() const { return bytes_; }
  bool empty() const { return ranges_.empty(); }
  // begin -> end of each coalesced range, in address order.
  const std::map<std::uint64_t, std::uint64_t>& ranges() const { return ranges_; }

 private:
  std::map<std::uint64_t, std::uint64_t> ranges_;
  std::uint64_t bytes_ = 0;
};

}  // namespace cudefrag::analyzer
