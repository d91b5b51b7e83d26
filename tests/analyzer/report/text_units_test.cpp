// Numbers and rows as the reports print them.
#include "analyzer/report/text_units.hpp"

#include <gtest/gtest.h>

#include <vector>

#include "analyzer/report/report_data.hpp"

namespace cudefrag::analyzer {
namespace {

constexpr std::uint64_t kMiB = 1 << 20;

SizeBucket bucket(std::uint64_t from, std::uint64_t to, std::uint64_t allocations) {
  return SizeBucket{from, to, allocations, allocations * from};
}

TEST(SizeRows, RunsOfEmptyBucketsBecomeOneRow) {
  const std::vector<SizeBucket> buckets{
      bucket(kMiB, 2 * kMiB, 1),       bucket(2 * kMiB, 4 * kMiB, 0),
      bucket(4 * kMiB, 8 * kMiB, 0),   bucket(8 * kMiB, 16 * kMiB, 0),
      bucket(16 * kMiB, 32 * kMiB, 2), bucket(32 * kMiB, 64 * kMiB, 0),
      bucket(64 * kMiB, 0, 3)};
  const std::vector<SizeBucket> rows = size_rows(buckets);
  ASSERT_EQ(rows.size(), 5u);
  EXPECT_EQ(size_range_text(rows[1]), "[2.0 MiB, 16.0 MiB)");
  EXPECT_EQ(rows[1].allocations, 0u);
  EXPECT_EQ(rows[1].bytes, 0u);
  // A single empty bucket between two full ones stays as it is.
  EXPECT_EQ(size_range_text(rows[3]), "[32.0 MiB, 64.0 MiB)");
  EXPECT_EQ(size_range_text(rows[4]), "[64.0 MiB, ...)");
  EXPECT_EQ(rows[4].allocations, 3u);
  EXPECT_TRUE(size_rows({}).empty());
}

}  // namespace
}  // namespace cudefrag::analyzer
