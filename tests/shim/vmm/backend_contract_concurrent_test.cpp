// The contract's "all methods are thread-safe", on every implementation this program is linked
// with: many threads reserving, creating, mapping and recording events at once. Run under
// ThreadSanitizer (label `concurrent`).
#include <thread>
#include <vector>

#include "tests/shim/vmm/contract_fixture.hpp"

namespace cudefrag::vmm::testing {
namespace {

using BackendContractConcurrent = ContractFixture;

constexpr int kThreads = 8;
constexpr int kRounds = 12;

TEST_P(BackendContractConcurrent, ManyThreadsMapAtOnce) {
  Bytes free0;
  Bytes total;
  ASSERT_EQ(backend().mem_info(&free0, &total), Status::kOk);
  // One range shared by all threads (each maps into its own slots of it), so the bookkeeping of
  // one reservation is touched from every thread.
  const Bytes slot = g() * 2;
  DevicePtr shared;
  ASSERT_EQ(backend().reserve(slot * (kThreads * 2), Bytes{0}, &shared), Status::kOk);

  std::vector<int> failures(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      int& failed = failures[static_cast<std::size_t>(t)];
      const std::array devices{backend().device()};
      for (int round = 0; round < kRounds; ++round) {
        const auto seed = static_cast<std::uint8_t>(t * kRounds + round);
        DevicePtr own;
        PhysHandle h;
        const DevicePtr in_shared = shared + slot * static_cast<std::uint64_t>(t * 2 + round % 2);
        if (backend().reserve(slot, Bytes{0}, &own) != Status::kOk ||
            backend().create(slot, Location::kDevice, &h) != Status::kOk ||
            backend().map(own, slot, h, Bytes{0}) != Status::kOk ||
            backend().map(in_shared, slot, h, Bytes{0}) != Status::kOk ||
            backend().set_access(own, slot, devices) != Status::kOk ||
            backend().set_access(in_shared, slot, devices) != Status::kOk) {
          ++failed;
          return;
        }
        fill(own, slot, seed);
        if (!holds(in_shared, slot, seed)) ++failed;
        if (backend().release(h) != Status::kOk || backend().unmap(own, slot) != Status::kOk ||
            backend().unmap(in_shared, slot) != Status::kOk ||
            backend().unreserve(own, slot) != Status::kOk) {
          ++failed;
          return;
        }
      }
    });
  }
  for (auto& thread : threads) thread.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(failures[static_cast<std::size_t>(t)], 0) << t;
  EXPECT_EQ(backend().unreserve(shared, slot * (kThreads * 2)), Status::kOk);
  Bytes free1;
  ASSERT_EQ(backend().mem_info(&free1, &total), Status::kOk);
  if (device_->exact_mem_info()) {
    EXPECT_EQ(free1, free0);
  }
}

TEST_P(BackendContractConcurrent, ManyThreadsRecordAndWaitOnEvents) {
  std::vector<int> failures(kThreads, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      int& failed = failures[static_cast<std::size_t>(t)];
      EventRef e;
      if (backend().event_create(&e) != Status::kOk) {
        ++failed;
        return;
      }
      for (int round = 0; round < kRounds; ++round) {
        const StreamRef stream = round % 2 == 0 ? device_->stream() : StreamRef{};
        bool done = false;
        if (backend().event_record(e, stream) != Status::kOk ||
            backend().event_synchronize(e) != Status::kOk ||
            backend().event_query(e, &done) != Status::kOk || !done) {
          ++failed;
        }
        if (round % 4 == 3 && backend().device_synchronize() != Status::kOk) ++failed;
      }
      if (backend().event_destroy(e) != Status::kOk) ++failed;
    });
  }
  for (auto& thread : threads) thread.join();
  for (int t = 0; t < kThreads; ++t) EXPECT_EQ(failures[static_cast<std::size_t>(t)], 0) << t;
}

INSTANTIATE_TEST_SUITE_P(Backends, BackendContractConcurrent, ::testing::ValuesIn(test_devices()),
                         device_name);

}  // namespace
}  // namespace cudefrag::vmm::testing
