#include "analyzer/export/memory_model.hpp"

#include <algorithm>

namespace cudefrag::analyzer {
namespace {

std::uint64_t end_of(std::uint64_t address, std::uint64_t bytes) {
  return bytes > UINT64_MAX - address ? UINT64_MAX : address + bytes;
}

}  // namespace

DeviceMemory& MemoryModel::device(std::int16_t ordinal) {
  if (last_ != nullptr && last_->device == ordinal) return *last_;
  auto it = std::find_if(devices_.begin(), devices_.end(),
                         [&](const auto& d) { return d->device == ordinal; });
  if (it == devices_.end()) {
    devices_.push_back(std::make_unique<DeviceMemory>());
    devices_.back()->device = ordinal;
    it = devices_.end() - 1;
  }
  last_ = it->get();
  return *last_;
}

void MemoryModel::release(std::map<std::uint64_t, Block>::iterator it, bool replaced) {
  const Block block = it->second;
  blocks_.erase(it);
  DeviceMemory& d = device(block.device);
  d.live -= std::min(d.live, block.size);
  if (d.live_count != 0) --d.live_count;
  if (listener_ != nullptr) listener_->freed(d, block, replaced);
  // Memory kept mapped only for this block goes with it.
  const std::uint64_t end = end_of(block.address, block.size);
  for (const AddressRange& piece : d.held.remove(block.address, end)) {
    d.mapped.remove(piece.begin, piece.end);
    if (listener_ != nullptr) listener_->unmapped(d, piece);
  }
}

void MemoryModel::allocate(const Block& block) {
  const std::uint64_t end = end_of(block.address, block.size);
  // Live blocks this one overlaps were freed without a record.
  auto it = blocks_.upper_bound(block.address);
  if (it != blocks_.begin()) {
    auto before = std::prev(it);
    if (end_of(before->first, before->second.size) > block.address) it = before;
  }
  while (it != blocks_.end() && it->first < end) {
    auto next = std::next(it);
    release(it, true);
    it = next;
  }
  DeviceMemory& d = device(block.device);
  for (const AddressRange& piece : d.mapped.add(block.address, end)) {
    d.held.add(piece.begin, piece.end);
    if (listener_ != nullptr) listener_->mapped(d, piece);
  }
  Block& stored = blocks_.emplace(block.address, block).first->second;
  d.live += block.size;
  ++d.live_count;
  if (listener_ != nullptr) listener_->allocated(d, stored);
}

bool MemoryModel::free(std::uint64_t address) {
  const auto it = blocks_.find(address);
  if (it == blocks_.end()) return false;
  release(it, false);
  return true;
}

void MemoryModel::map(std::int16_t ordinal, std::uint64_t address, std::uint64_t bytes) {
  DeviceMemory& d = device(ordinal);
  d.has_arena_ranges = true;
  const std::uint64_t end = end_of(address, bytes);
  // Held memory the arena now maps for itself stays mapped after its blocks go.
  d.held.remove(address, end);
  for (const AddressRange& piece : d.mapped.add(address, end)) {
    if (listener_ != nullptr) listener_->mapped(d, piece);
  }
}

void MemoryModel::unmap(std::int16_t ordinal, std::uint64_t address, std::uint64_t bytes) {
  DeviceMemory& d = device(ordinal);
  d.has_arena_ranges = true;
  const std::uint64_t end = end_of(address, bytes);
  // The parts under live blocks stay mapped (held) until those blocks are freed.
  std::vector<AddressRange> keep;
  auto it = blocks_.upper_bound(address);
  if (it != blocks_.begin()) --it;
  for (; it != blocks_.end() && it->first < end; ++it) {
    const std::uint64_t lo = std::max(address, it->first);
    const std::uint64_t hi = std::min(end, end_of(it->first, it->second.size));
    if (lo < hi) keep.push_back({lo, hi});
  }
  std::uint64_t at = address;
  const auto unmap_part = [&](std::uint64_t lo, std::uint64_t hi) {
    for (const AddressRange& piece : d.mapped.remove(lo, hi)) {
      if (listener_ != nullptr) listener_->unmapped(d, piece);
    }
  };
  for (const AddressRange& k : keep) {
    if (at < k.begin) unmap_part(at, k.begin);
    for (const AddressRange& piece : d.mapped.intersect(k.begin, k.end)) {
      d.held.add(piece.begin, piece.end);
    }
    at = std::max(at, k.end);
  }
  if (at < end) unmap_part(at, end);
}

}  // namespace cudefrag::analyzer
