#include "shim/arena/large_cache.hpp"

#include <algorithm>

namespace cudefrag::arena {

LargeCache::LargeCache()
    : pending_(StreamFences::kCapacity),
      promoted_upto_(StreamFences::kCapacity, 0),
      listed_(StreamFences::kCapacity, false) {}

Range* LargeCache::take(Bytes min, Bytes max, StreamIndex by) {
  Range* best = nullptr;
  if (by != kAnyStream && by != kParked) {
    const BySize& mine = pending_[by.value];
    auto it = mine.lower_bound(min.value);
    if (it != mine.end() && it->first <= max.value) best = it->second;
  }
  auto it = ready_by_size_.lower_bound(min.value);
  if (it != ready_by_size_.end() && it->first <= max.value &&
      (best == nullptr || it->first < best->size.value)) {
    best = it->second;
  }
  if (best != nullptr) remove(best);
  return best;
}

void LargeCache::put(Range* r, FenceTag tag) {
  r->state = RangeState::kCached;
  r->tag = tag;
  r->cached_at = ++clock_;
  insert(r);
}

void LargeCache::insert(Range* r) {
  const FenceTag tag = r->tag;
  cached_ += r->size;
  ++count_;
  if (tag.ready()) {
    r->by_size = ready_by_size_.emplace(r->size.value, r);
    r->by_address = ready_by_address_.emplace(r->base.value, r).first;
    ready_ += r->size;
    return;
  }
  if (!listed_[tag.stream.value]) {
    listed_[tag.stream.value] = true;
    pending_streams_.push_back(tag.stream.value);
  }
  BySize& pending = pending_[tag.stream.value];
  r->by_size = pending.emplace(r->size.value, r);
}

void LargeCache::remove(Range* r) {
  cached_ -= r->size;
  --count_;
  if (r->tag.ready()) {
    ready_by_size_.erase(r->by_size);
    ready_by_address_.erase(r->by_address);
    ready_ -= r->size;
  } else {
    pending_[r->tag.stream.value].erase(r->by_size);
  }
}

std::size_t LargeCache::promote(const StreamFences& fences) {
  std::size_t moved = 0;
  std::vector<Range*> done;
  for (std::size_t i = 0; i < pending_streams_.size();) {
    const std::uint32_t s = pending_streams_[i];
    BySize& pending = pending_[s];
    const std::uint64_t fenced = fences.fenced_seq(StreamIndex{s});
    if (fenced > promoted_upto_[s]) {
      promoted_upto_[s] = fenced;
      done.clear();
      for (const auto& [size, r] : pending) {
        if (r->tag.seq <= fenced) done.push_back(r);
      }
      for (Range* r : done) {
        remove(r);
        r->tag = kReady;  // keeps cached_at: reclaim order is the order of the frees
        insert(r);
      }
      moved += done.size();
    }
    if (pending.empty()) {
      listed_[s] = false;
      pending_streams_[i] = pending_streams_.back();
      pending_streams_.pop_back();
    } else {
      ++i;
    }
  }
  return moved;
}

std::vector<Range*> LargeCache::ready_oldest_first() const {
  std::vector<Range*> out;
  out.reserve(ready_by_address_.size());
  for (const auto& [base, r] : ready_by_address_) out.push_back(r);
  std::sort(out.begin(), out.end(),
            [](const Range* a, const Range* b) { return a->cached_at < b->cached_at; });
  return out;
}

std::vector<Range*> LargeCache::pending_oldest_first(StreamIndex stream) const {
  std::vector<Range*> out;
  if (stream == kAnyStream || stream == kParked || stream.value >= pending_.size()) return out;
  for (const auto& [size, r] : pending_[stream.value]) out.push_back(r);
  std::sort(out.begin(), out.end(),
            [](const Range* a, const Range* b) { return a->cached_at < b->cached_at; });
  return out;
}

}  // namespace cudefrag::arena
