// The runs over a trace and the search for the smallest card (fit.hpp, trace_ops.hpp), on a
// trace built with the native allocator's worst case (caching_model_test.cpp).
#include "analyzer/replay/fit.hpp"

#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <string>
#include <vector>

#include "tests/analyzer/report/trace_builder.hpp"

namespace cudefrag::analyzer::replay {
namespace {

constexpr std::uint64_t kMs = 1'000'000;
constexpr std::uint64_t kBase = 0x7000'0000'0000;

class FitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = (std::filesystem::temp_directory_path() /
             ("replay_fit_" + std::to_string(::getpid()) + ".trace"))
                .string();
    testing::TraceBuilder b(path_);
    b.process(1, 0, 0, 0, "/bin/program", {"program"});
    b.entry_point(0, "cudaMallocAsync");
    b.entry_point(1, "cudaFreeAsync");
    b.device(0, "Card", GiB(16).value);
    std::uint64_t t = kMs;
    // Ten 8 MiB allocations; then the first of each pair is freed; then 16 MiB is asked for.
    for (std::uint64_t i = 0; i < 10; ++i) {
      b.alloc(1, t += kMs, 0, 0, kBase + i * MiB(8).value, MiB(8).value, MiB(8).value, 0);
    }
    for (std::uint64_t i = 0; i < 10; i += 2) {
      b.free(1, t += kMs, 1, 0, kBase + i * MiB(8).value, MiB(8).value);
    }
    b.alloc(1, t += kMs, 0, 0, kBase + MiB(100).value, MiB(16).value, MiB(16).value, 0);
    b.end(t + kMs);
    b.close();
  }
  void TearDown() override { std::filesystem::remove(path_); }

  std::string path_;
};

TEST_F(FitTest, SummaryCountsWhatIsReplayed) {
  TraceOps trace(path_, std::nullopt);
  ASSERT_TRUE(trace.scan()) << trace.error();
  EXPECT_EQ(trace.summary().device, 0);
  EXPECT_EQ(trace.summary().device_total, GiB(16));
  EXPECT_EQ(trace.summary().allocations, 11u);
  EXPECT_EQ(trace.summary().frees, 5u);
  EXPECT_EQ(trace.summary().peak_live, MiB(80));
}

TEST_F(FitTest, SmallestCardPerModel) {
  TraceOps trace(path_, std::nullopt);
  ASSERT_TRUE(trace.scan()) << trace.error();
  const FitOptions fit{MiB(4), Bytes{}};
  const auto smallest = [&](ModelKind kind) {
    RunResult unlimited;
    EXPECT_TRUE(run_model(trace, kind, kNoCap, unlimited));
    return smallest_card(trace, kind, unlimited.peak_reserved, fit).value_or(Bytes{});
  };
  // Native: 100 MiB of 20 MiB segments, none entirely free, plus a new 16 MiB segment.
  EXPECT_EQ(smallest(ModelKind::kNative), MiB(116));
  // Expandable: four 20 MiB pages, one more for the 16 MiB.
  EXPECT_EQ(smallest(ModelKind::kExpandable), MiB(100));
  // The pool gives its free 8 MiB chunks back: the live bytes are enough.
  EXPECT_EQ(smallest(ModelKind::kAsyncPool), MiB(80));
  // The arena serves 8 MiB from slabs or from ranges of their own depending on its small
  // threshold (an option being tuned); either way it needs no more than expandable segments.
  const Bytes arena = smallest(ModelKind::kArena);
  EXPECT_GE(arena, MiB(80));
  EXPECT_LE(arena, MiB(100));
}

TEST_F(FitTest, AFailedRunSaysWhichRequestFailed) {
  TraceOps trace(path_, std::nullopt);
  ASSERT_TRUE(trace.scan()) << trace.error();
  RunResult r;
  ASSERT_TRUE(run_model(trace, ModelKind::kNative, MiB(100), r));
  ASSERT_TRUE(r.failure.has_value());
  EXPECT_EQ(r.failure->size, MiB(16));
  EXPECT_EQ(r.failure->time_ns, 17 * kMs);
  EXPECT_EQ(r.failure->live, MiB(40));
  EXPECT_EQ(r.failure->reserved, MiB(100));
}

// Played again, each model finds the first time's memory free and needs no more of it: its peak
// after every repetition is the peak of one.
TEST_F(FitTest, RepeatedRunsStartFromWhatTheLastLeftAndCountEachPeak) {
  TraceOps trace(path_, std::nullopt);
  ASSERT_TRUE(trace.scan()) << trace.error();
  for (const ModelKind kind : kAllModels) {
    RunResult once;
    ASSERT_TRUE(run_model(trace, kind, kNoCap, once));
    ASSERT_EQ(once.peak_by_repetition.size(), 1u);
    EXPECT_EQ(once.peak_by_repetition[0], once.peak_reserved);
    RunResult thrice;
    ASSERT_TRUE(run_model(trace, kind, kNoCap, thrice, RunSettings{3}));
    EXPECT_EQ(thrice.peak_by_repetition, std::vector<Bytes>(3, once.peak_reserved))
        << model_name(kind);
    EXPECT_FALSE(thrice.failure.has_value());
  }
  // On a card too small for one run the native model fails the first time through (at 17 ms)
  // and no repetition follows.
  RunResult tight;
  ASSERT_TRUE(run_model(trace, ModelKind::kNative, MiB(100), tight, RunSettings{3}));
  ASSERT_TRUE(tight.failure.has_value());
  EXPECT_EQ(tight.failure->time_ns, 17 * kMs);
  EXPECT_TRUE(tight.peak_by_repetition.empty());
}

TEST(TraceOps, AMissingTraceIsAnError) {
  TraceOps trace("/nonexistent/trace", std::nullopt);
  EXPECT_FALSE(trace.scan());
  EXPECT_FALSE(trace.error().empty());
}

}  // namespace
}  // namespace cudefrag::analyzer::replay
