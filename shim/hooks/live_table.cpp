#include "shim/hooks/live_table.hpp"

namespace cudefrag::hooks {
namespace {

constexpr std::size_t kInitialSlots = 64;

}  // namespace

std::uint64_t LiveTable::mix(std::uint64_t key) noexcept {
  // Device allocations are at least 256-byte aligned: the low bits carry nothing.
  const std::uint64_t h = (key >> 8) * 0x9E3779B97F4A7C15ULL;
  return h ^ (h >> 31);
}

LiveTable::Shard& LiveTable::shard(std::uint64_t key) noexcept {
  return shards_[mix(key) >> 58];
}

bool LiveTable::grow(Shard& s) noexcept {
  try {
    std::vector<Slot> bigger(s.slots.empty() ? kInitialSlots : s.slots.size() * 2);
    const std::size_t mask = bigger.size() - 1;
    for (const Slot& old : s.slots) {
      if (old.key == 0) continue;
      std::size_t i = mix(old.key) & mask;
      while (bigger[i].key != 0) i = (i + 1) & mask;
      bigger[i] = old;
    }
    s.slots.swap(bigger);
    return true;
  } catch (...) {
    return false;
  }
}

bool LiveTable::insert(std::uint64_t key, LiveEntry entry) noexcept {
  if (key == 0) return false;
  Shard& s = shard(key);
  const std::lock_guard lock(s.mutex);
  if ((s.used + 1) * 2 > s.slots.size() && !grow(s)) return false;
  const std::size_t mask = s.slots.size() - 1;
  std::size_t i = mix(key) & mask;
  while (s.slots[i].key != 0 && s.slots[i].key != key) i = (i + 1) & mask;
  if (s.slots[i].key == 0) ++s.used;
  s.slots[i] = Slot{key, entry};
  return true;
}

std::optional<LiveEntry> LiveTable::erase(std::uint64_t key) noexcept {
  if (key == 0) return std::nullopt;
  Shard& s = shard(key);
  const std::lock_guard lock(s.mutex);
  if (s.slots.empty()) return std::nullopt;
  const std::size_t mask = s.slots.size() - 1;
  std::size_t i = mix(key) & mask;
  while (s.slots[i].key != key) {
    if (s.slots[i].key == 0) return std::nullopt;
    i = (i + 1) & mask;
  }
  const LiveEntry found = s.slots[i].entry;
  // Backward-shift deletion: pull later entries of the probe run into the hole, so that lookups
  // never need tombstones.
  std::size_t j = i;
  for (;;) {
    j = (j + 1) & mask;
    if (s.slots[j].key == 0) break;
    const std::size_t home = mix(s.slots[j].key) & mask;
    // The entry at j may move to i unless its home lies cyclically in (i, j].
    const bool stays = i <= j ? (i < home && home <= j) : (i < home || home <= j);
    if (!stays) {
      s.slots[i] = s.slots[j];
      i = j;
    }
  }
  s.slots[i].key = 0;
  --s.used;
  return found;
}

}  // namespace cudefrag::hooks
