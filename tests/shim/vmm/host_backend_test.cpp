// What the host backend promises beyond the contract: HostStream ordering, the registry of live
// streams behind device_synchronize() and StreamRef checks, the call counters, and its stricter
// checks (host_backend.hpp).
#include "shim/vmm/host_backend.hpp"

#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <future>
#include <optional>
#include <thread>
#include <vector>

namespace cudefrag::vmm {
namespace {

std::unique_ptr<Backend> small_backend(DeviceOrdinal device = DeviceOrdinal{0}) {
  return make_host_backend(HostBackendOptions{device, KiB(64), MiB(4)});
}

TEST(HostStream, RunsWorkInOrder) {
  HostStream stream;
  std::vector<int> order;
  for (int i = 0; i < 1000; ++i) stream.enqueue([&order, i] { order.push_back(i); });
  stream.synchronize();
  ASSERT_EQ(order.size(), 1000u);
  for (int i = 0; i < 1000; ++i) EXPECT_EQ(order[static_cast<std::size_t>(i)], i);
}

TEST(HostStream, SynchronizeWaitsForBlockedWork) {
  HostStream stream;
  std::promise<void> gate;
  std::shared_future<void> opened = gate.get_future().share();
  std::atomic<bool> ran{false};
  stream.enqueue([opened, &ran] {
    opened.wait();
    ran = true;
  });
  std::thread opener([&gate] {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    gate.set_value();
  });
  stream.synchronize();
  EXPECT_TRUE(ran);
  opener.join();
}

TEST(HostStream, SynchronizeFromItsOwnWorkReturns) {
  HostStream stream;
  std::atomic<bool> ran{false};
  stream.enqueue([&] {
    stream.synchronize();
    ran = true;
  });
  stream.synchronize();
  EXPECT_TRUE(ran);
}

TEST(HostStream, DestructorRunsWhatIsQueued) {
  std::atomic<int> ran{0};
  {
    HostStream stream;
    for (int i = 0; i < 100; ++i) stream.enqueue([&ran] { ++ran; });
  }
  EXPECT_EQ(ran, 100);
}

TEST(HostBackend, RefusesBadOptions) {
  EXPECT_EQ(make_host_backend(HostBackendOptions{DeviceOrdinal{0}, Bytes{0}, MiB(4)}), nullptr);
  EXPECT_EQ(make_host_backend(HostBackendOptions{DeviceOrdinal{0}, Bytes{3 * 4096}, MiB(4)}),
            nullptr);
  EXPECT_EQ(make_host_backend(HostBackendOptions{DeviceOrdinal{0}, Bytes{2048}, MiB(4)}), nullptr);
  EXPECT_EQ(make_host_backend(HostBackendOptions{DeviceOrdinal{-1}, KiB(64), MiB(4)}), nullptr);
  EXPECT_NE(small_backend(), nullptr);
}

TEST(HostBackend, DeviceSynchronizeWaitsForStreamsItNeverSaw) {
  auto backend = small_backend();
  HostStream stream;
  std::promise<void> gate;
  std::shared_future<void> opened = gate.get_future().share();
  std::atomic<bool> ran{false};
  stream.enqueue([opened, &ran] {
    opened.wait();
    ran = true;
  });
  std::thread opener([&gate] {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    gate.set_value();
  });
  EXPECT_EQ(backend->device_synchronize(), Status::kOk);
  EXPECT_TRUE(ran);
  opener.join();
}

TEST(HostBackend, DeviceSynchronizeIgnoresStreamsOfOtherDevices) {
  auto backend = small_backend(DeviceOrdinal{0});
  HostStream other(DeviceOrdinal{1});
  std::promise<void> gate;
  std::shared_future<void> opened = gate.get_future().share();
  other.enqueue([opened] { opened.wait(); });

  auto synced = std::async(std::launch::async, [&] { return backend->device_synchronize(); });
  // A generous bound that only a hang reaches; the gate opens either way so nothing is left stuck.
  const bool returned = synced.wait_for(std::chrono::seconds(20)) == std::future_status::ready;
  gate.set_value();
  EXPECT_TRUE(returned);
  EXPECT_EQ(synced.get(), Status::kOk);
}

TEST(HostBackend, RefusesStreamsThatAreNotLiveHostStreamsOfItsDevice) {
  auto backend = small_backend(DeviceOrdinal{0});
  EventRef e;
  ASSERT_EQ(backend->event_create(&e), Status::kOk);
  HostStream other(DeviceOrdinal{1});
  EXPECT_EQ(backend->event_record(e, other.ref()), Status::kInvalidValue);
  int not_a_stream = 0;
  EXPECT_EQ(backend->event_record(e, StreamRef{&not_a_stream}), Status::kInvalidValue);
  StreamRef gone;
  {
    HostStream dead;
    gone = dead.ref();
  }
  EXPECT_EQ(backend->event_record(e, gone), Status::kInvalidValue);
  // The CUDA driver's special handles name the default stream.
  for (std::uintptr_t special : {std::uintptr_t{0}, std::uintptr_t{1}, std::uintptr_t{2}}) {
    EXPECT_EQ(backend->event_record(e, StreamRef{reinterpret_cast<void*>(special)}), Status::kOk);
  }
  HostStream own(DeviceOrdinal{0});
  EXPECT_EQ(backend->event_record(e, own.ref()), Status::kOk);
  EXPECT_EQ(backend->event_synchronize(e), Status::kOk);
  EXPECT_EQ(backend->event_destroy(e), Status::kOk);
}

TEST(HostBackend, CountsEveryCallFailedOnesIncluded) {
  auto backend = small_backend();
  const Bytes g = backend->granularity();
  DevicePtr r;
  PhysHandle h;
  ASSERT_EQ(backend->reserve(g * 2, Bytes{0}, &r), Status::kOk);
  ASSERT_EQ(backend->create(g * 2, Location::kDevice, &h), Status::kOk);
  ASSERT_EQ(backend->map(r, g * 2, h, Bytes{0}), Status::kOk);
  EXPECT_EQ(backend->map(r, g * 2, h, Bytes{0}), Status::kInvalidValue);
  ASSERT_EQ(backend->set_access(r, g * 2, std::array{DeviceOrdinal{0}}), Status::kOk);

  std::optional<HostBackendStats> s = host_backend_stats(*backend);
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->reserve, 1u);
  EXPECT_EQ(s->create, 1u);
  EXPECT_EQ(s->map, 2u);
  EXPECT_EQ(s->set_access, 1u);
  EXPECT_EQ(s->unmap, 0u);
  EXPECT_EQ(s->calls(), 5u);
  EXPECT_EQ(s->device_bytes, g * 2);
  EXPECT_EQ(s->live_handles, 1u);
  EXPECT_EQ(s->live_mappings, 1u);
  EXPECT_EQ(s->live_reservations, 1u);

