#include "shim/trace/thread_buffer.hpp"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

namespace cudefrag::trace {
namespace {

// A record of `size` bytes whose payload bytes all equal `fill`.
std::vector<std::byte> make_record(std::uint16_t size, std::uint8_t fill) {
  std::vector<std::byte> r(size, std::byte{fill});
  const format::RecordHeader h{format::RecordType::kMark, size};
  std::memcpy(r.data(), &h, sizeof h);
  return r;
}

std::vector<std::vector<std::byte>> drain_all(ThreadBuffer& b) {
  std::vector<std::vector<std::byte>> out;
  b.drain(b.committed(),
          [&](std::span<const std::byte> r) { out.emplace_back(r.begin(), r.end()); });
  return out;
}

constexpr std::size_t kCapacity = 1 << 17;

TEST(ThreadBuffer, RecordsComeOutWholeAndInOrderAcrossTheWrap) {
  ThreadBuffer b(kCapacity, 7);
  EXPECT_EQ(b.thread_id(), 7u);
  std::uint8_t next_fill = 0;
  std::uint8_t expected_fill = 0;
  // Odd sizes make the ring wrap at every possible distance from its end.
  for (int round = 0; round < 200; ++round) {
    for (int i = 0; i < 37; ++i) {
      const auto r =
          make_record(static_cast<std::uint16_t>(12 + (round * 37 + i) % 3001), next_fill);
      ASSERT_TRUE(b.try_append(std::span(r).first(10), std::span(r).subspan(10)));
      ++next_fill;
    }
    for (const auto& r : drain_all(b)) {
      format::RecordHeader h;
      std::memcpy(&h, r.data(), sizeof h);
      ASSERT_EQ(h.size, r.size());
      for (std::size_t k = sizeof h; k < r.size(); ++k) ASSERT_EQ(r[k], std::byte{expected_fill});
      ++expected_fill;
    }
    ASSERT_TRUE(b.empty());
  }
  EXPECT_EQ(next_fill, expected_fill);
}

TEST(ThreadBuffer, FullRingRefusesUntilDrained) {
  ThreadBuffer b(kCapacity, 1);
  const auto r = make_record(1000, 1);
  std::size_t appended = 0;
  while (b.try_append(r)) ++appended;
  EXPECT_EQ(appended, kCapacity / 1000);
  EXPECT_EQ(drain_all(b).size(), appended);
  EXPECT_TRUE(b.try_append(r));
}

TEST(ThreadBuffer, AsksForTheWriterOncePerDrainWhenHalfFull) {
  ThreadBuffer b(kCapacity, 1);
  const auto r = make_record(1024, 1);
  int wakes = 0;
  for (std::size_t i = 0; i < kCapacity / 1024 - 1; ++i) {
    ASSERT_TRUE(b.try_append(r));
    wakes += b.should_wake_writer() ? 1 : 0;
  }
  EXPECT_EQ(wakes, 1);
  drain_all(b);
  EXPECT_FALSE(b.should_wake_writer());
}

TEST(ThreadBuffer, ProducerAndConsumerOnTwoThreads) {
  ThreadBuffer b(kCapacity, 1);
  constexpr std::uint32_t kRecords = 200000;
  std::thread producer([&] {
    for (std::uint32_t i = 0; i < kRecords; ++i) {
      std::array<std::byte, 12> r{};
      const format::RecordHeader h{format::RecordType::kMark, 12};
      std::memcpy(r.data(), &h, sizeof h);
      std::memcpy(r.data() + 4, &i, sizeof i);
      while (!b.try_append(r)) std::this_thread::yield();
    }
  });
  std::uint32_t expected = 0;
  while (expected < kRecords) {
    b.drain(b.committed(), [&](std::span<const std::byte> r) {
      std::uint32_t v;
      std::memcpy(&v, r.data() + 4, sizeof v);
      ASSERT_EQ(v, expected);
      ++expected;
    });
  }
  producer.join();
}

TEST(BufferRegistry, FreesBuffersOfGoneThreadsOnceDrained) {
  BufferRegistry registry(kCapacity);
  auto held = registry.add(1);
  std::weak_ptr<ThreadBuffer> watch = held;
  ASSERT_TRUE(held->try_append(make_record(8, 0)));
  held->mark_orphaned();
  held.reset();
  registry.reclaim();
  ASSERT_FALSE(watch.expired()) << "not drained yet";
  std::vector<BufferRegistry::Pending> pending;
  registry.snapshot(pending);
  ASSERT_EQ(pending.size(), 1u);
  pending[0].buffer->drain(pending[0].until, [](auto) {});
  pending.clear();
  registry.reclaim();
  EXPECT_TRUE(watch.expired());
}

}  // namespace
}  // namespace cudefrag::trace
