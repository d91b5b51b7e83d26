// Golden output of `cudefrag replay` on examples/traces/oom.trace (text and JSON, in this
// folder), and a run over the traces recorded on the H200 (examples/traces/h200/).
//
// To regenerate after a deliberate change: CUDEFRAG_REGENERATE_GOLDEN=1 analyzer_replay_test
// --gtest_filter='ReplayGolden.*', then review the diff.
#include <gtest/gtest.h>
#include <stdio.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "analyzer/replay/arena_model.hpp"
#include "analyzer/replay/fit.hpp"
#include "analyzer/replay/replay_command.hpp"
#include "analyzer/replay/trace_ops.hpp"
#include "tests/analyzer/support/command_run.hpp"

namespace cudefrag::analyzer {
namespace {

const std::string kSource = CUDEFRAG_SOURCE_DIR;
const std::string kExpected = kSource + "/tests/analyzer/replay";

using testing::read_file;
using Output = testing::CommandResult;

// From the source directory with a relative trace path, so that the output names the trace the
// same way on every machine.
Output run(std::vector<std::string> words) {
  return testing::run_in_process(replay_main, std::move(words), kSource);
}

void check_golden(const std::string& name, const Output& o) {
  const std::string text = o.out + (o.err.empty() ? "" : "--- stderr\n" + o.err) + "--- exit " +
                           std::to_string(o.status) + "\n";
  const std::string path = kExpected + "/" + name;
  if (testing::regenerating_golden()) {
    testing::write_file(path, text);
    return;
  }
  EXPECT_EQ(text, read_file(path)) << "golden file " << path;
}

// The golden files leave the cudefrag model out: it is the real arena, whose options are still
// being tuned, and its figures would change with every tuning. arena_model_test.cpp and the H200
// run below cover it.
TEST(ReplayGolden, OomTraceText) {
  check_golden("oom.replay.expected",
               run({"examples/traces/oom.trace", "--model", "native,expandable,async"}));
}

TEST(ReplayGolden, OomTraceJsonOnASmallerCard) {
  check_golden("oom.replay.json.expected",
               run({"examples/traces/oom.trace", "--card", "4", "--json", "-", "--model",
                    "native,expandable,async"}));
}

TEST(ReplayCommand, BadCommandLineAndUnreadableTrace) {
  EXPECT_EQ(run({}).status, 2);
  const Output missing = run({"examples/traces/no-such.trace"});
  EXPECT_EQ(missing.status, 2);
  EXPECT_NE(missing.err.find("no-such.trace"), std::string::npos);
  EXPECT_EQ(run({"examples/traces/not-a-trace.csv"}).status, 2);
}

TEST(ReplayCommand, EmptyTraceHasNothingToReplay) {
  const Output o = run({"examples/traces/empty.trace"});
  // An empty file is not a trace: the reader says so.
  EXPECT_EQ(o.status, 2);
}

// The traces recorded on the H200: every model must fit on the H200 they ran on, and the two
// oom_then_continue runs (1008 MiB live at the peak, 48 MiB tensors plus 20 MiB scratch) need a
// 1.5 GiB card with the default 0.5 GiB context: 1008 MiB + 512 MiB > 1.25 GiB.
TEST(ReplayH200, EveryTraceReplaysAndFitsTheCardItRanOn) {
  const std::string dir = kSource + "/examples/traces/h200";
  int traces = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".cdtrace") continue;
    ++traces;
    replay::TraceOps trace(entry.path().string(), std::nullopt);
    ASSERT_TRUE(trace.scan()) << trace.error();
    const bool oom_run = entry.path().filename().string().find("oom") != std::string::npos;
    if (oom_run) {
      EXPECT_EQ(trace.summary().peak_live, MiB(1008)) << entry.path();
    }
    for (const replay::ModelKind kind : replay::kAllModels) {
      replay::RunResult on_card;
      ASSERT_TRUE(replay::run_model(trace, kind, trace.summary().device_total - MiB(512), on_card));
      EXPECT_FALSE(on_card.failure.has_value()) << entry.path() << " " << model_name(kind);
      EXPECT_GE(on_card.peak_reserved, trace.summary().peak_live);
      if (!oom_run) continue;
      const auto smallest =
          replay::smallest_card(trace, kind, on_card.peak_reserved, replay::FitOptions{});
      EXPECT_EQ(smallest, MiB(1536)) << model_name(kind);
    }
  }
  EXPECT_EQ(traces, 6);
}

// docs/RESULTS.md: oom_then_continue under `--mode arena --limit 1GiB` peaked at 1010 MiB of
// physical memory with 1008 MiB live. The arena measured then packed small requests up to 1 MiB
// and had no growth budget; replayed so on the same 1 GiB cap, the model must hold exactly as
// much.
TEST(ReplayH200, ArenaModelHoldsWhatTheArenaHeldOnTheH200) {
  replay::TraceOps trace(kSource + "/examples/traces/h200/pytorch-oom-1gib.cdtrace", std::nullopt);
  ASSERT_TRUE(trace.scan()) << trace.error();
  arena::ArenaOptions measured;
  measured.small_threshold = MiB(1);
  measured.grow_percent = 0;
  replay::ArenaModel model(GiB(1), measured);
  ASSERT_TRUE(trace.replay([&](const replay::Op& op) {
    if (op.alloc) {
      EXPECT_TRUE(model.allocate(op.key, op.size, op.stream, op.legacy));
    } else {
      model.free(op.key, op.stream, op.legacy);
    }
    return true;
  }));
  EXPECT_EQ(model.peak_reserved(), MiB(1010));
}

