#include "analyzer/export/interval_set.hpp"

#include <algorithm>

namespace cudefrag::analyzer {

std::vector<AddressRange> IntervalSet::intersect(std::uint64_t begin, std::uint64_t end) const {
  std::vector<AddressRange> out;
  if (begin >= end) return out;
  auto it = ranges_.upper_bound(begin);
  if (it != ranges_.begin()) --it;
  for (; it != ranges_.end() && it->first < end; ++it) {
    const std::uint64_t lo = std::max(begin, it->first);
    const std::uint64_t hi = std::min(end, it->second);
    if (lo < hi) out.push_back({lo, hi});
  }
  return out;
}

std::vector<AddressRange> IntervalSet::add(std::uint64_t begin, std::uint64_t end) {
  std::vector<AddressRange> added;
  if (begin >= end) return added;
  std::uint64_t at = begin;
  for (const AddressRange& have : intersect(begin, end)) {
    if (at < have.begin) added.push_back({at, have.begin});
    at = have.end;
  }
  if (at < end) added.push_back({at, end});
  if (added.empty()) return added;

  // Merge [begin, end) with every range it touches or overlaps.
  std::uint64_t lo = begin;
  std::uint64_t hi = end;
  auto it = ranges_.upper_bound(begin);
  if (it != ranges_.begin()) {
    auto before = std::prev(it);
    if (before->second >= begin) it = before;
  }
  while (it != ranges_.end() && it->first <= end) {
    lo = std::min(lo, it->first);
    hi = std::max(hi, it->second);
    bytes_ -= it->second - it->first;
    it = ranges_.erase(it);
  }
  ranges_[lo] = hi;
  bytes_ += hi - lo;
  return added;
}

std::vector<AddressRange> IntervalSet::remove(std::uint64_t begin, std::uint64_t end) {
  const std::vector<AddressRange> removed = intersect(begin, end);
  for (const AddressRange& piece : removed) {
    auto it = std::prev(ranges_.upper_bound(piece.begin));
    const std::uint64_t lo = it->first;
    const std::uint64_t hi = it->second;
    ranges_.erase(it);
    if (lo < piece.begin) ranges_[lo] = piece.begin;
    if (piece.end < hi) ranges_[piece.end] = hi;
    bytes_ -= piece.size();
  }
  return removed;
}

}  // namespace cudefrag::analyzer
