// TimeOrder: events of several threads, each in order, interleaved as the writer interleaves
// them, come out in time order; what is too late is counted, never lost.
#include "analyzer/report/time_order.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <random>

namespace cudefrag::analyzer {
namespace {

Event at(std::uint64_t time, std::uint32_t thread) {
  Event e;
  e.time_ns = time;
  e.thread = thread;
  return e;
}

std::vector<std::uint64_t> drain(TimeOrder& order, const std::vector<Event>& input) {
  std::vector<std::uint64_t> out;
  Event e;
  for (const Event& in : input) {
    order.push(in);
    while (order.pop_ready(e)) out.push_back(e.time_ns);
  }
  while (order.pop_any(e)) out.push_back(e.time_ns);
  return out;
}

TEST(TimeOrder, MergesThreadsWrittenBufferByBuffer) {
  // Four threads, each writing its 50 ms of events in turn, pass after pass.
  std::vector<Event> input;
  for (std::uint64_t pass = 0; pass < 20; ++pass) {
    for (std::uint32_t thread = 1; thread <= 4; ++thread) {
      for (std::uint64_t i = 0; i < 10; ++i) {
        input.push_back(at(pass * 50'000'000 + i * 5'000'000 + thread, thread));
      }
    }
  }
  TimeOrder order(100'000'000);
  const auto out = drain(order, input);
  ASSERT_EQ(out.size(), input.size());
  EXPECT_TRUE(std::is_sorted(out.begin(), out.end()));
  EXPECT_EQ(order.late(), 0u);
  EXPECT_EQ(order.pending(), 0u);
}

TEST(TimeOrder, HoldsOnlyTheWindow) {
  TimeOrder order(1000);
  Event e;
  order.push(at(0, 1));
  order.push(at(500, 1));
  EXPECT_FALSE(order.pop_ready(e)) << "nothing is a window old yet";
  order.push(at(1000, 2));
  ASSERT_TRUE(order.pop_ready(e));
  EXPECT_EQ(e.time_ns, 0u);
  EXPECT_FALSE(order.pop_ready(e));
  EXPECT_EQ(order.pending(), 2u);
}

TEST(TimeOrder, PutsARecordOutOfOrderWithinItsThreadInPlace) {
  TimeOrder order(1000);
  const auto out = drain(order, {at(10, 1), at(30, 1), at(20, 1), at(40, 1)});
  EXPECT_EQ(out, (std::vector<std::uint64_t>{10, 20, 30, 40}));
  EXPECT_EQ(order.late(), 0u);
}

// A thread whose records run backwards (only a crafted file does that): each record moves back
// a bounded distance, not through the whole queue; every event still comes out, the ones left
// out of order counted late.
TEST(TimeOrder, AThreadRunningBackwardsMovesEachRecordABoundedDistance) {
  constexpr std::uint64_t kCount = 3 * TimeOrder::kMaxMoveBack;
  std::vector<Event> input;
  for (std::uint64_t i = 0; i < kCount; ++i) input.push_back(at(kCount - i, 1));
  TimeOrder order;
  const std::vector<std::uint64_t> out = drain(order, input);
  EXPECT_EQ(out.size(), kCount);
  EXPECT_GT(order.late(), 0u);
  std::vector<std::uint64_t> sorted = out;
  std::sort(sorted.begin(), sorted.end());
  for (std::uint64_t i = 0; i < kCount; ++i) ASSERT_EQ(sorted[i], i + 1);  // none lost
}

TEST(TimeOrder, CountsWhatArrivesAfterTheWindowAndWidensIt) {
  TimeOrder order(100, 10'000);
  const auto out = drain(order, {at(0, 1), at(1000, 1), at(2000, 1), at(50, 2), at(3000, 2),
                                 at(2500, 1), at(9000, 1), at(20'000, 1), at(1, 3)});
  EXPECT_EQ(out.size(), 9u);
  // 50 came after 1000 was released; 2500 was in time once the window had grown to 7800;
  // the window stops growing at its maximum, so 1 is late.
  EXPECT_EQ(order.late(), 2u);
  EXPECT_EQ(order.window_ns(), 10'000u);
}

TEST(TimeOrder, ReleasesEarlyWhenTooManyArePending) {
  TimeOrder order(UINT64_MAX / 2, UINT64_MAX / 2, 8);
  Event e;
  for (std::uint64_t i = 0; i < 9; ++i) order.push(at(i, 1));
  ASSERT_TRUE(order.pop_ready(e));
  EXPECT_EQ(e.time_ns, 0u);
  EXPECT_FALSE(order.pop_ready(e));
}

TEST(TimeOrder, RandomInterleavingsWithinTheWindowComeOutSorted) {
  std::mt19937_64 random(7);
  for (int round = 0; round < 20; ++round) {
    // Each thread's times increase; threads are cut into chunks written in random order
    // within one pass, as the recorder does.
    std::vector<std::vector<Event>> threads(1 + random() % 6);
    for (std::uint32_t t = 0; t < threads.size(); ++t) {
      std::uint64_t time = random() % 1000;
      for (int i = 0; i < 300; ++i) {
        time += random() % 1000;
        threads[t].push_back(at(time, t + 1));
      }
    }
    std::vector<Event> input;
    std::vector<std::size_t> next(threads.size());
    for (std::uint64_t pass_end = 10'000; input.size() < threads.size() * 300; pass_end += 10'000) {
      std::vector<std::size_t> turn(threads.size());
      for (std::size_t i = 0; i < turn.size(); ++i) turn[i] = i;
      std::shuffle(turn.begin(), turn.end(), random);
      for (const std::size_t t : turn) {
        while (next[t] < threads[t].size() && threads[t][next[t]].time_ns < pass_end) {
          input.push_back(threads[t][next[t]++]);
        }
      }
    }
    TimeOrder order(20'000);
    const auto out = drain(order, input);
    ASSERT_EQ(out.size(), input.size());
    EXPECT_TRUE(std::is_sorted(out.begin(), out.end())) << "round " << round;
    EXPECT_EQ(order.late(), 0u);
  }
}

}  // namespace
}  // namespace cudefrag::analyzer
