// The post-mortem of an out-of-memory error from the arena state its record carries.
#include "analyzer/report/oom_explain.hpp"

#include <gtest/gtest.h>

namespace cudefrag::analyzer {
namespace {

constexpr std::uint64_t kMiB = 1 << 20;

// The state of a transformer run on a 3.25 GiB H200 card (docs/RESULTS.md): the arena held
// 5.5 MiB of cache, the driver said 289.6 MiB free, and refused 288 MiB.
OomReport nearly_full(std::uint64_t driver_free) {
  OomReport oom;
  oom.requested = 288 * kMiB;
  oom.result = 2;
  oom.state.live = 2372 * kMiB;
  oom.state.cached = 11 * kMiB / 2;
  oom.state.mapped = oom.state.live + oom.state.cached;
  oom.state.physical = oom.state.mapped;
  oom.state.limit = 0;
  oom.state.largest_extent = driver_free;
  oom.state.driver_free = driver_free;
  oom.state.driver_total = 143771 * kMiB;
  return oom;
}

TEST(ExplainOom, AFullDeviceIsPutDownToTheDriversMargin) {
  OomReport oom = nearly_full(2896 * kMiB / 10);
  explain_oom(oom);
  ASSERT_FALSE(oom.reasons.empty());
  EXPECT_EQ(oom.reasons[0].rfind("the device was full", 0), 0u) << oom.reasons[0];
  EXPECT_NE(oom.reasons[0].find("with only 7.1 MiB to spare"), std::string::npos) << oom.reasons[0];
}

TEST(ExplainOom, RoomToSpareIsTheDriversOrTheEntryPointsFailure) {
  OomReport oom = nearly_full(1024 * kMiB);
  explain_oom(oom);
  ASSERT_FALSE(oom.reasons.empty());
  EXPECT_EQ(oom.reasons[0].rfind("the arena's state shows the request could be served", 0), 0u)
      << oom.reasons[0];
}

}  // namespace
}  // namespace cudefrag::analyzer
