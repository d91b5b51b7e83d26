#include "analyzer/report/live_table.hpp"

namespace cudefrag::analyzer {

LiveTable::LiveTable() : slots_(1024), mask_(1023) {}

void LiveTable::grow() {
  std::vector<LiveAllocation> old(slots_.size() * 2);
  old.swap(slots_);
  mask_ = slots_.size() - 1;
  for (const LiveAllocation& entry : old) {
    if (entry.address == 0) continue;
    std::size_t i = home(entry.address);
    while (slots_[i].address != 0) i = (i + 1) & mask_;
    slots_[i] = entry;
  }
}

LiveAllocation& LiveTable::insert(std::uint64_t address, bool& existed) {
  // At most half full, so probe runs stay short.
  if ((size_ + 1) * 2 > slots_.size()) grow();
  std::size_t i = home(address);
  while (slots_[i].address != 0) {
    if (slots_[i].address == address) {
      existed = true;
      return slots_[i];
    }
    i = (i + 1) & mask_;
  }
  existed = false;
  ++size_;
  slots_[i] = LiveAllocation{};
  slots_[i].address = address;
  return slots_[i];
}

std::optional<LiveAllocation> LiveTable::take(std::uint64_t address) {
  std::size_t i = home(address);
  while (slots_[i].address != address) {
    if (slots_[i].address == 0) return std::nullopt;
    i = (i + 1) & mask_;
  }
  const LiveAllocation found = slots_[i];
  // Backward shift: move later entries of the probe run into the hole when their home allows.
  std::size_t hole = i;
  for (std::size_t j = (i + 1) & mask_; slots_[j].address != 0; j = (j + 1) & mask_) {
    const std::size_t h = home(slots_[j].address);
    const bool movable = ((j - h) & mask_) >= ((j - hole) & mask_);
    if (movable) {
      slots_[hole] = slots_[j];
      hole = j;
    }
  }
  slots_[hole] = LiveAllocation{};
  --size_;
  return found;
}

}  // namespace cudefrag::analyzer
