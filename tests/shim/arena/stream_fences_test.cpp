#include "shim/arena/stream_fences.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "shim/vmm/host_backend.hpp"

namespace cudefrag::arena {
namespace {

std::unique_ptr<vmm::Backend> host() {
  return vmm::make_host_backend({});
}

TEST(StreamFences, SameStreamReusesAtOnceOthersWaitForTheFence) {
  auto backend = host();
  StreamFences f(*backend);
  vmm::HostStream s1;
  vmm::HostStream s2;
  const StreamIndex a = f.index_of(s1.ref());
  const StreamIndex b = f.index_of(s2.ref());
  ASSERT_NE(a, b);
  EXPECT_EQ(f.index_of(s1.ref()), a);

  const FenceTag tag = f.tag_free(a);
  EXPECT_TRUE(f.reusable(tag, a));
  EXPECT_FALSE(f.reusable(tag, b));
  EXPECT_FALSE(f.reusable(tag, kAnyStream));
  EXPECT_TRUE(f.has_unfenced());

  ASSERT_EQ(f.wait_for_all(), vmm::Status::kOk);
  EXPECT_TRUE(f.reusable(tag, b));
  EXPECT_TRUE(f.reusable(tag, kAnyStream));
  EXPECT_FALSE(f.has_unfenced());
  EXPECT_EQ(f.counts().events_recorded, 1u);
  EXPECT_EQ(f.counts().device_syncs, 0u);
}

TEST(StreamFences, AnEventCoversOnlyWorkQueuedBeforeIt) {
  auto backend = host();
  StreamFences f(*backend);
  vmm::HostStream s;
  const StreamIndex a = f.index_of(s.ref());
  std::atomic<bool> go{false};
  s.enqueue([&] {
    while (!go.load()) std::this_thread::sleep_for(std::chrono::microseconds(50));
  });
  const FenceTag tag = f.tag_free(a);
  EXPECT_FALSE(f.poll());  // records an event behind the blocked work
  EXPECT_FALSE(f.poll());
  EXPECT_FALSE(f.fenced(tag));
  go = true;
  s.synchronize();
  EXPECT_TRUE(f.poll());
  EXPECT_TRUE(f.fenced(tag));
  EXPECT_EQ(f.counts().events_recorded, 1u);
}

TEST(StreamFences, ParkedFreesNeedADeviceSynchronize) {
  auto backend = host();
  StreamFences f(*backend);
  const FenceTag tag = f.tag_free(kParked);
  EXPECT_FALSE(f.reusable(tag, kParked));
  EXPECT_FALSE(f.fenced(tag));
  EXPECT_FALSE(f.poll());
  EXPECT_FALSE(f.fenced(tag));
  EXPECT_TRUE(f.parked_unfenced());
  ASSERT_EQ(f.wait_for_all(), vmm::Status::kOk);
  EXPECT_TRUE(f.fenced(tag));
  EXPECT_EQ(f.counts().device_syncs, 1u);
}

TEST(StreamFences, RetireWaitsForTheStream) {
  auto backend = host();
  StreamFences f(*backend);
  auto s = std::make_unique<vmm::HostStream>();
  const StreamIndex a = f.index_of(s->ref());
  std::atomic<bool> ran{false};
  s->enqueue([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    ran = true;
  });
  const FenceTag tag = f.tag_free(a);
  ASSERT_EQ(f.retire(s->ref()), vmm::Status::kOk);
  EXPECT_TRUE(ran.load());
  EXPECT_TRUE(f.fenced(tag));
}

TEST(StreamFences, AnInvalidStreamFallsBackToADeviceSynchronize) {
  auto backend = host();
  StreamFences f(*backend);
  int not_a_stream = 0;
  const StreamIndex a = f.index_of(vmm::StreamRef{&not_a_stream});
  const FenceTag tag = f.tag_free(a);
  EXPECT_FALSE(f.poll());  // the record fails
  const std::uint64_t records = vmm::host_backend_stats(*backend)->event_record;
  EXPECT_FALSE(f.poll());  // and is not tried again at every poll
  EXPECT_EQ(vmm::host_backend_stats(*backend)->event_record, records);
  ASSERT_EQ(f.wait_for_all(), vmm::Status::kOk);
  EXPECT_TRUE(f.fenced(tag));
  EXPECT_EQ(f.counts().device_syncs, 1u);
}

TEST(StreamFences, AFullTableParksNewStreams) {
  auto backend = host();
  StreamFences f(*backend);
  std::vector<int> fake(StreamFences::kCapacity + 8);
  std::size_t parked = 0;
  for (int& x : fake) {
    if (f.index_of(vmm::StreamRef{&x}) == kParked) ++parked;
  }
  EXPECT_EQ(parked, fake.size() - (StreamFences::kCapacity - 1));
}

}  // namespace
}  // namespace cudefrag::arena
