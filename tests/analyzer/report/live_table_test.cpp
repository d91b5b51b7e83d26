// LiveTable against std::unordered_map under random inserts and removals (the backward-shift
// deletion is where open addressing goes wrong).
#include "analyzer/report/live_table.hpp"

#include <gtest/gtest.h>

#include <random>
#include <unordered_map>

namespace cudefrag::analyzer {
namespace {

TEST(LiveTable, InsertFindsExisting) {
  LiveTable table;
  bool existed = true;
  table.insert(0x1000, existed).bytes = 5;
  EXPECT_FALSE(existed);
  EXPECT_EQ(table.insert(0x1000, existed).bytes, 5u);
  EXPECT_TRUE(existed);
  EXPECT_EQ(table.size(), 1u);
  EXPECT_EQ(table.take(0x1000)->bytes, 5u);
  EXPECT_FALSE(table.take(0x1000));
  EXPECT_EQ(table.size(), 0u);
}

TEST(LiveTable, AgreesWithAMapUnderRandomUse) {
  std::mt19937_64 random(11);
  LiveTable table;
  std::unordered_map<std::uint64_t, std::uint64_t> reference;
  for (int i = 0; i < 100'000; ++i) {
    // Few distinct addresses, aligned like device memory, so probe runs collide.
    const std::uint64_t address = 0x7f00'0000'0000 + (random() % 5000) * 512;
    if (random() % 3 != 0) {
      bool existed = false;
      LiveAllocation& a = table.insert(address, existed);
      EXPECT_EQ(existed, reference.contains(address));
      a.bytes = static_cast<std::uint64_t>(i);
      reference[address] = a.bytes;
    } else {
      const auto taken = table.take(address);
      const auto it = reference.find(address);
      ASSERT_EQ(taken.has_value(), it != reference.end());
      if (taken) {
        EXPECT_EQ(taken->bytes, it->second);
        reference.erase(it);
      }
    }
  }
  EXPECT_EQ(table.size(), reference.size());
  std::size_t seen = 0;
  table.for_each([&](const LiveAllocation& a) {
    ++seen;
    EXPECT_EQ(reference.at(a.address), a.bytes);
  });
  EXPECT_EQ(seen, reference.size());
}

}  // namespace
}  // namespace cudefrag::analyzer
