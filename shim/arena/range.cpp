#include "shim/arena/range.hpp"

namespace cudefrag::arena {

RangeMap::RangeMap(DevicePtr base, Bytes size, Bytes granularity)
    : base_(base), size_(size), granularity_(granularity) {
  const std::uint64_t granules = size / granularity;
  leaf_count_ = (granules + kLeafEntries - 1) / kLeafEntries;
  leaves_ = std::make_unique<std::atomic<Leaf*>[]>(leaf_count_);
  for (std::uint64_t i = 0; i < leaf_count_; ++i) leaves_[i].store(nullptr);
}

RangeMap::~RangeMap() {
  for (std::uint64_t i = 0; i < leaf_count_; ++i) delete leaves_[i].load();
}

void RangeMap::assign(DevicePtr base, Bytes size, Range* range) {
  const std::uint64_t first = (base - base_) / granularity_;
  const std::uint64_t count = size / granularity_;
  for (std::uint64_t g = first; g < first + count; ++g) {
    std::atomic<Leaf*>& slot = leaves_[g / kLeafEntries];
    Leaf* leaf = slot.load(std::memory_order_acquire);
    if (leaf == nullptr) {
      if (range == nullptr) continue;
      leaf = new Leaf;
      slot.store(leaf, std::memory_order_release);
    }
    leaf->entries[g % kLeafEntries].store(range, std::memory_order_release);
  }
}

Range* RangePool::get() {
  if (!spare_.empty()) {
    Range* r = spare_.back();
    spare_.pop_back();
    return r;
  }
  return &storage_.emplace_back();
}

void RangePool::put(Range* r) {
  r->pieces.clear();
  r->state = RangeState::kSpare;
  r->requested = Bytes{};
  r->tag = kReady;
  r->page.store(nullptr, std::memory_order_relaxed);
  spare_.push_back(r);
}

}  // namespace cudefrag::arena