  ASSERT_EQ(backend->release(h), Status::kOk);
  s = host_backend_stats(*backend);
  EXPECT_EQ(s->live_handles, 1u);  // still mapped
  EXPECT_EQ(s->device_bytes, g * 2);
  ASSERT_EQ(backend->unmap(r, g * 2), Status::kOk);
  ASSERT_EQ(backend->unreserve(r, g * 2), Status::kOk);
  s = host_backend_stats(*backend);
  EXPECT_EQ(s->device_bytes, Bytes{0});
  EXPECT_EQ(s->live_handles, 0u);
  EXPECT_EQ(s->live_mappings, 0u);
  EXPECT_EQ(s->live_reservations, 0u);
  EXPECT_EQ(s->calls(), 8u);
}

// Any other backend: host_backend_stats() must say it has no host stats.
class NotAHostBackend final : public Backend {
 public:
  DeviceOrdinal device() const override { return DeviceOrdinal{0}; }
  Bytes granularity() const override { return MiB(2); }
  Status reserve(Bytes, Bytes, DevicePtr*) override { return Status::kNotSupported; }
  Status unreserve(DevicePtr, Bytes) override { return Status::kNotSupported; }
  Status create(Bytes, Location, PhysHandle*) override { return Status::kNotSupported; }
  Status release(PhysHandle) override { return Status::kNotSupported; }
  Status map(DevicePtr, Bytes, PhysHandle, Bytes) override { return Status::kNotSupported; }
  Status unmap(DevicePtr, Bytes) override { return Status::kNotSupported; }
  Status set_access(DevicePtr, Bytes, std::span<const DeviceOrdinal>) override {
    return Status::kNotSupported;
  }
  Status mem_info(Bytes*, Bytes*) override { return Status::kNotSupported; }
  Status event_create(EventRef*) override { return Status::kNotSupported; }
  Status event_destroy(EventRef) override { return Status::kNotSupported; }
  Status event_record(EventRef, StreamRef) override { return Status::kNotSupported; }
  Status event_query(EventRef, bool*) override { return Status::kNotSupported; }
  Status event_synchronize(EventRef) override { return Status::kNotSupported; }
  Status device_synchronize() override { return Status::kNotSupported; }
};

TEST(HostBackend, StatsAreOnlyForHostBackends) {
  NotAHostBackend other;
  EXPECT_FALSE(host_backend_stats(other).has_value());
}

TEST(HostBackend, HostLocatedMemoryDoesNotCountAgainstCapacity) {
  auto backend = small_backend();  // 4 MiB "card"
  PhysHandle big;
  ASSERT_EQ(backend->create(MiB(64), Location::kHost, &big), Status::kOk);
  Bytes free;
  Bytes total;
  ASSERT_EQ(backend->mem_info(&free, &total), Status::kOk);
  EXPECT_EQ(free, MiB(4));
  EXPECT_EQ(host_backend_stats(*backend)->host_bytes, MiB(64));
  EXPECT_EQ(backend->release(big), Status::kOk);
  EXPECT_EQ(host_backend_stats(*backend)->host_bytes, Bytes{0});
}

TEST(HostBackend, UnreserveNeedsTheExactRangeAndNoMapping) {
  auto backend = small_backend();
  const Bytes g = backend->granularity();
  DevicePtr r;
  PhysHandle h;
  ASSERT_EQ(backend->reserve(g * 4, Bytes{0}, &r), Status::kOk);
  ASSERT_EQ(backend->create(g, Location::kDevice, &h), Status::kOk);
  ASSERT_EQ(backend->map(r + g, g, h, Bytes{0}), Status::kOk);
  EXPECT_EQ(backend->unreserve(r, g * 4), Status::kInvalidValue);  // still mapped
  EXPECT_EQ(backend->unreserve(r + g, g * 3), Status::kInvalidValue);
  ASSERT_EQ(backend->unmap(r + g, g), Status::kOk);
  EXPECT_EQ(backend->unreserve(r, g * 2), Status::kInvalidValue);
  EXPECT_EQ(backend->unreserve(r, g * 4), Status::kOk);
  EXPECT_EQ(backend->unreserve(r, g * 4), Status::kInvalidValue);  // already gone
  EXPECT_EQ(backend->release(h), Status::kOk);
}

TEST(HostBackend, UnmappedPagesAreInaccessibleAgain) {
  // The backend's default stream is a thread: re-execute the child instead of forking it as is.
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  auto backend = small_backend();
  const Bytes g = backend->granularity();
  DevicePtr r;
  PhysHandle h;
  ASSERT_EQ(backend->reserve(g, Bytes{0}, &r), Status::kOk);
  ASSERT_EQ(backend->create(g, Location::kDevice, &h), Status::kOk);
  ASSERT_EQ(backend->map(r, g, h, Bytes{0}), Status::kOk);
  ASSERT_EQ(backend->set_access(r, g, std::array{DeviceOrdinal{0}}), Status::kOk);
  *static_cast<volatile char*>(r.as_void()) = 1;
  ASSERT_EQ(backend->unmap(r, g), Status::kOk);
  EXPECT_DEATH(*static_cast<volatile char*>(r.as_void()) = 1, "");
  EXPECT_EQ(backend->release(h), Status::kOk);
  EXPECT_EQ(backend->unreserve(r, g), Status::kOk);
}

TEST(HostBackend, DestructorFreesWhatIsLeft) {
  auto backend = small_backend();
  const Bytes g = backend->granularity();
  DevicePtr r;
  PhysHandle h;
  EventRef e;
  ASSERT_EQ(backend->reserve(g * 2, Bytes{0}, &r), Status::kOk);
  ASSERT_EQ(backend->create(g * 2, Location::kDevice, &h), Status::kOk);
  ASSERT_EQ(backend->map(r, g * 2, h, Bytes{0}), Status::kOk);
  ASSERT_EQ(backend->event_create(&e), Status::kOk);
  backend.reset();  // leak checkers (ASan) see anything left behind
  SUCCEED();
}

}  // namespace
}  // namespace cudefrag::vmm
