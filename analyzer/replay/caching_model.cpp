#include "analyzer/replay/caching_model.hpp"

#include <algorithm>
#include <vector>

namespace cudefrag::analyzer::replay {

namespace {

// PyTorch's constants (CUDACachingAllocator.cpp).
constexpr Bytes kMinBlockSize{512};        // every size is rounded to this
constexpr Bytes kSmallSize = MiB(1);       // largest request of the small pool
constexpr Bytes kSmallBuffer = MiB(2);     // segment of the small pool
constexpr Bytes kLargeBuffer = MiB(20);    // segment for requests under kMinLargeAlloc
constexpr Bytes kMinLargeAlloc = MiB(10);  // from here, segments are the request rounded...
constexpr Bytes kRoundLarge = MiB(2);      // ...to this
// The driver's pool maps physical memory in the allocation granularity.
constexpr Bytes kPoolGranularity = MiB(2);

}  // namespace

CachingModel::CachingModel(CachingFlavor flavor, Bytes cap) : flavor_(flavor), cap_(cap) {}

Bytes CachingModel::round_size(Bytes size) const {
  if (size < kMinBlockSize) return kMinBlockSize;
  return size.align_up(kMinBlockSize);
}

Bytes CachingModel::segment_size(Bytes rounded) const {
  if (flavor_ == CachingFlavor::kAsyncPool) return rounded.align_up(kPoolGranularity);
  if (rounded <= kSmallSize) return kSmallBuffer;
  if (rounded < kMinLargeAlloc) return kLargeBuffer;
  return rounded.align_up(kRoundLarge);
}

bool CachingModel::small_pool(Bytes rounded) const {
  return flavor_ == CachingFlavor::kPyTorchNative && rounded <= kSmallSize;
}

bool CachingModel::should_split(bool small, Bytes remaining) const {
  // PyTorch: the small pool splits off any rest of at least 512 B, the large pool only a rest
  // above 1 MiB (max_split_size unlimited). The driver's pool: assumed to split any rest.
  if (flavor_ == CachingFlavor::kAsyncPool || small) return remaining >= kMinBlockSize;
  return remaining > kSmallSize;
}

bool CachingModel::new_segment(bool small, std::uint64_t stream, Bytes size,
                               std::uint64_t* address) {
  if (size > cap_ || reserved_ > cap_ - size) return false;
  *address = next_address_;
  next_address_ += size.align_up(MiB(2)).value;
  blocks_.emplace(*address, Block{size.value, stream, 0, 0, small, false});
  reserved_ += size;
  if (reserved_ > peak_) peak_ = reserved_;
  ++segments_;
  ++segments_created_;
  return true;
}

void CachingModel::release_free_segments() {
  // release_cached_blocks(): every free block that is a whole segment goes back to the driver;
  // a segment with anything live in it stays, free blocks and all.
  std::vector<FreeKey> whole;
  for (const FreeKey& k : free_) {
    const Block& b = blocks_.at(std::get<3>(k));
    if (b.prev == 0 && b.next == 0) whole.push_back(k);
  }
  for (const FreeKey& k : whole) {
    const auto it = blocks_.find(std::get<3>(k));
    reserved_ -= Bytes{it->second.size};
    --segments_;
    blocks_.erase(it);
    free_.erase(k);
  }
}

bool CachingModel::allocate(std::uint64_t key, Bytes size, std::uint64_t stream, bool /*legacy*/) {
  const Bytes rounded = round_size(size);
  const bool small = small_pool(rounded);
  // PyTorch keeps blocks per stream; the driver's pool lets other streams reuse freed memory
  // (cudaMemPoolReuseAllowOpportunistic and ...FollowEventDependencies are on by default).
  const std::uint64_t pool_stream = flavor_ == CachingFlavor::kPyTorchNative ? stream : 0;

  std::uint64_t address = 0;
  const auto it = free_.lower_bound(FreeKey{small, pool_stream, rounded.value, 0});
  if (it != free_.end() && std::get<0>(*it) == small && std::get<1>(*it) == pool_stream) {
    address = std::get<3>(*it);
    free_.erase(it);
  } else {
    const Bytes segment = segment_size(rounded);
    if (!new_segment(small, pool_stream, segment, &address)) {
      release_free_segments();
      if (!new_segment(small, pool_stream, segment, &address)) return false;
    }
  }

  Block& b = blocks_.at(address);
  const Bytes remaining = Bytes{b.size} - rounded;
  if (should_split(small, remaining)) {
    const std::uint64_t rest_address = address + rounded.value;
    Block rest{remaining.value, b.stream, address, b.next, b.small, false};
    if (b.next != 0) blocks_.at(b.next).prev = rest_address;
    b.next = rest_address;
    b.size = rounded.value;
    free_.insert(free_key(rest_address, rest));
    blocks_.emplace(rest_address, rest);
  }
  blocks_.at(address).allocated = true;
  live_.emplace(key, address);
  return true;
}

std::uint64_t CachingModel::merge(std::uint64_t address, std::uint64_t neighbour) {
  if (neighbour == 0 || blocks_.at(neighbour).allocated) return address;
  free_.erase(free_key(neighbour, blocks_.at(neighbour)));
  const std::uint64_t low = std::min(address, neighbour);
  const std::uint64_t high = std::max(address, neighbour);
  const Block upper = blocks_.at(high);
  Block& lower = blocks_.at(low);
  lower.size += upper.size;
  lower.next = upper.next;
  if (upper.next != 0) blocks_.at(upper.next).prev = low;
  blocks_.erase(high);
  return low;
}

void CachingModel::free(std::uint64_t key, std::uint64_t /*stream*/, bool /*legacy*/) {
  const auto live = live_.find(key);
  if (live == live_.end()) return;
  std::uint64_t address = live->second;
  live_.erase(live);
  blocks_.at(address).allocated = false;
  address = merge(address, blocks_.at(address).next);
  address = merge(address, blocks_.at(address).prev);
  free_.insert(free_key(address, blocks_.at(address)));
}

}  // namespace cudefrag::analyzer::replay
