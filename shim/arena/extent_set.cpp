#include "shim/arena/extent_set.hpp"

#include <iterator>

namespace cudefrag::arena {

void ExtentSet::erase(std::map<std::uint64_t, std::uint64_t>::iterator it) {
  by_length_.erase({it->second, it->first});
  total_ -= it->second;
  by_start_.erase(it);
}

void ExtentSet::insert(std::uint64_t start, std::uint64_t length) {
  if (length == 0) return;
  auto next = by_start_.lower_bound(start);
  if (next != by_start_.begin()) {
    auto prev = std::prev(next);
    if (prev->first + prev->second == start) {
      start = prev->first;
      length += prev->second;
      erase(prev);
    }
  }
  if (next != by_start_.end() && start + length == next->first) {
    length += next->second;
    erase(next);
  }
  by_start_.emplace(start, length);
  by_length_.emplace(length, start);
  total_ += length;
}

std::optional<std::uint64_t> ExtentSet::take_best_fit(std::uint64_t length) {
  if (length == 0) return std::nullopt;
  auto fit = by_length_.lower_bound({length, 0});
  if (fit == by_length_.end()) return std::nullopt;
  const auto [have, start] = *fit;
  erase(by_start_.find(start));
  if (have > length) insert(start + length, have - length);
  return start;
}

}  // namespace cudefrag::arena
