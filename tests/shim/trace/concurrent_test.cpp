// Sixteen threads recording at once (label "concurrent": also run under ThreadSanitizer).
#include <gtest/gtest.h>

#include <barrier>
#include <map>
#include <thread>

#include "shim/trace/recorder.hpp"
#include "tests/shim/trace/trace_files.hpp"

namespace cudefrag::trace {
namespace {

using analyzer::Ending;
using testing::read_trace;
using testing::TempDir;

constexpr int kThreads = 16;
constexpr std::uint64_t kPerThread = 2000;

// Addresses encode (thread index, sequence number) so the reader can check order and loss.
DevicePtr address_of(int thread, std::uint64_t n) {
  return DevicePtr{(static_cast<std::uintptr_t>(thread + 1) << 32) | n};
}

[[gnu::noinline]] void site_one(Recorder& r, int t, std::uint64_t n) {
  r.record_alloc(
      {EntryPoint{0}, DeviceOrdinal{0}, nullptr, address_of(t, n), Bytes{n}, Bytes{n}, 0, {}});
  asm volatile("" ::: "memory");
}

[[gnu::noinline]] void site_two(Recorder& r, int t, std::uint64_t n) {
  r.record_free({EntryPoint{1}, DeviceOrdinal{0}, nullptr, address_of(t, n), Bytes{n}, 0, {}});
  asm volatile("" ::: "memory");
}

class ConcurrentRecorder : public ::testing::TestWithParam<StackMode> {};

TEST_P(ConcurrentRecorder, SixteenThreadsLoseNothingAndShareStacks) {
  TempDir dir;
  Options o;
  o.path = dir.file("t.trace");
  o.stacks = GetParam();
  o.free_stacks = true;  // two call sites, both with stacks
  o.thread_buffer_bytes = std::size_t{1} << 20;
#if defined(__SANITIZE_THREAD__)
  // libunwind is not instrumented, and its per-thread cache destructor crashes ThreadSanitizer's
  // runtime at thread exit; the libgcc unwinder exercises the same recorder paths.
  o.unwinder = NativeUnwinder::kLibgcc;
#endif
  auto recorder = Recorder::open(o);
  ASSERT_NE(recorder, nullptr);

  std::barrier start(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      start.arrive_and_wait();
      for (std::uint64_t n = 1; n <= kPerThread; ++n) {
        site_one(*recorder, t, n);
        site_two(*recorder, t, n);
        if (n % 1000 == 0) recorder->record_mark("thread " + std::to_string(t));
        if (t == 0 && n % 500 == 0) recorder->flush_sync();
      }
    });
  }
  for (auto& th : threads) th.join();
  recorder->close();

  const auto trace = read_trace(recorder->path());
  ASSERT_EQ(trace.error, "");
  EXPECT_EQ(trace.ending, Ending::kComplete);
  std::uint64_t dropped = 0;
  for (const auto& d : trace.all<format::DroppedRecord>()) dropped += d.count;

  std::map<int, std::uint64_t> last_alloc;
  std::map<std::uint32_t, int> thread_of_tid;
  std::set<std::uint32_t> alloc_stacks;
  std::set<std::uint32_t> free_stacks;
  std::uint64_t events = 0;
  for (const auto& r : trace.all<format::MemoryRecord>()) {
    const int t = static_cast<int>(r.address >> 32) - 1;
    const std::uint64_t n = r.address & 0xFFFF'FFFFu;
    ASSERT_GE(t, 0);
    ASSERT_LT(t, kThreads);
    // One OS thread per writer thread, and each thread's records in its own order.
    const auto [it, added] = thread_of_tid.try_emplace(r.thread, t);
    ASSERT_EQ(it->second, t);
    if (r.header.type == format::RecordType::kAlloc) {
      ASSERT_GT(n, last_alloc[t]);
      last_alloc[t] = n;
      alloc_stacks.insert(r.stack);
    } else {
      free_stacks.insert(r.stack);
    }
    EXPECT_EQ(r.granted, n);
    ++events;
  }
  // Everything recorded is in the trace or counted as dropped (marks included).
  const std::uint64_t marks = trace.all<analyzer::Mark>().size();
  EXPECT_EQ(events + marks + dropped, 2 * kThreads * kPerThread + kThreads * kPerThread / 1000);
  if (GetParam() == StackMode::kNone) {
    EXPECT_EQ(alloc_stacks, std::set<std::uint32_t>{0});
  } else {
    // Every thread runs the same code: two call sites, two stacks, defined once each even
    // though sixteen threads met them at the same moment.
    EXPECT_EQ(alloc_stacks.size(), 1u);
    EXPECT_EQ(free_stacks.size(), 1u);
    EXPECT_NE(*alloc_stacks.begin(), *free_stacks.begin());
    EXPECT_EQ(trace.all<analyzer::StackDef>().size(), 2u);
  }
}

INSTANTIATE_TEST_SUITE_P(Stacks, ConcurrentRecorder,
                         ::testing::Values(StackMode::kNone, StackMode::kNative),
                         [](const auto& test) { return std::string(to_string(test.param)); });

TEST(ConcurrentRecorder, ThreadsComingAndGoing) {
  TempDir dir;
  Options o;
  o.path = dir.file("t.trace");
  auto recorder = Recorder::open(o);
  ASSERT_NE(recorder, nullptr);
  std::uint64_t total = 0;
  for (int wave = 0; wave < 10; ++wave) {
    std::vector<std::thread> threads;
    for (int t = 0; t < 8; ++t) {
      threads.emplace_back([&] {
        for (int i = 0; i < 50; ++i) recorder->record_mark("x");
      });
      total += 50;
    }
    for (auto& th : threads) th.join();
    if (wave % 5 == 0) recorder->flush_sync();
  }
  recorder->close();
  const auto trace = read_trace(recorder->path());
  ASSERT_EQ(trace.error, "");
  EXPECT_EQ(trace.all<analyzer::Mark>().size(), total);
}

}  // namespace
}  // namespace cudefrag::trace