// The shipped diffusion trace played 4 times over: without a growth budget (--grow 0) the arena
// model keeps growing after the first time, with the shim's default it settles and holds less
// (docs/replay.md).
TEST(ReplayH200, TheGrowthBudgetSettlesTheArenaModelOnARepeatedWorkload) {
  replay::TraceOps trace(kSource + "/examples/traces/h200/workload-diffusion.cdtrace",
                         std::nullopt);
  ASSERT_TRUE(trace.scan()) << trace.error();
  replay::RunResult unbounded;
  ASSERT_TRUE(replay::run_model(trace, replay::ModelKind::kArena, replay::kNoCap, unbounded,
                                replay::RunSettings{4, {0}}));
  replay::RunResult budget;
  ASSERT_TRUE(replay::run_model(trace, replay::ModelKind::kArena, replay::kNoCap, budget,
                                replay::RunSettings{4}));
  ASSERT_EQ(unbounded.peak_by_repetition.size(), 4u);
  ASSERT_EQ(budget.peak_by_repetition.size(), 4u);
  EXPECT_GT(unbounded.peak_by_repetition.back(), unbounded.peak_by_repetition.front());
  EXPECT_LT(budget.peak_reserved, unbounded.peak_reserved);
  EXPECT_LE(budget.peak_reserved.value, trace.summary().peak_live.value * 21 / 10);
}

// --small-max reaches the arena model: with no slabs (0) every small request of the diffusion
// trace gets whole 2 MiB pages of its own, and the model holds more than with the shim's default.
TEST(ReplayH200, TheSmallRequestThresholdReachesTheArenaModel) {
  replay::TraceOps trace(kSource + "/examples/traces/h200/workload-diffusion.cdtrace",
                         std::nullopt);
  ASSERT_TRUE(trace.scan()) << trace.error();
  replay::RunResult slabs;
  ASSERT_TRUE(replay::run_model(trace, replay::ModelKind::kArena, replay::kNoCap, slabs,
                                replay::RunSettings{}));
  replay::RunResult pages;
  ASSERT_TRUE(replay::run_model(trace, replay::ModelKind::kArena, replay::kNoCap, pages,
                                replay::RunSettings{1, {config::kDefaultGrowPercent, Bytes{}}}));
  EXPECT_GT(pages.peak_reserved, slabs.peak_reserved);
}

// Why the arena model's request failed, told by where its memory sat: on the ComfyUI trace at
// 3.06 GiB (the smallest card with the default threshold is 3.08, docs/replay.md) a live slot
// pins free slots of 8 MiB slab pages, and what any request could reuse, with what the cap
// leaves, is less than the request. With 1 MiB pages the same card holds the run.
TEST(ReplayH200, AnArenaFailureSaysWhereTheMemorySat) {
  replay::TraceOps trace(kSource + "/examples/traces/h200/comfyui-sd15-card-3.5gib.cdtrace",
                         std::nullopt);
  ASSERT_TRUE(trace.scan()) << trace.error();
  const Bytes cap =
      Bytes{static_cast<std::uint64_t>(3.06 * static_cast<double>(GiB(1).value))} - MiB(512);
  replay::RunResult r;
  ASSERT_TRUE(replay::run_model(trace, replay::ModelKind::kArena, cap, r));
  ASSERT_TRUE(r.failure.has_value());
  ASSERT_TRUE(r.failure->arena.has_value());
  const replay::ArenaState& a = *r.failure->arena;
  EXPECT_GE(a.granted, a.requested);
  EXPECT_EQ(a.requested, r.failure->live);
  EXPECT_LE(a.reclaimable, a.cached);
  EXPECT_GT(a.cached - a.reclaimable, MiB(64));  // pinned in partly used slab pages
  EXPECT_LT(a.reclaimable + (cap - r.failure->reserved), r.failure->size);

  replay::RunResult small_pages;
  ASSERT_TRUE(replay::run_model(trace, replay::ModelKind::kArena, cap, small_pages,
                                replay::RunSettings{1, {config::kDefaultGrowPercent, MiB(1)}}));
  EXPECT_FALSE(small_pages.failure.has_value());

  replay::RunResult native;  // fails on this card too (its smallest is 3.14 GiB)
  ASSERT_TRUE(replay::run_model(trace, replay::ModelKind::kNative, cap, native));
  ASSERT_TRUE(native.failure.has_value());
  EXPECT_FALSE(native.failure->arena.has_value());  // the arena model's only
}

}  // namespace
}  // namespace cudefrag::analyzer
