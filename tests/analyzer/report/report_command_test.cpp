// `cudefrag report` end to end on traces made for one behaviour each, and the replay's peak
// bookkeeping against a brute-force replay of a random trace.
#include "analyzer/report/report_command.hpp"
#include "tests/analyzer/support/command_run.hpp"

#include <gtest/gtest.h>
#include <stdio.h>

#include <algorithm>
#include <fstream>
#include <map>
#include <random>
#include <sstream>

#include "analyzer/report/replay.hpp"
#include "tests/analyzer/report/trace_builder.hpp"
#include "tests/shim/trace/trace_files.hpp"

namespace cudefrag::analyzer {
namespace {

using testing::TraceBuilder;
using trace::testing::TempDir;

constexpr std::uint64_t kStart = 1'000'000'000;

using Result = testing::CommandResult;
using testing::read_file;

Result report(std::vector<std::string> args) {
  return testing::run_in_process(report_main, std::move(args));
}

void opening(TraceBuilder& t) {
  t.process(1, 0, kStart, 0, "/bin/prog", {"prog"});
  t.entry_point(0, "cudaMalloc");
  t.entry_point(1, "cudaFree");
}

std::uint64_t s(double seconds) {
  return kStart + static_cast<std::uint64_t>(seconds * 1e9);
}

TEST(ReportCommand, JsonToAFileAndTextToStdout) {
  TempDir dir;
  {
    TraceBuilder t(dir.file("t.trace"));
    opening(t);
    t.alloc(10, s(0.1), 0, 0, 0x1000, 4096, 4096, 0);
    t.end(s(0.2));
  }
  const Result r = report({"--json", dir.file("out.json"), dir.file("t.trace")});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("peak live      4.0 KiB in 1 allocation at 0.100 s"), std::string::npos)
      << r.out;
  const std::string json = read_file(dir.file("out.json"));
  EXPECT_NE(json.find("\"bytes\": 4096"), std::string::npos) << json;
  EXPECT_EQ(json.back(), '\n');
}

TEST(ReportCommand, UsageAndOutputErrors) {
  const Result help = report({"--help"});
  EXPECT_EQ(help.status, 0);
  EXPECT_NE(help.out.find("usage: cudefrag report"), std::string::npos);
  const Result bad = report({"--top"});
  EXPECT_EQ(bad.status, 2);
  EXPECT_NE(bad.err.find("cudefrag report: --top needs a value"), std::string::npos) << bad.err;
  const Result missing = report({"/nonexistent/trace"});
  EXPECT_EQ(missing.status, 2);
  EXPECT_NE(missing.err.find("offset 0: cannot open"), std::string::npos) << missing.err;

  TempDir dir;
  {
    TraceBuilder t(dir.file("t.trace"));
    opening(t);
  }
  const Result unwritable = report({"--json", "/nonexistent/dir/out.json", dir.file("t.trace")});
  EXPECT_EQ(unwritable.status, 1);
  EXPECT_NE(unwritable.err.find("cannot write '/nonexistent/dir/out.json'"), std::string::npos)
      << unwritable.err;
}

TEST(ReportCommand, HeaderOnlyTraceHasNothingToReport) {
  TempDir dir;
  { TraceBuilder t(dir.file("t.trace")); }
  const Result r = report({dir.file("t.trace")});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.err.find("offset 24: no block after the file header"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("nothing to report"), std::string::npos) << r.err;
}

TEST(ReportCommand, WarnsOfRecordsTooFarOutOfOrderAndOfLostFrees) {
  TempDir dir;
  {
    TraceBuilder t(dir.file("t.trace"));
    opening(t);
    t.alloc(10, s(0.1), 0, 0, 0x1000, 100, 100, 0);
    t.alloc(10, s(5.0), 0, 0, 0x2000, 100, 100, 0);
    t.alloc(10, s(5.1), 0, 0, 0x1000, 100, 100, 0);  // 0x1000 again: its free was lost
    t.pass();
    t.alloc(11, s(0.05), 0, 0, 0x3000, 100, 100, 0);  // five seconds late
    t.pass();
  }
  const Result r = report({dir.file("t.trace")});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("1 record arrived too far out of time order"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("1 allocation at an address still live"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("no end record"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("peak live      300 B in 3 allocations"), std::string::npos) << r.out;
}

// A failed request counts once as a failed allocation, whether an OOM record (arena mode), a
// failed alloc record (CUDA refused it) or both carry it; OOMs are the ones with an OOM record.
TEST(ReportCommand, AFailedAllocationIsCountedOnceWhicheverRecordsCarryIt) {
  TempDir dir;
  {
    TraceBuilder t(dir.file("t.trace"));
    opening(t);
    const format::ArenaStateFields state{};
    constexpr std::uint64_t kGiB = std::uint64_t{1} << 30;
    t.oom(10, s(0.1), 0, 0, kGiB, 0, state);  // the arena refused: the OOM record alone
    t.oom(11, s(0.2), 0, 0, kGiB, 0, state);  // one request, both records
    t.alloc(11, s(0.2), 0, 0, 0, kGiB, 0, 0, 2);
    t.alloc(12, s(0.3), 0, 0, 0, kGiB, 0, 0, 2);  // CUDA refused: no OOM record
    t.alloc(10, s(0.35), 0, 0, 0x1000, 100, 100, 0);
    t.oom(10, s(0.4), 0, 0, kGiB, 0, state);  // thread 10 again: another request
    t.end(s(0.5));
  }
  const Result r = report({"--json", dir.file("out.json"), dir.file("t.trace")});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_NE(r.out.find("1 allocation, 0 frees, 4 failed allocations"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("3 out-of-memory errors"), std::string::npos) << r.out;
  const std::string json = read_file(dir.file("out.json"));
  EXPECT_NE(json.find("\"failed_allocations\": 4"), std::string::npos) << json;
  EXPECT_NE(json.find("\"ooms\": 3"), std::string::npos) << json;
}

// Records whose fields hold anything at all (as a damaged but checksummed file could) make a
// report, not a crash.
TEST(ReportCommand, SurvivesArbitraryFieldValues) {
  TempDir dir;
  std::mt19937_64 random(5);
  {
    TraceBuilder t(dir.file("t.trace"));
    t.process(1, 0, random(), static_cast<std::uint8_t>(random()), "/bin/prog", {"prog"});
    t.entry_point(static_cast<std::uint16_t>(random()), "x");
    for (int i = 0; i < 1500; ++i) {
      const auto thread = static_cast<std::uint32_t>(random() % 4);
      const int device = static_cast<std::int16_t>(random());
      const auto entry = static_cast<std::uint16_t>(random());
      const std::uint64_t address = random() % 64;  // few addresses: frees find allocations
      switch (random() % 6) {
        case 0:
        case 1:
          t.alloc(thread, random(), entry, device, address, random(), random(),
                  static_cast<std::uint32_t>(random()), static_cast<std::int32_t>(random() % 3));
          break;
        case 2:
          t.free(thread, random(), entry, device, address, random());
          break;
        case 3:
          t.arena(thread, random(), static_cast<format::ArenaEventKind>(random() % 9), device,
                  address, random(), random(), static_cast<std::uint32_t>(random()));
          break;
        case 4:
          t.oom(thread, random(), entry, device, random(), static_cast<std::uint32_t>(random()),
                {random(), random(), random(), random(), random(), random(), random(), random()});
          break;
        default:
          t.counters(
              random(), device, random(),
              {random(), random(), random(), random(), random(), random(), random(), random()});
          break;
      }
      if (i % 100 == 0) t.pass();
    }
  }
  for (const std::vector<std::string>& extra :
       std::vector<std::vector<std::string>>{{}, {"--from", "3", "--to", "1e9"}, {"--site", "x"}}) {
    std::vector<std::string> args = extra;
    args.push_back("--json");
    args.push_back(dir.file("out.json"));
    args.push_back(dir.file("t.trace"));
    const Result r = report(args);
    EXPECT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.out.find("Peaks"), std::string::npos);
  }
}

// Replays a random trace of three threads and twenty call sites, and checks the peak and the
// bytes each site held at it against a replay that keeps every event.
TEST(Replay, PeakConsumersMatchABruteForceReplay) {
  TempDir dir;
  struct Op {
    std::uint64_t time;
    bool alloc;
    std::uint64_t address;
    std::uint64_t bytes;
    std::uint32_t site;
  };
  std::vector<Op> ops;
  std::mt19937_64 random(3);
  {
    TraceBuilder t(dir.file("t.trace"));
    opening(t);
    std::vector<std::uint32_t> stacks;
    for (std::uint64_t i = 0; i < 20; ++i) stacks.push_back(t.stack({0x500000 + i}, {}));
    std::vector<std::vector<std::pair<std::uint64_t, Op>>> live(3);
    std::uint64_t address = 0x10000;
    for (std::uint64_t step = 0; step < 6000; ++step) {
      const auto thread = static_cast<std::uint32_t>(random() % 3);
      const std::uint64_t time = kStart + step * 10 + thread;
      auto& mine = live[thread];
      if (mine.empty() || random() % 100 < 55) {
        const Op op{time, true, address += 4096, 512 + random() % 100000,
                    static_cast<std::uint32_t>(random() % 20)};
        t.alloc(100 + thread, time, 0, 0, op.address, op.bytes, op.bytes, stacks[op.site]);
        mine.emplace_back(op.address, op);
        ops.push_back(op);
      } else {
        const std::size_t victim = random() % mine.size();
        Op op = mine[victim].second;
        t.free(100 + thread, time, 1, 0, op.address, 0);
        op.time = time;
        op.alloc = false;
        ops.push_back(op);
        mine.erase(mine.begin() + static_cast<std::ptrdiff_t>(victim));
      }
      if (step % 97 == 0) t.pass();
    }
  }
  std::sort(ops.begin(), ops.end(), [](const Op& a, const Op& b) { return a.time < b.time; });
  std::uint64_t live = 0;
  std::uint64_t peak = 0;
  std::map<std::uint32_t, std::uint64_t> per_site;
  std::map<std::uint32_t, std::uint64_t> at_peak;
  for (const Op& op : ops) {
    live = op.alloc ? live + op.bytes : live - op.bytes;
    per_site[op.site] = op.alloc ? per_site[op.site] + op.bytes : per_site[op.site] - op.bytes;
    if (live > peak) {
      peak = live;
      at_peak = per_site;
    }
  }

  ReportOptions options;
  options.trace = dir.file("t.trace");
  options.top = 100;
  TraceReader reader(options.trace);
  Replay replay(options);
  Record record;
  while (reader.next(record)) replay.add(record);
  const ReportData data = replay.finish(reader);
  ASSERT_EQ(data.devices.size(), 1u);
  EXPECT_EQ(data.devices[0].peak_live, peak);
  std::uint64_t sum = 0;
  for (const SiteRow& row : data.devices[0].peak_consumers) {
    const auto site = static_cast<std::uint32_t>(std::stoull(row.site, nullptr, 16) - 0x500000);
    EXPECT_EQ(row.bytes, at_peak[site]) << row.site;
    sum += row.bytes;
  }
  EXPECT_EQ(sum, peak);
  EXPECT_EQ(data.counts.late_records, 0u);
}

}  // namespace
}  // namespace cudefrag::analyzer
