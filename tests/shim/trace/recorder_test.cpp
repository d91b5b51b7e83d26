// The recorder end to end on one thread: every record type written and read back, stack
// deduplication, symbols, marks, the held-file fallback and the failures that turn it off.
#include "shim/trace/recorder.hpp"

#include <gtest/gtest.h>

#include <unistd.h>
#include <algorithm>

#include <atomic>
#include <fstream>

#include "shim/trace/zstd.hpp"
#include "tests/shim/trace/trace_files.hpp"

namespace cudefrag::trace {
namespace {

using analyzer::Ending;
using testing::read_trace;
using testing::TempDir;

Options basic_options(const std::string& path) {
  Options o;
  o.path = path;
  o.messages = testing::capture_message;
  return o;
}

class RecorderRoundTrip : public ::testing::TestWithParam<bool> {};

TEST_P(RecorderRoundTrip, EveryRecordTypeReadsBackAsWritten) {
  TempDir dir;
  Options o = basic_options(dir.file("t.trace"));
  o.compress = GetParam();
  o.config = {{"mode", "arena"}, {"limit", "24GiB"}};
  o.entry_points = {"cudaMalloc", "cudaFree", "cudaMallocAsync"};
  o.gpus = {GpuInfo{DeviceOrdinal{0},
                    "Test GPU",
                    {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16},
                    GiB(80)}};
  o.driver_version = 13000;
  o.runtime_version = 12080;
  auto recorder = Recorder::open(o);
  ASSERT_NE(recorder, nullptr);

  int stream_object = 0;
  recorder->record_alloc({EntryPoint{2}, DeviceOrdinal{1}, &stream_object,
                          DevicePtr{0x7000'0000'0000}, Bytes{1000}, MiB(2), 0, TimeNs{123456789}});
  recorder->record_free({EntryPoint{1}, DeviceOrdinal{1}, nullptr, DevicePtr{0x7000'0000'0000},
                         MiB(2), 0, TimeNs{223456789}});
  recorder->record_arena_event(
      {ArenaEventKind::kStitch, DeviceOrdinal{1}, DevicePtr{0x7100'0000'0000}, MiB(64), MiB(2), 5});
  recorder->record_counters(
      {DeviceOrdinal{1}, 42,
       ArenaState{GiB(1), GiB(2), GiB(3), GiB(4), GiB(5), GiB(6), GiB(7), GiB(8)}});
  recorder->record_mark("before sampling");
  recorder->record_device(GpuInfo{DeviceOrdinal{1}, "Second GPU", {}, GiB(24)});
  recorder->record_runtime(13010, 13000);
  recorder->record_oom(
      {EntryPoint{0}, DeviceOrdinal{1}, nullptr, MiB(160), 2,
       ArenaState{MiB(924), MiB(1248), MiB(320), MiB(1248), GiB(2), MiB(96), MiB(10), GiB(2)}});
  recorder->close();

  const auto trace = read_trace(recorder->path());
  ASSERT_EQ(trace.error, "");
  EXPECT_EQ(trace.ending, Ending::kComplete);

  const auto process = trace.all<analyzer::ProcessInfo>();
  ASSERT_EQ(process.size(), 1u);
  EXPECT_EQ(process[0].pid, static_cast<std::uint32_t>(getpid()));
  EXPECT_NE(process[0].program, "");
  EXPECT_FALSE(process[0].command_line.empty());
  EXPECT_GT(process[0].start_wall_ns, 1'600'000'000'000'000'000u);  // after 2020

  const auto config = trace.all<analyzer::ConfigEntry>();
  ASSERT_EQ(config.size(), 2u);
  EXPECT_EQ(config[1].key, "limit");
  EXPECT_EQ(config[1].value, "24GiB");

  const auto entries = trace.all<analyzer::EntryPointName>();
  ASSERT_EQ(entries.size(), 3u);
  EXPECT_EQ(entries[2].id, 2);
  EXPECT_EQ(entries[2].name, "cudaMallocAsync");

  const auto devices = trace.all<analyzer::DeviceInfo>();
  ASSERT_EQ(devices.size(), 2u);
  EXPECT_EQ(devices[0].name, "Test GPU");
  EXPECT_EQ(devices[0].total_memory, GiB(80).value);
  EXPECT_EQ(devices[0].uuid[15], 16);
  EXPECT_EQ(devices[1].ordinal, 1);
  EXPECT_EQ(devices[1].name, "Second GPU");

  const auto runtimes = trace.all<analyzer::RuntimeInfo>();
  ASSERT_EQ(runtimes.size(), 2u);
  EXPECT_EQ(runtimes[0].driver_version, 13000);
  EXPECT_EQ(runtimes[1].driver_version, 13010);

  const auto allocs = trace.allocs();
  ASSERT_EQ(allocs.size(), 1u);
  EXPECT_EQ(allocs[0].entry, 2);
  EXPECT_EQ(allocs[0].device, 1);
  EXPECT_EQ(allocs[0].stream, reinterpret_cast<std::uintptr_t>(&stream_object));
  EXPECT_EQ(allocs[0].address, 0x7000'0000'0000u);
  EXPECT_EQ(allocs[0].requested, 1000u);
  EXPECT_EQ(allocs[0].granted, MiB(2).value);
  EXPECT_EQ(allocs[0].time_ns, 123456789u);
  EXPECT_EQ(allocs[0].thread, static_cast<std::uint32_t>(gettid()));
  EXPECT_EQ(allocs[0].stack, 0u);  // StackMode::kNone

  const auto frees = trace.frees();
  ASSERT_EQ(frees.size(), 1u);
  EXPECT_EQ(frees[0].entry, 1);
  EXPECT_EQ(frees[0].granted, MiB(2).value);
  EXPECT_EQ(frees[0].time_ns, 223456789u);

  const auto arena = trace.all<format::ArenaRecord>();
  ASSERT_EQ(arena.size(), 1u);
  EXPECT_EQ(arena[0].kind, ArenaEventKind::kStitch);
  EXPECT_EQ(arena[0].bytes, MiB(64).value);
  EXPECT_EQ(arena[0].bytes2, MiB(2).value);
  EXPECT_EQ(arena[0].count, 5u);

  const auto counters = trace.all<format::CountersRecord>();
  ASSERT_EQ(counters.size(), 1u);
  EXPECT_EQ(counters[0].live_allocations, 42u);
  EXPECT_EQ(counters[0].state.live, GiB(1).value);
  EXPECT_EQ(counters[0].state.driver_total, GiB(8).value);

  const auto marks = trace.all<analyzer::Mark>();
  ASSERT_EQ(marks.size(), 1u);
  EXPECT_EQ(marks[0].text, "before sampling");

  const auto ooms = trace.all<format::OomRecord>();
  ASSERT_EQ(ooms.size(), 1u);
  EXPECT_EQ(ooms[0].requested, MiB(160).value);
  EXPECT_EQ(ooms[0].result, 2);
  EXPECT_EQ(ooms[0].state.live, MiB(924).value);
  EXPECT_EQ(ooms[0].state.cached, MiB(320).value);
  EXPECT_EQ(ooms[0].state.largest_extent, MiB(96).value);
  EXPECT_EQ(ooms[0].state.limit, GiB(2).value);

  ASSERT_EQ(trace.all<format::EndRecord>().size(), 1u);
  EXPECT_TRUE(std::holds_alternative<format::EndRecord>(trace.records.back()));
}

INSTANTIATE_TEST_SUITE_P(Compression, RecorderRoundTrip, ::testing::Bool(),
                         [](const auto& test) { return test.param ? "zstd" : "raw"; });

TEST(Recorder, OomIsOnDiskWhenRecordOomReturns) {
  TempDir dir;
  auto recorder = Recorder::open(basic_options(dir.file("t.trace")));
  ASSERT_NE(recorder, nullptr);
  recorder->record_alloc(
      {EntryPoint{0}, DeviceOrdinal{0}, nullptr, DevicePtr{0x1000}, Bytes{1}, Bytes{1}, 0, {}});
  recorder->record_oom({EntryPoint{0}, DeviceOrdinal{0}, nullptr, GiB(1), 2, {}});
  // No close: the file must already hold both events.
  const auto trace = read_trace(recorder->path());
  EXPECT_EQ(trace.error, "");
  EXPECT_EQ(trace.ending, Ending::kUnfinished);
  EXPECT_EQ(trace.allocs().size(), 1u);
  EXPECT_EQ(trace.all<format::OomRecord>().size(), 1u);
}

TEST(Recorder, PollsCountersPeriodicallyOnTheWriterThread) {
  TempDir dir;
  Options o = basic_options(dir.file("t.trace"));
  std::atomic<Recorder*> self{nullptr};
  std::atomic<std::uint64_t> polls{0};
  o.poll_counters = [&] {
    if (Recorder* r = self.load()) r->record_counters({DeviceOrdinal{3}, ++polls, {}});
  };
  o.counters_interval = std::chrono::milliseconds(1);
  o.flush_interval = std::chrono::milliseconds(1);
  auto recorder = Recorder::open(o);
  ASSERT_NE(recorder, nullptr);
  self = recorder.get();
  // The fourth poll starts after the third record was appended: waiting for it (bounded, not
  // timed) makes sure close() cannot drop the third one, which its poll counted first.
  for (int i = 0; i < 5000 && polls.load() < 4; ++i) usleep(1000);
  recorder->close();
  const auto counters = read_trace(recorder->path()).all<format::CountersRecord>();
  ASSERT_GE(counters.size(), 3u);
  for (std::size_t i = 0; i < counters.size(); ++i) {
    EXPECT_EQ(counters[i].device, 3);
    EXPECT_EQ(counters[i].live_allocations, i + 1);
  }
}

TEST(Recorder, StalledWriterDropsAndCountsInsteadOfBlocking) {
  TempDir dir;
  Options o = basic_options(dir.file("t.trace"));
  o.thread_buffer_bytes = 128 << 10;  // 2048 records
  std::atomic<bool> stalled{false};
  std::atomic<bool> release{false};
  // The writer thread runs this callback: while it waits, nothing drains the buffers.
  o.poll_counters = [&] {
    stalled = true;
    while (!release) usleep(1000);
  };
  o.counters_interval = std::chrono::milliseconds(1);
  auto recorder = Recorder::open(o);
  ASSERT_NE(recorder, nullptr);
  while (!stalled) usleep(1000);
  constexpr int kRecords = 10000;
  for (int i = 0; i < kRecords; ++i) {
    recorder->record_alloc({EntryPoint{0},
                            DeviceOrdinal{0},
                            nullptr,
                            DevicePtr{static_cast<std::uintptr_t>(i + 1)},
                            Bytes{1},
                            Bytes{1},
                            0,
                            {}});
  }
  release = true;
  recorder->close();
  const auto trace = read_trace(recorder->path());
  ASSERT_EQ(trace.error, "");
  const auto dropped = trace.all<format::DroppedRecord>();
  ASSERT_EQ(dropped.size(), 1u);
  EXPECT_EQ(dropped[0].thread, static_cast<std::uint32_t>(gettid()));
  EXPECT_EQ(trace.allocs().size(), kRecords - dropped[0].count);
  EXPECT_EQ(recorder->stats().records_dropped, dropped[0].count);
  EXPECT_EQ(trace.allocs().size(), 2048u) << "the buffer held exactly this many";
}

TEST(Recorder, LongMarkIsCut) {
  TempDir dir;
  auto recorder = Recorder::open(basic_options(dir.file("t.trace")));
  ASSERT_NE(recorder, nullptr);
  recorder->record_mark(std::string(10000, 'x'));
  recorder->close();
  const auto marks = read_trace(recorder->path()).all<analyzer::Mark>();
  ASSERT_EQ(marks.size(), 1u);
  EXPECT_EQ(marks[0].text, std::string(4000, 'x'));
}

TEST(Recorder, ManyBlocksAndThreadBufferWrapAround) {
  TempDir dir;
  Options o = basic_options(dir.file("t.trace"));
  o.thread_buffer_bytes = 128 << 10;  // the smallest: wraps every ~2000 records
  auto recorder = Recorder::open(o);
  ASSERT_NE(recorder, nullptr);
  constexpr int kRecords = 30000;
  for (int i = 0; i < kRecords; ++i) {
    recorder->record_alloc({EntryPoint{0},
                            DeviceOrdinal{0},
                            nullptr,
                            DevicePtr{static_cast<std::uintptr_t>(i + 1)},
                            Bytes{1},
                            Bytes{1},
                            0,
                            {}});
    if (i % 1000 == 0) recorder->record_mark("m" + std::to_string(i));  // odd sizes
  }
  recorder->close();
  const auto trace = read_trace(recorder->path());
  ASSERT_EQ(trace.error, "");
  EXPECT_EQ(trace.ending, Ending::kComplete);
  const auto allocs = trace.allocs();
  // Records lost to a full buffer (marks included) are counted, never silently missing.
  ASSERT_EQ(allocs.size() + trace.all<analyzer::Mark>().size() + recorder->stats().records_dropped,
            static_cast<std::size_t>(kRecords + kRecords / 1000));
  for (std::size_t i = 1; i < allocs.size(); ++i)
    ASSERT_LT(allocs[i - 1].address, allocs[i].address);
  EXPECT_GT(recorder->stats().blocks_written, 2u);
}

TEST(Recorder, TraceDefinesStringsAndStacksBeforeUse) {
  TempDir dir;
  Options o = basic_options(dir.file("t.trace"));
  o.stacks = StackMode::kNative;
  auto recorder = Recorder::open(o);
  ASSERT_NE(recorder, nullptr);
  for (int i = 0; i < 100; ++i) {
    recorder->record_alloc(
        {EntryPoint{0}, DeviceOrdinal{0}, nullptr, DevicePtr{0x1000}, Bytes{1}, Bytes{1}, 0, {}});
    if (i % 10 == 0) recorder->flush_sync();
  }
  recorder->close();
  const auto trace = read_trace(recorder->path());
  ASSERT_EQ(trace.error, "");
  std::set<std::uint32_t> stacks;
  std::set<std::uint32_t> strings;
  for (const auto& r : trace.records) {
    if (const auto* s = std::get_if<analyzer::StringDef>(&r)) strings.insert(s->id);
    if (const auto* s = std::get_if<analyzer::StackDef>(&r)) stacks.insert(s->id);
    if (const auto* m = std::get_if<format::MemoryRecord>(&r)) {
      EXPECT_TRUE(stacks.contains(m->stack)) << "stack " << m->stack << " used before defined";
    }
    if (const auto* s = std::get_if<format::SymbolRecord>(&r)) {
      EXPECT_TRUE(s->module == 0 || strings.contains(s->module));
      EXPECT_TRUE(s->symbol == 0 || strings.contains(s->symbol));
    }
  }
}

// Frees carry a stack only when asked (Options::free_stacks): no report reads them, and on a
// PyTorch program they were half of the trace's cost.
TEST(Recorder, FreesCarryAStackOnlyWhenAsked) {
  for (const bool free_stacks : {false, true}) {
    TempDir dir;
    Options o = basic_options(dir.file("t.trace"));
    o.stacks = StackMode::kNative;
    o.free_stacks = free_stacks;
    auto recorder = Recorder::open(o);
    ASSERT_NE(recorder, nullptr);
    recorder->record_alloc(
        {EntryPoint{0}, DeviceOrdinal{0}, nullptr, DevicePtr{0x1000}, Bytes{1}, Bytes{1}, 0, {}});
    recorder->record_free(
        {EntryPoint{1}, DeviceOrdinal{0}, nullptr, DevicePtr{0x1000}, Bytes{1}, 0, {}});
    recorder->close();
    const auto trace = read_trace(recorder->path());
    ASSERT_EQ(trace.error, "");
    const auto memory = trace.all<format::MemoryRecord>();
    ASSERT_EQ(memory.size(), 2u);
    EXPECT_NE(memory[0].stack, 0u);
    EXPECT_EQ(memory[1].stack != 0, free_stacks) << "free_stacks " << free_stacks;
    // With native frames, the header says which unwinder took them.
    const auto config = trace.all<analyzer::ConfigEntry>();
    const auto unwinder = std::find_if(config.begin(), config.end(),
                                       [](const auto& c) { return c.key == "unwinder"; });
    ASSERT_NE(unwinder, config.end());
    EXPECT_TRUE(unwinder->value == "libunwind" || unwinder->value == "libgcc") << unwinder->value;
  }
}

TEST(Recorder, MeasuresTheNextCaptureOnlyWhenAsked) {
  TempDir dir;
  Options o = basic_options(dir.file("t.trace"));
  o.stacks = StackMode::kNative;
  auto recorder = Recorder::open(o);
  ASSERT_NE(recorder, nullptr);
  const AllocEvent alloc{EntryPoint{0}, DeviceOrdinal{0}, nullptr, DevicePtr{0x1000},
                         Bytes{1},      Bytes{1},         0,       {}};
  recorder->record_alloc(alloc);
  EXPECT_FALSE(take_capture_cost().measured) << "not asked";

  measure_next_capture();
  recorder->record_alloc(alloc);
  const CaptureCost cost = take_capture_cost();
  ASSERT_TRUE(cost.measured);
  EXPECT_GT(cost.native_frames, 0u);  // at least this test's frames and gtest's
  EXPECT_GT(cost.native_ns, 0u);
  EXPECT_EQ(cost.python_frames, 0u);
  EXPECT_FALSE(take_capture_cost().measured) << "taken once";

  // A free records no stack by default: asked for, nothing measured, and the request does not
  // carry over to a later capture.
  measure_next_capture();
  recorder->record_free(
      {EntryPoint{1}, DeviceOrdinal{0}, nullptr, DevicePtr{0x1000}, Bytes{1}, 0, {}});
  EXPECT_FALSE(take_capture_cost().measured);
  recorder->record_alloc(alloc);
  EXPECT_FALSE(take_capture_cost().measured);
  recorder->close();
}

TEST(Recorder, UnwritablePathGivesOneMessageAndNoRecorder) {
  testing::captured_messages().clear();
  auto recorder = Recorder::open(basic_options("/nonexistent-dir/sub/t.trace"));
  EXPECT_EQ(recorder, nullptr);
  ASSERT_EQ(testing::captured_messages().size(), 1u);
  EXPECT_NE(testing::captured_messages()[0].find("/nonexistent-dir/sub/t.trace"),
            std::string::npos);
  EXPECT_NE(testing::captured_messages()[0].find("tracing is off"), std::string::npos);
}

TEST(Recorder, FullDiskGivesOneMessageAndTurnsOff) {
  testing::captured_messages().clear();
  // /dev/full accepts open() and fails every write with ENOSPC.
  auto recorder = Recorder::open(basic_options("/dev/full"));
  EXPECT_EQ(recorder, nullptr);
  ASSERT_EQ(testing::captured_messages().size(), 1u);
  EXPECT_NE(testing::captured_messages()[0].find("No space left on device"), std::string::npos);
}

TEST(Recorder, BadOptionsGiveOneMessage) {
  TempDir dir;
  const auto expect_refused = [&](Options o, std::string_view words) {
    testing::captured_messages().clear();
    EXPECT_EQ(Recorder::open(std::move(o)), nullptr);
    ASSERT_EQ(testing::captured_messages().size(), 1u);
    EXPECT_NE(testing::captured_messages()[0].find(words), std::string::npos)
        << testing::captured_messages()[0];
  };
  Options o = basic_options(dir.file("t.trace"));
  o.thread_buffer_bytes = 100000;
  expect_refused(o, "thread buffer size");
  o = basic_options(dir.file("t.trace"));
  o.flush_interval = std::chrono::milliseconds(500);
  expect_refused(o, "flush interval");
  o = basic_options("");
  expect_refused(o, "path is empty");
  o = basic_options(dir.file("t.trace"));
  o.max_native_frames = 0;
  expect_refused(o, "frame limits");
}

TEST(Recorder, StackModeNames) {
  for (const auto mode :
       {StackMode::kNone, StackMode::kNative, StackMode::kPython, StackMode::kBoth}) {
    EXPECT_EQ(parse_stack_mode(to_string(mode)), mode);
  }
  EXPECT_EQ(parse_stack_mode("all"), std::nullopt);
  EXPECT_EQ(parse_stack_mode(""), std::nullopt);
}

TEST(Recorder, PathExpandsPidAndAvoidsAFileHeldByAnotherRecorder) {
  TempDir dir;
  auto first = Recorder::open(basic_options(dir.file("t.%p.trace")));
  ASSERT_NE(first, nullptr);
  const std::string expected = dir.file("t." + std::to_string(getpid()) + ".trace");
  EXPECT_EQ(first->path(), expected);
  // The same path again: held by `first`, so the second writes beside it.
  auto second = Recorder::open(basic_options(dir.file("t.%p.trace")));
  ASSERT_NE(second, nullptr);
  EXPECT_EQ(second->path(), expected + "." + std::to_string(getpid()));
  first->record_mark("first");
  second->record_mark("second");
  first->close();
  second->close();
  EXPECT_EQ(read_trace(first->path()).all<analyzer::Mark>().at(0).text, "first");
  EXPECT_EQ(read_trace(second->path()).all<analyzer::Mark>().at(0).text, "second");
  // Once closed, the path is free again and an old trace there is replaced.
  auto third = Recorder::open(basic_options(dir.file("t.%p.trace")));
  ASSERT_NE(third, nullptr);
  EXPECT_EQ(third->path(), expected);
  third->close();
  EXPECT_TRUE(read_trace(expected).all<analyzer::Mark>().empty());
}

TEST(Recorder, RecordsAfterCloseAreIgnored) {
  TempDir dir;
  auto recorder = Recorder::open(basic_options(dir.file("t.trace")));
  ASSERT_NE(recorder, nullptr);
  recorder->close();
  EXPECT_FALSE(recorder->enabled());
  recorder->record_mark("late");
  recorder->flush_sync();
  recorder->close();
  const auto trace = read_trace(recorder->path());
  EXPECT_EQ(trace.ending, Ending::kComplete);
  EXPECT_TRUE(trace.all<analyzer::Mark>().empty());
}

TEST(Recorder, CompressionMakesBlocksSmallerWhenZstdIsPresent) {
  if (!zstd_available()) GTEST_SKIP() << "libzstd.so.1 not present";
  TempDir dir;
  std::uint64_t sizes[2] = {};
  for (const bool compress : {false, true}) {
    Options o = basic_options(dir.file(compress ? "z.trace" : "r.trace"));
    o.compress = compress;
    auto recorder = Recorder::open(o);
    ASSERT_NE(recorder, nullptr);
    for (int i = 0; i < 5000; ++i) {
      recorder->record_alloc({EntryPoint{0},
                              DeviceOrdinal{0},
                              nullptr,
                              DevicePtr{0x7f00'0000'0000u + (static_cast<std::uintptr_t>(i) << 21)},
                              MiB(2),
                              MiB(2),
                              0,
                              {}});
    }
    recorder->close();
    sizes[compress] = recorder->stats().bytes_written;
  }
  EXPECT_LT(sizes[1] * 2, sizes[0]);
}

}  // namespace
}  // namespace cudefrag::trace
