// Call recording shared by the fake CUDA libraries the hook tests run against: a fixed table of
// counters by function name, lock-free, usable from any thread and before main.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <cstring>

#include <sys/mman.h>

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

// Fake device addresses: 2 MiB apart, never 0, unique for 32768 allocations, and inside an address
// range reserved (PROT_NONE, never touched) for the process's lifetime. A real driver's allocations
// never overlap the arena's reserved region; with fixed fake addresses they could, when the host
// backend's region happened to be mapped over them, and a foreign pointer then looked like the
// arena's (ArenaRouting tests, a few runs in a hundred under ASan). The reservation makes the
// fake keep the driver's promise.
inline std::uint64_t next_fake_address() noexcept {
  constexpr std::uint64_t kStep = 2ULL << 20;
  constexpr std::uint64_t kSpan = 64ULL << 30;  // 32768 addresses, then they repeat
  // 2 MiB-aligned, as the driver's large allocations are.
  static const std::uint64_t base = []() -> std::uint64_t {
    void* p =
        mmap(nullptr, kSpan + kStep, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) return 0x7f0000000000ULL;
    return (reinterpret_cast<std::uint64_t>(p) + kStep - 1) / kStep * kStep;
  }();
  static std::atomic<std::uint64_t> next{0};
  return base + next.fetch_add(kStep, std::memory_order_relaxed) % kSpan;
}

// Sizes at or above this fail with out-of-memory, so tests can provoke failures.
inline constexpr std::size_t kFailingSize = std::size_t{1} << 40;

}  // namespace cudefrag::fake
