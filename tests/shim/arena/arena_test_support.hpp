// Helpers for the arena tests: an arena on a fresh host backend, byte patterns that differ per
// block at (nearly) every byte, and the host backend's call counters.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <memory>
#include <random>
#include <vector>

#include "shim/arena/arena.hpp"
#include "shim/vmm/host_backend.hpp"

namespace cudefrag::arena::testing {

struct HostArenaConfig {
  Bytes capacity = MiB(64);
  Bytes granularity = MiB(2);
  ArenaOptions options;
};

inline std::unique_ptr<Arena> make_host_arena(const HostArenaConfig& config) {
  vmm::HostBackendOptions host;
  host.capacity = config.capacity;
  host.granularity = config.granularity;
  vmm::Status why = vmm::Status::kOk;
  auto arena = Arena::create(vmm::make_host_backend(host), config.options, &why);
  EXPECT_NE(arena, nullptr) << vmm::to_string(why);
  return arena;
}

inline vmm::HostBackendStats backend_stats(Arena& arena) {
  return *vmm::host_backend_stats(arena.backend());
}

// Random bytes; block `id` gets the window starting at an offset derived from id, so two blocks'
// patterns differ almost everywhere. Filled and checked with memcpy/memcmp, which sanitizers
// check in bulk, so that large blocks stay cheap under ASan and TSan.
class Patterns {
 public:
  explicit Patterns(Bytes max_block) : bytes_((max_block.value + kWindow + 7) / 8 * 8) {
    std::mt19937_64 rng(42);
    for (std::size_t i = 0; i < bytes_.size(); i += 8) {
      const std::uint64_t word = rng();
      std::memcpy(&bytes_[i], &word, 8);
    }
  }
  void fill(DevicePtr p, Bytes size, std::uint64_t id) const {
    std::memcpy(p.as_void(), source(id), size.value);
  }
  bool check(DevicePtr p, Bytes size, std::uint64_t id) const {
    return std::memcmp(p.as_void(), source(id), size.value) == 0;
  }

 private:
  static constexpr std::size_t kWindow = 64 * 1024;
  const unsigned char* source(std::uint64_t id) const {
    return bytes_.data() + (id * 2654435761u) % kWindow;
  }
  std::vector<unsigned char> bytes_;
};

}  // namespace cudefrag::arena::testing
