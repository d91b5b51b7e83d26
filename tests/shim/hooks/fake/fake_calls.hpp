// Call recording shared by the fake CUDA libraries the hook tests run against: a fixed table of
// counters by function name, lock-free, usable from any thread and before main.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <cstring>

namespace cudefrag::fake {

template <std::size_t N>
class CallLog {
 public:
  explicit constexpr CallLog(const std::array<const char*, N>& names) : names_(names) {}

  void record(const char* name) noexcept {
    if (auto* c = find(name)) c->fetch_add(1, std::memory_order_relaxed);
  }
  std::uint64_t count(const char* name) const noexcept {
    const auto* c = const_cast<CallLog*>(this)->find(name);
    return c != nullptr ? c->load(std::memory_order_relaxed) : UINT64_MAX;
  }
  void reset() noexcept {
    for (auto& c : counts_) c.store(0, std::memory_order_relaxed);
  }

 private:
  std::atomic<std::uint64_t>* find(const char* name) noexcept {
    for (std::size_t i = 0; i < N; ++i) {
      if (std::strcmp(names_[i], name) == 0) return &counts_[i];
    }
    return nullptr;
  }
  std::array<const char*, N> names_;
  std::array<std::atomic<std::uint64_t>, N> counts_{};
};

// Fake device addresses: unique, 2 MiB apart, never 0.
inline std::uint64_t next_fake_address() noexcept {
  static std::atomic<std::uint64_t> next{0x7f0000000000ULL};
  return next.fetch_add(2ULL << 20, std::memory_order_relaxed);
}

// Sizes at or above this fail with out-of-memory, so tests can provoke failures.
inline constexpr std::size_t kFailingSize = std::size_t{1} << 40;

}  // namespace cudefrag::fake
