// The live-allocation table against a std::unordered_map doing the same inserts and erases:
// many keys, growth, probe runs that wrap around, erasing from the middle of runs.
#include "shim/hooks/live_table.hpp"

#include <gtest/gtest.h>

#include <random>
#include <thread>
#include <unordered_map>
#include <vector>

namespace cudefrag::hooks {
namespace {

TEST(LiveTable, BehavesLikeAMap) {
  LiveTable table;
  std::unordered_map<std::uint64_t, LiveEntry> reference;
  std::mt19937_64 rng(42);
  std::vector<std::uint64_t> keys;
  for (int i = 0; i < 200000; ++i) {
    const bool add = keys.empty() || rng() % 3 != 0;
    if (add) {
      // Addresses 256-byte aligned, from a narrow range so that keys collide in places.
      const std::uint64_t key = 0x7f0000000000ULL + (rng() % 50000) * 256;
      const LiveEntry e{Bytes{rng() % 100000 + 1}, DeviceOrdinal{static_cast<int>(rng() % 4)}};
      ASSERT_TRUE(table.insert(key, e));
      if (reference.count(key) == 0) keys.push_back(key);
      reference[key] = e;
    } else {
      const std::size_t at = rng() % keys.size();
      const std::uint64_t key = keys[at];
      keys[at] = keys.back();
      keys.pop_back();
      const auto got = table.erase(key);
      ASSERT_TRUE(got.has_value()) << key;
      EXPECT_EQ(got->size, reference[key].size);
      EXPECT_EQ(got->device, reference[key].device);
      reference.erase(key);
      EXPECT_FALSE(table.erase(key).has_value());
    }
  }
  for (const auto& [key, e] : reference) {
    const auto got = table.erase(key);
    ASSERT_TRUE(got.has_value()) << key;
    EXPECT_EQ(got->size, e.size);
  }
  EXPECT_FALSE(table.erase(0x7f0000000000ULL).has_value());
  EXPECT_FALSE(table.insert(0, LiveEntry{}));
}

TEST(LiveTable, ManyThreadsAtOnce) {
  LiveTable table;
  std::vector<std::thread> threads;
  std::atomic<int> errors{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&table, &errors, t] {
      for (std::uint64_t i = 1; i <= 5000; ++i) {
        const std::uint64_t key = (static_cast<std::uint64_t>(t) << 40) + i * 512;
        if (!table.insert(key, LiveEntry{Bytes{i}, DeviceOrdinal{t}})) ++errors;
      }
      for (std::uint64_t i = 1; i <= 5000; ++i) {
        const std::uint64_t key = (static_cast<std::uint64_t>(t) << 40) + i * 512;
        const auto e = table.erase(key);
        if (!e || e->size != Bytes{i} || e->device != DeviceOrdinal{t}) ++errors;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(errors.load(), 0);
}

}  // namespace
}  // namespace cudefrag::hooks
