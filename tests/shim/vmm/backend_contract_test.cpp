// The contract of backend.hpp, checked on every implementation this program is linked with
// (test_devices()): the host backend in CI, the CUDA backend on a GPU machine.
#include <atomic>
#include <chrono>
#include <future>
#include <thread>

#include "tests/shim/vmm/contract_fixture.hpp"

namespace cudefrag::vmm::testing {
namespace {

using BackendContract = ContractFixture;

TEST_P(BackendContract, GranularityIsAPowerOfTwo) {
  const std::uint64_t v = g().value;
  EXPECT_NE(v, 0u);
  EXPECT_EQ(v & (v - 1), 0u);
}

TEST_P(BackendContract, ReserveAlignsToGranularityOrToALargerAlignment) {
  DevicePtr a;
  ASSERT_EQ(backend().reserve(g() * 4, Bytes{0}, &a), Status::kOk);
  EXPECT_TRUE(Bytes{a.value}.is_aligned(g()));
  DevicePtr b;
  ASSERT_EQ(backend().reserve(g() * 4, g() * 16, &b), Status::kOk);
  EXPECT_TRUE(Bytes{b.value}.is_aligned(g() * 16));
  DevicePtr c;  // a smaller power of two still gets the granularity
  ASSERT_EQ(backend().reserve(g(), Bytes{4096}, &c), Status::kOk);
  EXPECT_TRUE(Bytes{c.value}.is_aligned(g()));
  EXPECT_EQ(backend().unreserve(a, g() * 4), Status::kOk);
  EXPECT_EQ(backend().unreserve(b, g() * 4), Status::kOk);
  EXPECT_EQ(backend().unreserve(c, g()), Status::kOk);
}

TEST_P(BackendContract, ReserveRefusesBadArguments) {
  DevicePtr out;
  EXPECT_EQ(backend().reserve(Bytes{0}, Bytes{0}, &out), Status::kInvalidValue);
  EXPECT_EQ(backend().reserve(g() + KiB(4), Bytes{0}, &out), Status::kInvalidValue);
  EXPECT_EQ(backend().reserve(g(), g() * 3, &out), Status::kInvalidValue);
  EXPECT_EQ(backend().reserve(g(), Bytes{0}, nullptr), Status::kInvalidValue);
}

TEST_P(BackendContract, CreateRefusesBadSizes) {
  PhysHandle h;
  EXPECT_EQ(backend().create(Bytes{0}, Location::kDevice, &h), Status::kInvalidValue);
  EXPECT_EQ(backend().create(g() + KiB(4), Location::kDevice, &h), Status::kInvalidValue);
  EXPECT_EQ(backend().create(g(), Location::kDevice, nullptr), Status::kInvalidValue);
}

TEST_P(BackendContract, MapRefusesBrokenRulesAndChangesNothing) {
  DevicePtr r;
  ASSERT_EQ(backend().reserve(g() * 4, Bytes{0}, &r), Status::kOk);
  PhysHandle h;
  ASSERT_EQ(backend().create(g() * 2, Location::kDevice, &h), Status::kOk);

  EXPECT_EQ(backend().map(r + KiB(4), g() * 2, h, Bytes{0}), Status::kInvalidValue);  // va
  EXPECT_EQ(backend().map(r, Bytes{0}, h, Bytes{0}), Status::kInvalidValue);          // size 0
  EXPECT_EQ(backend().map(r, g() + KiB(4), h, Bytes{0}), Status::kInvalidValue);      // size
  EXPECT_EQ(backend().map(r, g(), h, KiB(4)), Status::kInvalidValue);                 // offset
  if (device_->checks_every_rule()) {
    EXPECT_EQ(backend().map(r + g() * 3, g() * 2, h, Bytes{0}),
              Status::kInvalidValue);  // past the end of the reservation
    DevicePtr gone;
    ASSERT_EQ(backend().reserve(g() * 2, Bytes{0}, &gone), Status::kOk);
    ASSERT_EQ(backend().unreserve(gone, g() * 2), Status::kOk);
    EXPECT_EQ(backend().map(gone, g() * 2, h, Bytes{0}), Status::kInvalidValue);  // not reserved
    EXPECT_EQ(backend().map(r, g() * 2, PhysHandle{h.value + 1000}, Bytes{0}),
              Status::kInvalidValue);  // no such handle
  }

  ASSERT_EQ(backend().map(r, g() * 2, h, Bytes{0}), Status::kOk);
  EXPECT_EQ(backend().map(r + g(), g() * 2, h, Bytes{0}), Status::kInvalidValue);  // mapped
  EXPECT_EQ(backend().map(r, g() * 2, h, Bytes{0}), Status::kInvalidValue);        // mapped
  // Nothing above took the free half of the reservation.
  ASSERT_EQ(backend().map(r + g() * 2, g() * 2, h, Bytes{0}), Status::kOk);
  ASSERT_EQ(backend().set_access(r, g() * 4, std::array{backend().device()}), Status::kOk);
  fill(r, g() * 2, 1);
  EXPECT_TRUE(holds(r + g() * 2, g() * 2, 1));

  EXPECT_EQ(backend().unmap(r, g() * 4), Status::kOk);
  EXPECT_EQ(backend().release(h), Status::kOk);
  EXPECT_EQ(backend().unreserve(r, g() * 4), Status::kOk);
}

TEST_P(BackendContract, MapsWholeHandlesOnly) {
  PhysHandle h;
  ASSERT_EQ(backend().create(g() * 2, Location::kDevice, &h), Status::kOk);
  DevicePtr r;
  ASSERT_EQ(backend().reserve(g() * 4, Bytes{0}, &r), Status::kOk);
  EXPECT_EQ(backend().map(r, g(), h, g()), Status::kNotSupported);           // second half
  EXPECT_EQ(backend().map(r, g(), h, Bytes{0}), Status::kNotSupported);      // first half
  EXPECT_EQ(backend().map(r, g() * 3, h, Bytes{0}), Status::kNotSupported);  // past its end
  ASSERT_EQ(backend().map(r, g() * 2, h, Bytes{0}), Status::kOk);
  EXPECT_EQ(backend().unmap(r, g() * 2), Status::kOk);
  EXPECT_EQ(backend().release(h), Status::kOk);
  EXPECT_EQ(backend().unreserve(r, g() * 4), Status::kOk);
}

TEST_P(BackendContract, UnmapAndSetAccessTakeWholeMappings) {
  DevicePtr r;
  ASSERT_EQ(backend().reserve(g() * 8, Bytes{0}, &r), Status::kOk);
  PhysHandle a;
  PhysHandle b;
  ASSERT_EQ(backend().create(g() * 2, Location::kDevice, &a), Status::kOk);
  ASSERT_EQ(backend().create(g() * 2, Location::kDevice, &b), Status::kOk);
  ASSERT_EQ(backend().map(r, g() * 2, a, Bytes{0}), Status::kOk);
  ASSERT_EQ(backend().map(r + g() * 2, g() * 2, b, Bytes{0}), Status::kOk);
  const std::array devices{backend().device()};

  EXPECT_EQ(backend().set_access(r, g(), devices), Status::kInvalidValue);      // cuts a
  EXPECT_EQ(backend().set_access(r, g() * 6, devices), Status::kInvalidValue);  // unmapped tail
  EXPECT_EQ(backend().set_access(r, g() * 4, {}), Status::kInvalidValue);       // nobody
  EXPECT_EQ(backend().unmap(r + g(), g() * 2), Status::kInvalidValue);          // cuts both
  EXPECT_EQ(backend().unreserve(r, g() * 4), Status::kInvalidValue);            // size
  if (device_->checks_every_rule()) {
    EXPECT_EQ(backend().unmap(r, g() * 6), Status::kInvalidValue);            // unmapped tail
    EXPECT_EQ(backend().unmap(r + g() * 4, g() * 2), Status::kInvalidValue);  // nothing mapped
  }

  // One call may cover several whole mappings.
  ASSERT_EQ(backend().set_access(r, g() * 4, devices), Status::kOk);
  fill(r, g() * 4, 3);
  EXPECT_TRUE(holds(r, g() * 4, 3));
  EXPECT_EQ(backend().unmap(r, g() * 4), Status::kOk);
  EXPECT_EQ(backend().release(a), Status::kOk);
  EXPECT_EQ(backend().release(b), Status::kOk);
  EXPECT_EQ(backend().unreserve(r, g() * 8), Status::kOk);
}

TEST_P(BackendContract, MappedBytesRoundTrip) {
  DevicePtr r;
  ASSERT_EQ(backend().reserve(g() * 2, Bytes{0}, &r), Status::kOk);
  PhysHandle h;
  ASSERT_EQ(backend().create(g() * 2, Location::kDevice, &h), Status::kOk);
  ASSERT_EQ(backend().map(r, g() * 2, h, Bytes{0}), Status::kOk);
  ASSERT_EQ(backend().set_access(r, g() * 2, std::array{backend().device()}), Status::kOk);
  fill(r, g() * 2, 4);
  EXPECT_TRUE(holds(r, g() * 2, 4));
  EXPECT_FALSE(holds(r, g() * 2, 5));  // the check itself can fail
  EXPECT_EQ(backend().unmap(r, g() * 2), Status::kOk);
  EXPECT_EQ(backend().release(h), Status::kOk);
  EXPECT_EQ(backend().unreserve(r, g() * 2), Status::kOk);
}

TEST_P(BackendContract, AliasesSeeTheSameBytes) {
  PhysHandle h;
  ASSERT_EQ(backend().create(g() * 2, Location::kDevice, &h), Status::kOk);
  DevicePtr a;
  DevicePtr b;
  ASSERT_EQ(backend().reserve(g() * 2, Bytes{0}, &a), Status::kOk);
  ASSERT_EQ(backend().reserve(g() * 2, Bytes{0}, &b), Status::kOk);
  ASSERT_EQ(backend().map(a, g() * 2, h, Bytes{0}), Status::kOk);
  ASSERT_EQ(backend().map(b, g() * 2, h, Bytes{0}), Status::kOk);
  ASSERT_EQ(backend().set_access(a, g() * 2, std::array{backend().device()}), Status::kOk);
  ASSERT_EQ(backend().set_access(b, g() * 2, std::array{backend().device()}), Status::kOk);

  fill(a, g() * 2, 6);
  EXPECT_TRUE(holds(b, g() * 2, 6));
  fill(b + g(), g(), 7);
  EXPECT_TRUE(holds(a + g(), g(), 7));
  EXPECT_TRUE(holds(a, g(), 6));

  EXPECT_EQ(backend().unmap(a, g() * 2), Status::kOk);
  EXPECT_EQ(backend().unmap(b, g() * 2), Status::kOk);
  EXPECT_EQ(backend().release(h), Status::kOk);
  EXPECT_EQ(backend().unreserve(a, g() * 2), Status::kOk);
  EXPECT_EQ(backend().unreserve(b, g() * 2), Status::kOk);
}

TEST_P(BackendContract, BytesSurviveUnmapOfOneAliasAndRemapElsewhere) {
  PhysHandle h;
  ASSERT_EQ(backend().create(g() * 2, Location::kDevice, &h), Status::kOk);
  DevicePtr a;
  DevicePtr b;
  ASSERT_EQ(backend().reserve(g() * 2, Bytes{0}, &a), Status::kOk);
  ASSERT_EQ(backend().reserve(g() * 4, Bytes{0}, &b), Status::kOk);
  ASSERT_EQ(backend().map(a, g() * 2, h, Bytes{0}), Status::kOk);
  ASSERT_EQ(backend().set_access(a, g() * 2, std::array{backend().device()}), Status::kOk);
  fill(a, g() * 2, 8);
  ASSERT_EQ(backend().unmap(a, g() * 2), Status::kOk);

  // Remapped behind a different address, at a different place in a larger range.
  ASSERT_EQ(backend().map(b + g() * 2, g() * 2, h, Bytes{0}), Status::kOk);
  ASSERT_EQ(backend().set_access(b + g() * 2, g() * 2, std::array{backend().device()}),
            Status::kOk);
  EXPECT_TRUE(holds(b + g() * 2, g() * 2, 8));
  // And back at the first address, next to it.
  ASSERT_EQ(backend().map(a, g() * 2, h, Bytes{0}), Status::kOk);
  ASSERT_EQ(backend().set_access(a, g() * 2, std::array{backend().device()}), Status::kOk);
  EXPECT_TRUE(holds(a, g() * 2, 8));

  EXPECT_EQ(backend().unmap(a, g() * 2), Status::kOk);
  EXPECT_EQ(backend().unmap(b + g() * 2, g() * 2), Status::kOk);
  EXPECT_EQ(backend().release(h), Status::kOk);
  EXPECT_EQ(backend().unreserve(a, g() * 2), Status::kOk);
  EXPECT_EQ(backend().unreserve(b, g() * 4), Status::kOk);
}

TEST_P(BackendContract, ReleaseWhileMappedFreesAtTheLastUnmap) {
  Bytes free0;
  Bytes total;
  ASSERT_EQ(backend().mem_info(&free0, &total), Status::kOk);
  const Bytes size = g() * 32;
  PhysHandle h;
  ASSERT_EQ(backend().create(size, Location::kDevice, &h), Status::kOk);
  DevicePtr a;
  DevicePtr b;
  ASSERT_EQ(backend().reserve(size, Bytes{0}, &a), Status::kOk);
  ASSERT_EQ(backend().reserve(size, Bytes{0}, &b), Status::kOk);
  ASSERT_EQ(backend().map(a, size, h, Bytes{0}), Status::kOk);
  ASSERT_EQ(backend().map(b, size, h, Bytes{0}), Status::kOk);
  ASSERT_EQ(backend().set_access(a, size, std::array{backend().device()}), Status::kOk);
  ASSERT_EQ(backend().set_access(b, size, std::array{backend().device()}), Status::kOk);
  ASSERT_EQ(backend().release(h), Status::kOk);

  fill(a, size, 9);
  EXPECT_TRUE(holds(b, size, 9));
  if (device_->checks_every_rule()) {
    EXPECT_EQ(backend().release(h), Status::kInvalidValue);
    EXPECT_EQ(backend().map(a, size, h, Bytes{0}), Status::kInvalidValue);
  }
  Bytes free1;
  ASSERT_EQ(backend().mem_info(&free1, &total), Status::kOk);
  ASSERT_EQ(backend().unmap(a, size), Status::kOk);
  EXPECT_TRUE(holds(b, size, 9));  // the other mapping keeps the memory
  ASSERT_EQ(backend().unmap(b, size), Status::kOk);
  Bytes free2;
  ASSERT_EQ(backend().mem_info(&free2, &total), Status::kOk);
  if (device_->exact_mem_info()) {
    EXPECT_EQ(free1 + size, free0);
    EXPECT_EQ(free2, free0);
  } else {
    EXPECT_GE(free2.value, free1.value + size.value / 2);
  }
  EXPECT_EQ(backend().unreserve(a, size), Status::kOk);
  EXPECT_EQ(backend().unreserve(b, size), Status::kOk);
}

TEST_P(BackendContract, MemInfoCountsCreatedMemory) {
  Bytes free0;
  Bytes total;
  ASSERT_EQ(backend().mem_info(&free0, &total), Status::kOk);
  EXPECT_GT(total.value, 0u);
  EXPECT_LE(free0, total);
  EXPECT_EQ(backend().mem_info(nullptr, &total), Status::kInvalidValue);

  const Bytes size = g() * 32;
  PhysHandle h;
  ASSERT_EQ(backend().create(size, Location::kDevice, &h), Status::kOk);
  Bytes free1;
  ASSERT_EQ(backend().mem_info(&free1, &total), Status::kOk);
  if (device_->exact_mem_info()) {
    EXPECT_EQ(free1 + size, free0);
  } else {
    EXPECT_GE(free0.value, free1.value + size.value / 2);
  }
  EXPECT_EQ(backend().release(h), Status::kOk);
}

TEST_P(BackendContract, CreateBeyondCapacityIsOutOfMemory) {
  Bytes free;
  Bytes total;
  ASSERT_EQ(backend().mem_info(&free, &total), Status::kOk);
  PhysHandle h;
  EXPECT_EQ(backend().create(total.align_up(g()) + g(), Location::kDevice, &h),
            Status::kOutOfMemory);
  if (device_->exact_mem_info()) {
    // Exactly the capacity fits, and then nothing more.
    ASSERT_EQ(backend().create(free, Location::kDevice, &h), Status::kOk);
    PhysHandle more;
    EXPECT_EQ(backend().create(g(), Location::kDevice, &more), Status::kOutOfMemory);
    EXPECT_EQ(backend().release(h), Status::kOk);
    ASSERT_EQ(backend().create(g(), Location::kDevice, &more), Status::kOk);
    EXPECT_EQ(backend().release(more), Status::kOk);
  }
}

TEST_P(BackendContract, HostLocatedMemoryMapsLikeDeviceMemoryOrIsNotSupported) {
  PhysHandle h;
  const Status created = backend().create(g() * 2, Location::kHost, &h);
  if (created == Status::kNotSupported) GTEST_SKIP() << "host-located memory not supported";
  ASSERT_EQ(created, Status::kOk);
  DevicePtr r;
  ASSERT_EQ(backend().reserve(g() * 2, Bytes{0}, &r), Status::kOk);
  ASSERT_EQ(backend().map(r, g() * 2, h, Bytes{0}), Status::kOk);
  ASSERT_EQ(backend().set_access(r, g() * 2, std::array{backend().device()}), Status::kOk);
  fill(r, g() * 2, 10);
  EXPECT_TRUE(holds(r, g() * 2, 10));
  EXPECT_EQ(backend().unmap(r, g() * 2), Status::kOk);
  EXPECT_EQ(backend().release(h), Status::kOk);
  EXPECT_EQ(backend().unreserve(r, g() * 2), Status::kOk);
}

TEST_P(BackendContract, EventsCompleteInStreamOrder) {
  EventRef first;
  EventRef second;
  ASSERT_EQ(backend().event_create(&first), Status::kOk);
  ASSERT_EQ(backend().event_create(&second), Status::kOk);
  std::promise<void> gate;
  std::shared_future<void> opened = gate.get_future().share();
  std::atomic<bool> ran{false};

  device_->enqueue([opened] { opened.wait(); });
  ASSERT_EQ(backend().event_record(first, device_->stream()), Status::kOk);
  device_->enqueue([&ran] { ran = true; });
  ASSERT_EQ(backend().event_record(second, device_->stream()), Status::kOk);

  bool done = true;
  ASSERT_EQ(backend().event_query(first, &done), Status::kOk);
  EXPECT_FALSE(done);
  ASSERT_EQ(backend().event_query(second, &done), Status::kOk);
  EXPECT_FALSE(done);
  EXPECT_FALSE(ran);

  gate.set_value();
  ASSERT_EQ(backend().event_synchronize(second), Status::kOk);
  EXPECT_TRUE(ran);
  ASSERT_EQ(backend().event_query(first, &done), Status::kOk);
  EXPECT_TRUE(done);
  ASSERT_EQ(backend().event_query(second, &done), Status::kOk);
  EXPECT_TRUE(done);
  EXPECT_EQ(backend().event_destroy(first), Status::kOk);
  EXPECT_EQ(backend().event_destroy(second), Status::kOk);
}

TEST_P(BackendContract, EventReportsItsLatestRecordOnly) {
  EventRef e;
  ASSERT_EQ(backend().event_create(&e), Status::kOk);
  bool done = false;
  ASSERT_EQ(backend().event_query(e, &done), Status::kOk);
  EXPECT_TRUE(done);  // never recorded: nothing to wait for
  ASSERT_EQ(backend().event_record(e, StreamRef{}), Status::kOk);
  ASSERT_EQ(backend().event_synchronize(e), Status::kOk);
  ASSERT_EQ(backend().event_query(e, &done), Status::kOk);
  EXPECT_TRUE(done);

  std::promise<void> gate;
  std::shared_future<void> opened = gate.get_future().share();
  device_->enqueue([opened] { opened.wait(); });
  ASSERT_EQ(backend().event_record(e, device_->stream()), Status::kOk);
  ASSERT_EQ(backend().event_query(e, &done), Status::kOk);
  EXPECT_FALSE(done);
  gate.set_value();
  ASSERT_EQ(backend().event_synchronize(e), Status::kOk);
  EXPECT_EQ(backend().event_destroy(e), Status::kOk);
}

TEST_P(BackendContract, DestroyingAPendingEventIsSafe) {
  EventRef e;
  ASSERT_EQ(backend().event_create(&e), Status::kOk);
  std::promise<void> gate;
  std::shared_future<void> opened = gate.get_future().share();
  device_->enqueue([opened] { opened.wait(); });
  ASSERT_EQ(backend().event_record(e, device_->stream()), Status::kOk);
  EXPECT_EQ(backend().event_destroy(e), Status::kOk);
  gate.set_value();
  EXPECT_EQ(backend().device_synchronize(), Status::kOk);
}

TEST_P(BackendContract, DeviceSynchronizeWaitsForEveryStream) {
  std::promise<void> gate;
  std::shared_future<void> opened = gate.get_future().share();
  std::atomic<bool> ran{false};
  device_->enqueue([opened, &ran] {
    opened.wait();
    ran = true;
  });
  // Opened from another thread while device_synchronize() is (very likely) already waiting.
  std::thread opener([&gate] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    gate.set_value();
  });
  EXPECT_EQ(backend().device_synchronize(), Status::kOk);
  EXPECT_TRUE(ran);
  opener.join();
}

TEST_P(BackendContract, UnknownEventsAreRefused) {
  if (!device_->checks_every_rule()) GTEST_SKIP() << "the driver takes events as pointers";
  EventRef e;
  ASSERT_EQ(backend().event_create(&e), Status::kOk);
  ASSERT_EQ(backend().event_destroy(e), Status::kOk);
  bool done = false;
  EXPECT_EQ(backend().event_query(e, &done), Status::kInvalidValue);
  EXPECT_EQ(backend().event_record(e, StreamRef{}), Status::kInvalidValue);
  EXPECT_EQ(backend().event_synchronize(e), Status::kInvalidValue);
  EXPECT_EQ(backend().event_destroy(e), Status::kInvalidValue);
  EXPECT_EQ(backend().event_create(nullptr), Status::kInvalidValue);
}

INSTANTIATE_TEST_SUITE_P(Backends, BackendContract, ::testing::ValuesIn(test_devices()),
                         device_name);

}  // namespace
}  // namespace cudefrag::vmm::testing
