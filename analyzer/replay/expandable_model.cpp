#include "analyzer/replay/expandable_model.hpp"

#include <algorithm>
#include <vector>

namespace cudefrag::analyzer::replay {

namespace {

constexpr Bytes kMinBlockSize{512};
constexpr Bytes kSmallSize = MiB(1);

std::uint64_t align_down(std::uint64_t v, std::uint64_t unit) {
  return v - v % unit;
}
std::uint64_t align_up(std::uint64_t v, std::uint64_t unit) {
  return align_down(v + unit - 1, unit);
}

}  // namespace

ExpandableModel::ExpandableModel(Bytes cap) : cap_(cap) {
  // PyTorch reserves 1 1/8 of the card's memory per segment; a multiple of both page sizes.
  const std::uint64_t va = cap.value / 8 * 9;
  segment_va_ = Bytes{align_up(std::max<std::uint64_t>(va, MiB(20).value), MiB(20).value)};
}

std::uint64_t ExpandableModel::expandable_size(std::uint64_t address) const {
  const Block& b = blocks_.at(address);
  if (b.next != 0 && !blocks_.at(b.next).mapped) return b.size + blocks_.at(b.next).size;
  return b.size;
}

bool ExpandableModel::take_free_block(bool small, std::uint64_t stream, Bytes size,
                                      std::uint64_t* address) {
  auto it = free_.lower_bound(FreeKey{small, stream, size.value, 0});
  const auto same_pool = [&](auto i) {
    return i != free_.end() && std::get<0>(*i) == small && std::get<1>(*i) == stream;
  };
  if (!same_pool(it)) return false;
  // get_free_block(): a block that could grow into unmapped space counts as that large, so a
  // larger block that cannot grow is taken before the growable tail.
  for (auto next = std::next(it);
       same_pool(next) && expandable_size(std::get<3>(*next)) < expandable_size(std::get<3>(*it));
       ++next) {
    it = next;
  }
  *address = std::get<3>(*it);
  free_.erase(it);
  return true;
}

void ExpandableModel::add_unmapped(std::uint64_t address) {
  const Block& b = blocks_.at(address);
  unmapped_[PoolKey{b.small, b.stream}].insert(address);
}

std::uint64_t ExpandableModel::split(std::uint64_t address, std::uint64_t offset) {
  Block& b = blocks_.at(address);
  const std::uint64_t second = address + offset;
  Block rest{b.size - offset, b.stream, address, b.next, b.small, false, b.mapped};
  if (b.next != 0) blocks_.at(b.next).prev = second;
  b.next = second;
  b.size = offset;
  blocks_.emplace(second, rest);
  return second;
}

std::uint64_t ExpandableModel::merge(std::uint64_t address, std::uint64_t other) {
  if (other == 0) return address;
  const Block& o = blocks_.at(other);
  const Block& b = blocks_.at(address);
  if (o.allocated || b.allocated || o.mapped != b.mapped) return address;
  if (o.mapped) {
    free_.erase(free_key(other));
  } else {
    unmapped_[PoolKey{o.small, o.stream}].erase(other);
  }
  const std::uint64_t low = std::min(address, other);
  const std::uint64_t high = std::max(address, other);
  const Block h = blocks_.at(high);
  Block& l = blocks_.at(low);
  l.size += h.size;
  l.next = h.next;
  if (h.next != 0) blocks_.at(h.next).prev = low;
  blocks_.erase(high);
  return low;
}

std::uint64_t ExpandableModel::find_candidate(bool small, std::uint64_t stream, Bytes size) {
  for (const std::uint64_t u : unmapped_[PoolKey{small, stream}]) {
    std::uint64_t c = u;
    const std::uint64_t prev = blocks_.at(u).prev;
    if (allocatable(prev)) c = prev;
    std::uint64_t bytes = 0;
    for (std::uint64_t b = c; bytes < size.value && allocatable(b); b = blocks_.at(b).next) {
      bytes += blocks_.at(b).size;
    }
    if (bytes >= size.value) return c;
  }
  // A new segment: one unmapped block as long as the reserved address range.
  const std::uint64_t base = next_address_;
  next_address_ += segment_va_.value;
  blocks_.emplace(base, Block{segment_va_.value, stream, 0, 0, small, false, false});
  add_unmapped(base);
  return base;
}

std::uint64_t ExpandableModel::map_block(std::uint64_t address, Bytes size) {
  Block& b = blocks_.at(address);
  const std::uint64_t mapped = std::min(align_up(size.value, page_size(b.small).value), b.size);
  if (mapped > cap_.value || reserved_.value > cap_.value - mapped) return 0;
  unmapped_[PoolKey{b.small, b.stream}].erase(address);
  if (mapped < b.size) add_unmapped(split(address, mapped));
  blocks_.at(address).mapped = true;
  ++maps_;
  reserved_ += Bytes{mapped};
  peak_ = std::max(peak_, reserved_);
  std::uint64_t result = merge(address, blocks_.at(address).prev);
  result = merge(result, blocks_.at(result).next);
  free_.insert(free_key(result));
  return result;
}

bool ExpandableModel::grow(bool small, std::uint64_t stream, Bytes size, std::uint64_t* address) {
  std::uint64_t c = find_candidate(small, stream, size);
  if (!blocks_.at(c).mapped) {
    c = map_block(c, Bytes{std::min(blocks_.at(c).size, size.value)});
    if (c == 0) return false;
  }
  while (blocks_.at(c).size < size.value) {
    const std::uint64_t next = blocks_.at(c).next;
    const std::uint64_t remaining = size.value - blocks_.at(c).size;
    c = map_block(next, Bytes{std::min(remaining, blocks_.at(next).size)});
    if (c == 0) return false;  // pages mapped so far stay mapped, free, as in PyTorch
  }
  free_.erase(free_key(c));
  *address = c;
  return true;
}

void ExpandableModel::unmap_free_pages() {
  std::vector<std::uint64_t> candidates;
  candidates.reserve(free_.size());
  for (const FreeKey& k : free_) candidates.push_back(std::get<3>(k));
  for (std::uint64_t address : candidates) {
    const Block& b = blocks_.at(address);
    const std::uint64_t page = page_size(b.small).value;
    const std::uint64_t begin = align_up(address, page);
    const std::uint64_t end = align_down(address + b.size, page);
    if (begin >= end) continue;
    free_.erase(free_key(address));
    std::uint64_t middle = address;
    if (begin > address) {
      middle = split(address, begin - address);
      free_.insert(free_key(address));
    }
    if (end < middle + blocks_.at(middle).size) free_.insert(free_key(split(middle, end - middle)));
    blocks_.at(middle).mapped = false;
    reserved_ -= Bytes{end - begin};
    std::uint64_t merged = merge(middle, blocks_.at(middle).prev);
    merged = merge(merged, blocks_.at(merged).next);
    add_unmapped(merged);
  }
}

bool ExpandableModel::allocate(std::uint64_t key, Bytes size, std::uint64_t stream,
                               bool /*legacy*/) {
  const Bytes rounded = size < kMinBlockSize ? kMinBlockSize : size.align_up(kMinBlockSize);
  const bool small = rounded <= kSmallSize;
  std::uint64_t address = 0;
  if (!take_free_block(small, stream, rounded, &address) &&
      !grow(small, stream, rounded, &address)) {
    unmap_free_pages();
    if (!grow(small, stream, rounded, &address)) return false;
  }
  if (Bytes{blocks_.at(address).size} - rounded >= kMinBlockSize) {
    free_.insert(free_key(split(address, rounded.value)));
  }
  blocks_.at(address).allocated = true;
  live_.emplace(key, address);
  return true;
}

void ExpandableModel::free(std::uint64_t key, std::uint64_t /*stream*/, bool /*legacy*/) {
  const auto live = live_.find(key);
  if (live == live_.end()) return;
  std::uint64_t address = live->second;
  live_.erase(live);
  blocks_.at(address).allocated = false;
  address = merge(address, blocks_.at(address).prev);
  address = merge(address, blocks_.at(address).next);
  free_.insert(free_key(address));
}

}  // namespace cudefrag::analyzer::replay
