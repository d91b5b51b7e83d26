#include "shim/arena/extent_set.hpp"

#include <gtest/gtest.h>

#include <random>
#include <vector>

namespace cudefrag::arena {
namespace {

TEST(ExtentSet, CoalescesNeighbours) {
  ExtentSet s;
  s.insert(0, 4);
  s.insert(8, 4);
  EXPECT_EQ(s.extents(), 2u);
  s.insert(4, 4);
  EXPECT_EQ(s.extents(), 1u);
  EXPECT_EQ(s.total(), 12u);
  EXPECT_EQ(s.largest(), 12u);
}

TEST(ExtentSet, TakesTheBestFit) {
  ExtentSet s;
  s.insert(0, 10);
  s.insert(20, 3);
  s.insert(30, 5);
  EXPECT_EQ(s.take_best_fit(3), 20u);
  EXPECT_EQ(s.take_best_fit(4), 30u);
  EXPECT_EQ(s.take_best_fit(4), 0u);
  EXPECT_EQ(s.take_best_fit(7), std::nullopt);
  EXPECT_EQ(s.take_best_fit(6), 4u);
  EXPECT_EQ(s.take_best_fit(1), 34u);
  EXPECT_EQ(s.total(), 0u);
  EXPECT_EQ(s.take_best_fit(0), std::nullopt);
}

TEST(ExtentSet, RandomTakesAndReturnsNeverOverlap) {
  std::mt19937 rng(7);
  ExtentSet s;
  constexpr std::uint64_t kUnits = 4096;
  s.insert(0, kUnits);
  std::vector<bool> used(kUnits, false);
  std::vector<std::pair<std::uint64_t, std::uint64_t>> taken;
  for (int step = 0; step < 20000; ++step) {
    if (taken.empty() || rng() % 2 == 0) {
      const std::uint64_t len = 1 + rng() % 64;
      if (const auto at = s.take_best_fit(len)) {
        for (std::uint64_t u = *at; u < *at + len; ++u) {
          ASSERT_FALSE(used[u]);
          used[u] = true;
        }
        taken.emplace_back(*at, len);
      }
    } else {
      const std::size_t i = rng() % taken.size();
      const auto [at, len] = taken[i];
      for (std::uint64_t u = at; u < at + len; ++u) used[u] = false;
      s.insert(at, len);
      taken[i] = taken.back();
      taken.pop_back();
    }
  }
  for (const auto& [at, len] : taken) s.insert(at, len);
  EXPECT_EQ(s.extents(), 1u);
  EXPECT_EQ(s.total(), kUnits);
}

}  // namespace
}  // namespace cudefrag::arena
