// A fixed-capacity open-addressing map from a non-zero 64-bit key to a 64-bit value, for the
// recorder's caches (call stacks by hash, Python code objects by address). find() is lock-free
// and wait-free; insert() must be serialised by the caller (it runs only on a cache miss). Keys
// may repeat (hash collisions): find() offers every entry with the key to a predicate.
// Entries are never removed.
#pragma once

#include <atomic>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <memory>

namespace cudefrag::trace {

class ConcurrentMap {
 public:
  // capacity: a power of two. The map refuses inserts beyond 3/4 of it, to keep probes short.
  explicit ConcurrentMap(std::size_t capacity)
      : slots_(std::make_unique<Slot[]>(capacity)),
        mask_(capacity - 1),
        shift_(64 - static_cast<unsigned>(std::countr_zero(capacity))) {}

  // The value of the first entry with `key` for which accept(value) is true, or 0.
  template <typename Accept>
  std::uint64_t find(std::uint64_t key, Accept&& accept) const {
    for (std::size_t i = home(key);; i = (i + 1) & mask_) {
      const std::uint64_t k = slots_[i].key.load(std::memory_order_acquire);
      if (k == 0) return 0;
      if (k == key) {
        const std::uint64_t v = slots_[i].value.load(std::memory_order_relaxed);
        if (accept(v)) return v;
      }
    }
  }
  std::uint64_t find(std::uint64_t key) const {
    return find(key, [](std::uint64_t) { return true; });
  }

  // Caller serialises inserts (and full()). False when the map is full.
  bool full() const { return (size_ + 1) * 4 > (mask_ + 1) * 3; }
  bool insert(std::uint64_t key, std::uint64_t value) {
    if (full()) return false;
    std::size_t i = home(key);
    while (slots_[i].key.load(std::memory_order_relaxed) != 0) i = (i + 1) & mask_;
    slots_[i].value.store(value, std::memory_order_relaxed);
    slots_[i].key.store(key, std::memory_order_release);  // publishes the value with the key
    ++size_;
    return true;
  }

  std::size_t size() const { return size_; }  // caller serialised with insert()

 private:
  // Fibonacci hashing: keys such as aligned addresses have their low bits all zero.
  std::size_t home(std::uint64_t key) const {
    return static_cast<std::size_t>((key * 0x9E3779B97F4A7C15u) >> shift_) & mask_;
  }

  struct Slot {
    std::atomic<std::uint64_t> key{0};
    std::atomic<std::uint64_t> value{0};
  };
  std::unique_ptr<Slot[]> slots_;
  std::size_t mask_;
  unsigned shift_;
  std::size_t size_ = 0;
};

// Keys must be non-zero; this keeps a hash in range.
constexpr std::uint64_t nonzero_key(std::uint64_t h) {
  return h == 0 ? 1 : h;
}

}  // namespace cudefrag::trace
