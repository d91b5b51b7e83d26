#include "analyzer/export/interval_set.hpp"

#include <gtest/gtest.h>

namespace cudefrag::analyzer {
namespace {

std::vector<std::pair<std::uint64_t, std::uint64_t>> pairs(const std::vector<AddressRange>& r) {
  std::vector<std::pair<std::uint64_t, std::uint64_t>> out;
  for (const AddressRange& x : r) out.emplace_back(x.begin, x.end);
  return out;
}

using Pairs = std::vector<std::pair<std::uint64_t, std::uint64_t>>;

TEST(IntervalSet, AddReturnsOnlyWhatWasMissingAndCoalesces) {
  IntervalSet s;
  EXPECT_EQ(pairs(s.add(100, 200)), (Pairs{{100, 200}}));
  EXPECT_EQ(pairs(s.add(300, 400)), (Pairs{{300, 400}}));
  EXPECT_EQ(pairs(s.add(150, 350)), (Pairs{{200, 300}}));
  EXPECT_EQ(s.ranges().size(), 1u);
  EXPECT_EQ(s.bytes(), 300u);
  EXPECT_TRUE(s.add(120, 380).empty());
  EXPECT_EQ(pairs(s.add(400, 450)), (Pairs{{400, 450}}));  // adjacent: merged
  EXPECT_EQ(s.ranges().size(), 1u);
  EXPECT_EQ(s.ranges().begin()->second, 450u);
}

TEST(IntervalSet, RemoveSplitsAndReturnsWhatWasThere) {
  IntervalSet s;
  s.add(0, 100);
  s.add(200, 300);
  EXPECT_EQ(pairs(s.remove(50, 250)), (Pairs{{50, 100}, {200, 250}}));
  EXPECT_EQ(pairs(s.intersect(0, 1000)), (Pairs{{0, 50}, {250, 300}}));
  EXPECT_EQ(s.bytes(), 100u);
  EXPECT_EQ(pairs(s.remove(10, 20)), (Pairs{{10, 20}}));
  EXPECT_EQ(s.ranges().size(), 3u);
  EXPECT_TRUE(s.remove(100, 200).empty());
}

}  // namespace
}  // namespace cudefrag::analyzer
