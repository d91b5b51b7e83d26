// Arena mode behind the hooks, without a GPU: the hooks linked into this test, in front of the
// fake libcudart (linked) and libcuda (opened by path), with every device's arena built on the
// host backend. Each family's routing, what the program is told about memory, and the calls the
// arena leaves to CUDA. Runs under ThreadSanitizer too (label concurrent).
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include "shim/hooks/arenas.hpp"
#include "shim/hooks/counters.hpp"
#include "shim/hooks/dispatch.hpp"
#include "shim/hooks/exports.hpp"
#include "shim/hooks/hook_table.hpp"
#include "shim/hooks/shim_state.hpp"
#include "shim/trace/cudefrag.h"
#include "shim/vmm/forwarding_backend.hpp"
#include "shim/vmm/host_backend.hpp"
#include "tests/shim/hooks/fake/fake_control.hpp"

extern "C" cudaError_t cudaGetLastError();

namespace cudefrag::hooks {
namespace {

constexpr std::size_t kMiB = std::size_t{1} << 20;
// What the fake driver's cuMemGetInfo reports.
constexpr std::size_t kDriverFree = std::size_t{1} << 30;
constexpr std::size_t kDriverTotal = std::size_t{2} << 30;

struct FakeDriver {
  void* handle = nullptr;
  std::uint64_t (*calls)(const char*) = nullptr;
  void (*set_device)(int) = nullptr;
  void (*set_capturing)(int) = nullptr;
  void (*fail_creates)(int) = nullptr;
};

const FakeDriver& fake_driver() {
  static const FakeDriver d = [] {
    FakeDriver f;
    f.handle = dlopen(CUDEFRAG_TEST_FAKE_DIR "/libcuda.so.1", RTLD_NOW | RTLD_GLOBAL);
    if (f.handle != nullptr) {
      f.calls = reinterpret_cast<decltype(f.calls)>(dlsym(f.handle, "fake_cuda_calls"));
      f.set_device =
          reinterpret_cast<decltype(f.set_device)>(dlsym(f.handle, "fake_cuda_set_device"));
      f.set_capturing =
          reinterpret_cast<decltype(f.set_capturing)>(dlsym(f.handle, "fake_cuda_set_capturing"));
      f.fail_creates =
          reinterpret_cast<decltype(f.fail_creates)>(dlsym(f.handle, "fake_cuda_fail_creates"));
    }
    return f;
  }();
  return d;
}

std::unique_ptr<vmm::Backend> host_backend(DeviceOrdinal device, vmm::Status* why) {
  vmm::HostBackendOptions o;
  o.device = device;
  o.capacity = MiB(512);
  auto b = vmm::make_host_backend(o);
  if (b == nullptr && why != nullptr) *why = vmm::Status::kInvalidValue;
  return b;
}

// The host backend, remembering which devices each set_access call granted (peer access).
class AccessRecorder final : public vmm::ForwardingBackend {
 public:
  using ForwardingBackend::ForwardingBackend;
  static std::vector<std::vector<DeviceOrdinal>> grants() {
    const std::lock_guard lock(mutex());
    return log();
  }
  static void clear() {
    const std::lock_guard lock(mutex());
    log().clear();
  }

  vmm::Status set_access(DevicePtr va, Bytes s, std::span<const DeviceOrdinal> d) override {
    {
      const std::lock_guard lock(mutex());
      log().emplace_back(d.begin(), d.end());
    }
    return inner().set_access(va, s, d);
  }

 private:
  static std::mutex& mutex() {
    static std::mutex m;
    return m;
  }
  static std::vector<std::vector<DeviceOrdinal>>& log() {
    static std::vector<std::vector<DeviceOrdinal>> l;
    return l;
  }
};

std::unique_ptr<vmm::Backend> recording_backend(DeviceOrdinal device, vmm::Status* why) {
  return std::make_unique<AccessRecorder>(host_backend(device, why));
}

// A device whose arena cannot start.
std::unique_ptr<vmm::Backend> no_backend(DeviceOrdinal, vmm::Status* why) {
  if (why != nullptr) *why = vmm::Status::kNotSupported;
  return nullptr;
}

class ArenaRouting : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ASSERT_NE(fake_driver().calls, nullptr) << dlerror();
    ASSERT_NE(fake_driver().set_capturing, nullptr);
    ASSERT_NE(fake_driver().fail_creates, nullptr);
  }
  void SetUp() override {
    reset_arenas_for_testing();
    set_backend_factory_for_testing(&host_backend);
    set_limit_for_testing(Bytes{0});
    set_mode_for_testing(config::Mode::kArena);
    fake_driver().set_device(0);
    fake_driver().set_capturing(0);
    (void)cudaGetLastError();
  }
  void TearDown() override {
    fake_driver().set_device(0);
    fake_driver().set_capturing(0);
    reset_arenas_for_testing();
  }
  static std::uint64_t driver_calls(const char* name) { return fake_driver().calls(name); }
  static std::uint64_t runtime_calls(const char* name) { return fake_cudart_calls(name); }
  static bool arena_owns(const void* p) {
    return owning_arena(DevicePtr::from(p)).arena != nullptr;
  }
  static cudaMemPool_t default_pool_of(int device) {
    cudaMemPool_t pool = nullptr;
    EXPECT_EQ(cudaDeviceGetDefaultMemPool(&pool, device), cudaSuccess);
    return pool;
  }
  static std::uint64_t pool_attribute(cudaMemPoolAttr attr) {
    std::uint64_t v = ~std::uint64_t{0};
    EXPECT_EQ(cudaMemPoolGetAttribute(default_pool_of(0), attr, &v), cudaSuccess);
    return v;
  }
};

TEST_F(ArenaRouting, LegacyAllocationsComeFromTheArenaAndHoldBytes) {
  const auto rt_malloc = runtime_calls("cudaMalloc");
  const auto rt_free = runtime_calls("cudaFree");
  const auto drv_alloc = driver_calls("cuMemAlloc_v2");
  const auto drv_free = driver_calls("cuMemFree_v2");
  void* p = nullptr;
  ASSERT_EQ(cudaMalloc(&p, 3 * kMiB), cudaSuccess);
  ASSERT_TRUE(arena_owns(p));
  std::memset(p, 0x5a, 3 * kMiB);  // host backend: arena memory is host memory
  CUdeviceptr d = 0;
  ASSERT_EQ(cuMemAlloc_v2(&d, 1000), CUDA_SUCCESS);
  ASSERT_TRUE(arena_owns(reinterpret_cast<void*>(d)));
  EXPECT_EQ(d % 256, 0U);
  EXPECT_EQ(static_cast<unsigned char*>(p)[3 * kMiB - 1], 0x5a);
  EXPECT_EQ(cudaFree(p), cudaSuccess);
  EXPECT_EQ(cuMemFree_v2(d), CUDA_SUCCESS);
  EXPECT_EQ(runtime_calls("cudaMalloc"), rt_malloc);
  EXPECT_EQ(runtime_calls("cudaFree"), rt_free);
  EXPECT_EQ(driver_calls("cuMemAlloc_v2"), drv_alloc);
  EXPECT_EQ(driver_calls("cuMemFree_v2"), drv_free);
  // Zero bytes succeed with a null pointer, as in CUDA; a null free succeeds.
  p = reinterpret_cast<void*>(1);
  EXPECT_EQ(cudaMalloc(&p, 0), cudaSuccess);
  EXPECT_EQ(p, nullptr);
  EXPECT_EQ(cudaFree(nullptr), cudaSuccess);
}

TEST_F(ArenaRouting, CountersAndStatsFileSeeArenaAllocations) {
  const EntryCount before = entry_count(HookId::cudaMalloc);
  const DeviceCount live_before = device_count(DeviceOrdinal{0});
  const stats::DeviceCounters& c = counters_block().devices[0];
  const std::uint64_t arena_live_before = c.arena_live_bytes;
  const std::uint64_t physical_before = c.arena_physical_bytes;
  void* p = nullptr;
  // Above the default CUDEFRAG_SMALL_MAX (8 MiB): a range of its own.
  ASSERT_EQ(cudaMalloc(&p, 17 * kMiB), cudaSuccess);
  EXPECT_EQ(entry_count(HookId::cudaMalloc).calls - before.calls, 1U);
  EXPECT_EQ(entry_count(HookId::cudaMalloc).bytes - before.bytes, 17 * kMiB);
  // Granted: 17 MiB rounded up to the 2 MiB granularity.
  EXPECT_EQ((device_count(DeviceOrdinal{0}).live - live_before.live).value, 18 * kMiB);
  EXPECT_EQ(c.arena_live_bytes - arena_live_before, 18 * kMiB);
  EXPECT_GE(c.arena_physical_bytes - physical_before, 18 * kMiB);
  EXPECT_GE(c.arena_peak_physical_bytes, c.arena_physical_bytes);
  ASSERT_EQ(cudaFree(p), cudaSuccess);
  EXPECT_EQ(device_count(DeviceOrdinal{0}).live, live_before.live);
  EXPECT_EQ(c.arena_live_bytes, arena_live_before);
}

TEST_F(ArenaRouting, ForeignPointersGoToTheRealFree) {
  set_mode_for_testing(config::Mode::kPassthrough);
  void* foreign = nullptr;
  ASSERT_EQ(cudaMalloc(&foreign, kMiB), cudaSuccess);
  set_mode_for_testing(config::Mode::kArena);
  void* ours = nullptr;
  ASSERT_EQ(cudaMalloc(&ours, kMiB), cudaSuccess);
  ASSERT_FALSE(arena_owns(foreign));
  const auto before = runtime_calls("cudaFree");
  EXPECT_EQ(cudaFree(foreign), cudaSuccess);
  EXPECT_EQ(runtime_calls("cudaFree") - before, 1U);
  EXPECT_EQ(cudaFree(ours), cudaSuccess);
  EXPECT_EQ(runtime_calls("cudaFree") - before, 1U);
  // Inside the arena's region but not an allocation: refused, not passed on.
  EXPECT_EQ(cudaFree(static_cast<char*>(ours) + 256), cudaErrorInvalidValue);
  EXPECT_EQ(runtime_calls("cudaFree") - before, 1U);
}

// cudefrag_arena_pause() (cudefrag.h): the calling thread's allocations go to CUDA until the
// matching resume, other threads' to the arena; every free goes where its memory came from.
TEST_F(ArenaRouting, APausedThreadAllocatesFromCudaItselfUntilItResumes) {
  vmm::HostStream stream;
  auto* s = reinterpret_cast<cudaStream_t>(stream.ref().value);
  void* ours = nullptr;
  ASSERT_EQ(cudaMalloc(&ours, kMiB), cudaSuccess);
  ASSERT_TRUE(arena_owns(ours));
  EXPECT_EQ(cudefrag_arena_pause(), 1);
  EXPECT_EQ(cudefrag_arena_pause(), 2);  // nested
  const auto mallocs = runtime_calls("cudaMalloc");
  const auto async_mallocs = runtime_calls("cudaMallocAsync");
  void* theirs = nullptr;
  void* theirs_async = nullptr;
  CUdeviceptr theirs_driver = 0;
  ASSERT_EQ(cudaMalloc(&theirs, kMiB), cudaSuccess);
  ASSERT_EQ(cudaMallocAsync(&theirs_async, 4 * kMiB, s), cudaSuccess);
  ASSERT_EQ(cuMemAlloc_v2(&theirs_driver, kMiB), CUDA_SUCCESS);
  EXPECT_FALSE(arena_owns(theirs));
  EXPECT_FALSE(arena_owns(theirs_async));
  EXPECT_FALSE(arena_owns(reinterpret_cast<void*>(theirs_driver)));
  EXPECT_EQ(runtime_calls("cudaMalloc") - mallocs, 1U);
  EXPECT_EQ(runtime_calls("cudaMallocAsync") - async_mallocs, 1U);
  std::thread([] {
    void* other = nullptr;
    ASSERT_EQ(cudaMalloc(&other, kMiB), cudaSuccess);
    EXPECT_TRUE(arena_owns(other));
    EXPECT_EQ(cudaFree(other), cudaSuccess);
  }).join();
  // Paused or not, arena memory goes back to the arena and CUDA's to CUDA.
  const auto frees = runtime_calls("cudaFree");
  EXPECT_EQ(cudaFree(ours), cudaSuccess);
  EXPECT_EQ(runtime_calls("cudaFree") - frees, 0U);
  EXPECT_EQ(cudefrag_arena_resume(), 1);
  EXPECT_EQ(cudefrag_arena_resume(), 0);
  EXPECT_EQ(cudefrag_arena_resume(), 0);  // one resume too many changes nothing
  EXPECT_EQ(cudaFree(theirs), cudaSuccess);
  EXPECT_EQ(runtime_calls("cudaFree") - frees, 1U);
  EXPECT_EQ(cudaFreeAsync(theirs_async, s), cudaSuccess);
  EXPECT_EQ(cuMemFree_v2(theirs_driver), CUDA_SUCCESS);
  void* again = nullptr;
  ASSERT_EQ(cudaMalloc(&again, kMiB), cudaSuccess);
  EXPECT_TRUE(arena_owns(again));
  EXPECT_EQ(cudaFree(again), cudaSuccess);
  stream.synchronize();
}

TEST_F(ArenaRouting, StreamOrderedAllocationsOnEveryKindOfStream) {
  vmm::HostStream stream;
  auto* s = reinterpret_cast<cudaStream_t>(stream.ref().value);
  const auto fake_before = runtime_calls("cudaMallocAsync") +
                           runtime_calls("cudaMallocAsync_ptsz") + runtime_calls("cudaFreeAsync") +
                           runtime_calls("cudaFreeAsync_ptsz");
  for (cudaStream_t on : {cudaStream_t{}, cudaStreamLegacy, cudaStreamPerThread, s}) {
    void* a = nullptr;
    void* b = nullptr;
    ASSERT_EQ(cudaMallocAsync(&a, 4 * kMiB, on), cudaSuccess);
    ASSERT_EQ(cudaMallocAsync_ptsz(&b, 64 << 10, on), cudaSuccess);
    EXPECT_TRUE(arena_owns(a));
    EXPECT_TRUE(arena_owns(b));
    EXPECT_EQ(cudaFreeAsync(a, on), cudaSuccess);
    EXPECT_EQ(cudaFreeAsync_ptsz(b, on), cudaSuccess);
    // Reused at once by the same stream.
    void* again = nullptr;
    ASSERT_EQ(cudaMallocAsync(&again, 4 * kMiB, on), cudaSuccess);
    EXPECT_EQ(again, a);
    EXPECT_EQ(cudaFreeAsync(again, on), cudaSuccess);
  }
  CUdeviceptr d = 0;
  ASSERT_EQ(cuMemAllocAsync(&d, kMiB, reinterpret_cast<CUstream>(s)), CUDA_SUCCESS);
  EXPECT_TRUE(arena_owns(reinterpret_cast<void*>(d)));
  EXPECT_EQ(cuMemFreeAsync(d, reinterpret_cast<CUstream>(s)), CUDA_SUCCESS);
  ASSERT_EQ(cuMemAllocAsync_ptsz(&d, kMiB, nullptr), CUDA_SUCCESS);
  EXPECT_TRUE(arena_owns(reinterpret_cast<void*>(d)));
  EXPECT_EQ(cuMemFreeAsync_ptsz(d, nullptr), CUDA_SUCCESS);
  EXPECT_EQ(runtime_calls("cudaMallocAsync") + runtime_calls("cudaMallocAsync_ptsz") +
                runtime_calls("cudaFreeAsync") + runtime_calls("cudaFreeAsync_ptsz"),
            fake_before);
  // Destroying a stream the program freed on reaches the driver after the arena settled it.
  const auto destroy_before = runtime_calls("cudaStreamDestroy");
  EXPECT_EQ(cudaStreamDestroy(s), cudaSuccess);
  EXPECT_EQ(runtime_calls("cudaStreamDestroy") - destroy_before, 1U);
  const auto drv_destroy_before = driver_calls("cuStreamDestroy_v2");
  EXPECT_EQ(cuStreamDestroy_v2(reinterpret_cast<CUstream>(s)), CUDA_SUCCESS);
  EXPECT_EQ(driver_calls("cuStreamDestroy_v2") - drv_destroy_before, 1U);
}

TEST_F(ArenaRouting, CapturedStreamsGetGraphMemoryFromTheDriver) {
  fake_driver().set_capturing(1);
  const auto before = runtime_calls("cudaMallocAsync");
  void* p = nullptr;
  ASSERT_EQ(cudaMallocAsync(&p, kMiB, nullptr), cudaSuccess);
  EXPECT_EQ(runtime_calls("cudaMallocAsync") - before, 1U);
  EXPECT_FALSE(arena_owns(p));
  CUdeviceptr d = 0;
  const auto drv_before = driver_calls("cuMemAllocAsync");
  ASSERT_EQ(cuMemAllocAsync(&d, kMiB, nullptr), CUDA_SUCCESS);
  EXPECT_EQ(driver_calls("cuMemAllocAsync") - drv_before, 1U);
  fake_driver().set_capturing(0);
  const auto free_before = runtime_calls("cudaFreeAsync");
  EXPECT_EQ(cudaFreeAsync(p, nullptr), cudaSuccess);
  EXPECT_EQ(runtime_calls("cudaFreeAsync") - free_before, 1U);
  // Legacy allocations are not stream-ordered: still the arena's.
  void* legacy = nullptr;
  fake_driver().set_capturing(1);
  ASSERT_EQ(cudaMalloc(&legacy, kMiB), cudaSuccess);
  EXPECT_TRUE(arena_owns(legacy));
  EXPECT_EQ(cudaFree(legacy), cudaSuccess);
}

TEST_F(ArenaRouting, OnlyTheDefaultPoolIsReplaced) {
  const cudaMemPool_t pool = default_pool_of(0);
  const auto before = runtime_calls("cudaMallocFromPoolAsync");
  void* p = nullptr;
  ASSERT_EQ(cudaMallocFromPoolAsync(&p, kMiB, pool, nullptr), cudaSuccess);
  EXPECT_TRUE(arena_owns(p));
  EXPECT_EQ(runtime_calls("cudaMallocFromPoolAsync"), before);
  EXPECT_EQ(cudaFreeAsync(p, nullptr), cudaSuccess);
  auto* user_pool = reinterpret_cast<cudaMemPool_t>(std::uintptr_t{0x9000});
  ASSERT_EQ(cudaMallocFromPoolAsync(&p, kMiB, user_pool, nullptr), cudaSuccess);
  EXPECT_EQ(runtime_calls("cudaMallocFromPoolAsync") - before, 1U);
  EXPECT_FALSE(arena_owns(p));
  CUdeviceptr d = 0;
  ASSERT_EQ(cuMemAllocFromPoolAsync_ptsz(&d, kMiB, reinterpret_cast<CUmemoryPool>(pool), nullptr),
            CUDA_SUCCESS);
  EXPECT_TRUE(arena_owns(reinterpret_cast<void*>(d)));
  EXPECT_EQ(cuMemFreeAsync_ptsz(d, nullptr), CUDA_SUCCESS);
}

TEST_F(ArenaRouting, MemInfoCountsCachedMemoryAsFree) {
  void* p = nullptr;
  ASSERT_EQ(cudaMalloc(&p, 64 * kMiB), cudaSuccess);
  ASSERT_EQ(cudaFree(p), cudaSuccess);
  const arena::ArenaFigures f = existing_arena(DeviceOrdinal{0})->figures();
  ASSERT_GE(f.reclaimable.value, 64 * kMiB);
  std::size_t free_bytes = 0;
  std::size_t total = 0;
  ASSERT_EQ(cudaMemGetInfo(&free_bytes, &total), cudaSuccess);
  EXPECT_EQ(free_bytes, kDriverFree + f.reclaimable.value);
  EXPECT_EQ(total, kDriverTotal);
  ASSERT_EQ(cuMemGetInfo_v2(&free_bytes, nullptr), CUDA_SUCCESS);
  EXPECT_EQ(free_bytes, kDriverFree + f.reclaimable.value);
  EXPECT_EQ(cudaMemGetInfo(nullptr, nullptr), cudaSuccess);
  EXPECT_EQ(cuMemGetInfo_v2(nullptr, &total), CUDA_SUCCESS);
  EXPECT_EQ(total, kDriverTotal);
}

// A program that allocates stream-ordered reads the cache from the default pool's attributes
// (reserved - used), as with the driver's pool; cudaMemGetInfo must not count it again, or
// free + reserved - used (ComfyUI's free memory) counts it twice.
TEST_F(ArenaRouting, APoolUserHearsOfTheCacheOnceFromThePool) {
  void* p = nullptr;
  ASSERT_EQ(cudaMallocAsync(&p, 64 * kMiB, nullptr), cudaSuccess);
  ASSERT_EQ(cudaFreeAsync(p, nullptr), cudaSuccess);
  const arena::ArenaFigures f = existing_arena(DeviceOrdinal{0})->figures();
  ASSERT_GE(f.physical.value - f.live.value, 64 * kMiB);
  std::size_t free_bytes = 0;
  std::size_t total = 0;
  ASSERT_EQ(cudaMemGetInfo(&free_bytes, &total), cudaSuccess);
  EXPECT_EQ(free_bytes, kDriverFree);
  EXPECT_EQ(total, kDriverTotal);
  const std::uint64_t reserved = pool_attribute(cudaMemPoolAttrReservedMemCurrent);
  const std::uint64_t used = pool_attribute(cudaMemPoolAttrUsedMemCurrent);
  EXPECT_EQ(reserved - used, f.physical.value - f.live.value);
  // What ComfyUI computes: the driver's free memory and the arena's cache, once.
  EXPECT_EQ(free_bytes + (reserved - used), kDriverFree + f.physical.value - f.live.value);
  // With a limit, the pool's reserve counts against it, as the driver's pool's would.
  set_limit_for_testing(Bytes{f.physical.value + 16 * kMiB});
  ASSERT_EQ(cudaMemGetInfo(&free_bytes, &total), cudaSuccess);
  EXPECT_EQ(free_bytes, 16 * kMiB);
  EXPECT_EQ(total, f.physical.value + 16 * kMiB);
}

// The real cudaMemGetInfo asks the driver through cudart's table, which holds our
// cuMemGetInfo: the nested call must hand back the driver's figures, or the outer one counts the
// arena's cache a second time.
// The program's own cuMemCreate (PyTorch's expandable segments) sized itself from
// cudaMemGetInfo, which counts the arena's cache as free: when the driver says no, the cache
// goes back to the driver and the call is tried once more.
TEST_F(ArenaRouting, ProgramsOwnCuMemCreateGetsTheArenasCacheBack) {
  void* p = nullptr;
  ASSERT_EQ(cudaMalloc(&p, 64 * kMiB), cudaSuccess);
  ASSERT_EQ(cudaFree(p), cudaSuccess);
  arena::Arena* a = existing_arena(DeviceOrdinal{0});
  const arena::ArenaFigures before = a->figures();
  ASSERT_GE(before.reclaimable.value, 64 * kMiB);

  CUmemAllocationProp prop{};
  prop.type = CU_MEM_ALLOCATION_TYPE_PINNED;
  prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
  prop.location.id = 0;
  CUmemGenericAllocationHandle handle = 0;
  const auto creates = driver_calls("cuMemCreate");
  fake_driver().fail_creates(1);
  ASSERT_EQ(cuMemCreate(&handle, 32 * kMiB, &prop, 0), CUDA_SUCCESS);
  EXPECT_EQ(driver_calls("cuMemCreate") - creates, 2U);  // refused, then granted
  const arena::ArenaFigures after = a->figures();
  EXPECT_LE(after.physical.value + 32 * kMiB, before.physical.value);
  EXPECT_EQ(cuMemRelease(handle), CUDA_SUCCESS);

  // Nothing cached: the refusal is the driver's, passed on after one call.
  ASSERT_EQ(a->trim(Bytes{0}), vmm::Status::kOk);
  fake_driver().fail_creates(1);
  EXPECT_EQ(cuMemCreate(&handle, 32 * kMiB, &prop, 0), CUDA_ERROR_OUT_OF_MEMORY);
  EXPECT_EQ(driver_calls("cuMemCreate") - creates, 3U);
  fake_driver().fail_creates(0);
}

// Memory freed with cudaFree shows as free at once, as without the shim, even while the arena
// still waits to fence its batch of legacy frees: otherwise the next allocation, which fences
// the batch, appears to cost less than its size (seen on the H200 after small blocks were freed).
TEST_F(ArenaRouting, MemInfoCountsFreedSmallBlocksBeforeTheirBatchIsFenced) {
  std::vector<void*> blocks(8);
  for (void*& b : blocks) ASSERT_EQ(cudaMalloc(&b, 3 * kMiB), cudaSuccess);
  arena::Arena* a = existing_arena(DeviceOrdinal{0});
  ASSERT_NE(a, nullptr);
  const Bytes held = a->figures().physical;
  for (void* b : blocks) ASSERT_EQ(cudaFree(b), cudaSuccess);
  std::size_t free_bytes = 0;
  std::size_t total = 0;
  ASSERT_EQ(cudaMemGetInfo(&free_bytes, &total), cudaSuccess);
  // The fake driver's figure does not move; everything the arena holds is free again.
  EXPECT_EQ(free_bytes, kDriverFree + held.value);
  EXPECT_EQ(a->figures().reclaimable, held);
}

TEST_F(ArenaRouting, NestedMemInfoIsTheDriversAndTheCacheCountsOnce) {
  void* p = nullptr;
  ASSERT_EQ(cudaMalloc(&p, 64 * kMiB), cudaSuccess);
  ASSERT_EQ(cudaFree(p), cudaSuccess);
  ASSERT_GE(existing_arena(DeviceOrdinal{0})->figures().reclaimable.value, 64 * kMiB);
  std::size_t free_bytes = 0;
  std::size_t total = 0;
  {
    const HookScope inside_another_hook;
    ASSERT_EQ(cuMemGetInfo_v2(&free_bytes, &total), CUDA_SUCCESS);
  }
  EXPECT_EQ(free_bytes, kDriverFree);
  EXPECT_EQ(total, kDriverTotal);
}

TEST_F(ArenaRouting, MemInfoNeverExceedsTheLimit) {
  set_limit_for_testing(MiB(256));
  std::size_t free_bytes = 0;
  std::size_t total = 0;
  // Before any allocation: the limit is the card.
  ASSERT_EQ(cudaMemGetInfo(&free_bytes, &total), cudaSuccess);
  EXPECT_EQ(total, 256 * kMiB);
  EXPECT_EQ(free_bytes, 256 * kMiB);
  void* live = nullptr;
  void* cached = nullptr;
  ASSERT_EQ(cudaMalloc(&live, 100 * kMiB), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&cached, 50 * kMiB), cudaSuccess);
  ASSERT_EQ(cudaFree(cached), cudaSuccess);
  ASSERT_EQ(cuMemGetInfo_v2(&free_bytes, &total), CUDA_SUCCESS);
  EXPECT_EQ(total, 256 * kMiB);
  EXPECT_EQ(free_bytes, (256 - 100) * kMiB);
  ASSERT_EQ(cudaFree(live), cudaSuccess);
}

TEST_F(ArenaRouting, DefaultPoolAttributesDescribeTheArena) {
  void* p = nullptr;
  ASSERT_EQ(cudaMallocAsync(&p, 8 * kMiB, nullptr), cudaSuccess);
  const auto fake_before = runtime_calls("cudaMemPoolGetAttribute");
  EXPECT_EQ(pool_attribute(cudaMemPoolAttrUsedMemCurrent), 8 * kMiB);
  EXPECT_EQ(pool_attribute(cudaMemPoolAttrUsedMemHigh), 8 * kMiB);
  EXPECT_GE(pool_attribute(cudaMemPoolAttrReservedMemCurrent), 8 * kMiB);
  EXPECT_EQ(runtime_calls("cudaMemPoolGetAttribute"), fake_before);
  ASSERT_EQ(cudaFreeAsync(p, nullptr), cudaSuccess);
  EXPECT_EQ(pool_attribute(cudaMemPoolAttrUsedMemCurrent), 0U);
  EXPECT_EQ(pool_attribute(cudaMemPoolAttrUsedMemHigh), 8 * kMiB);
  std::uint64_t zero = 0;
  ASSERT_EQ(cudaMemPoolSetAttribute(default_pool_of(0), cudaMemPoolAttrUsedMemHigh, &zero),
            cudaSuccess);
  EXPECT_EQ(pool_attribute(cudaMemPoolAttrUsedMemHigh), 0U);

  std::uint64_t threshold = 123 * kMiB;
  ASSERT_EQ(
      cudaMemPoolSetAttribute(default_pool_of(0), cudaMemPoolAttrReleaseThreshold, &threshold),
      cudaSuccess);
  EXPECT_EQ(pool_attribute(cudaMemPoolAttrReleaseThreshold), 123 * kMiB);

  // empty_cache(): the arena gives its cached memory back, and the real pool trims too.
  const std::uint64_t held = pool_attribute(cudaMemPoolAttrReservedMemCurrent);
  EXPECT_GE(held, 8 * kMiB);
  const auto trims = runtime_calls("cudaMemPoolTrimTo");
  ASSERT_EQ(cudaMemPoolTrimTo(default_pool_of(0), 0), cudaSuccess);
  EXPECT_EQ(runtime_calls("cudaMemPoolTrimTo") - trims, 1U);
  EXPECT_EQ(pool_attribute(cudaMemPoolAttrReservedMemCurrent), 0U);
  EXPECT_EQ(pool_attribute(cudaMemPoolAttrReservedMemHigh), held);
  ASSERT_EQ(cudaMemPoolSetAttribute(default_pool_of(0), cudaMemPoolAttrReservedMemHigh, &zero),
            cudaSuccess);
  EXPECT_EQ(pool_attribute(cudaMemPoolAttrReservedMemHigh), 0U);

  // Another pool is the driver's.
  std::uint64_t v = 0;
  auto* user_pool = reinterpret_cast<cudaMemPool_t>(std::uintptr_t{0x9000});
  ASSERT_EQ(cudaMemPoolGetAttribute(user_pool, cudaMemPoolAttrUsedMemCurrent, &v), cudaSuccess);
  EXPECT_EQ(runtime_calls("cudaMemPoolGetAttribute") - fake_before, 1U);
}

TEST_F(ArenaRouting, AddressRangeIsTheWholeAllocation) {
  void* p = nullptr;
  ASSERT_EQ(cudaMalloc(&p, 5 * kMiB), cudaSuccess);
  const auto before = driver_calls("cuMemGetAddressRange_v2");
  CUdeviceptr base = 0;
  std::size_t size = 0;
  const auto inside = reinterpret_cast<CUdeviceptr>(p) + 3 * kMiB;
  ASSERT_EQ(cuMemGetAddressRange_v2(&base, &size, inside), CUDA_SUCCESS);
  EXPECT_EQ(base, reinterpret_cast<CUdeviceptr>(p));
  EXPECT_EQ(size, 5 * kMiB);
  void* small = nullptr;
  ASSERT_EQ(cudaMalloc(&small, 1000), cudaSuccess);
  ASSERT_EQ(cuMemGetAddressRange_v2(&base, nullptr, reinterpret_cast<CUdeviceptr>(small) + 999),
            CUDA_SUCCESS);
  EXPECT_EQ(base, reinterpret_cast<CUdeviceptr>(small));
  EXPECT_EQ(driver_calls("cuMemGetAddressRange_v2"), before);
  ASSERT_EQ(cudaFree(p), cudaSuccess);
  EXPECT_EQ(cuMemGetAddressRange_v2(&base, &size, inside), CUDA_ERROR_NOT_FOUND);
  EXPECT_EQ(cudaFree(small), cudaSuccess);
}

TEST_F(ArenaRouting, LegacyIpcRefusesArenaMemoryOnly) {
  void* p = nullptr;
  ASSERT_EQ(cudaMalloc(&p, kMiB), cudaSuccess);
  const auto before = runtime_calls("cudaIpcGetMemHandle");
  cudaIpcMemHandle_t h{};
  EXPECT_EQ(cudaIpcGetMemHandle(&h, p), cudaErrorInvalidValue);
  EXPECT_EQ(runtime_calls("cudaIpcGetMemHandle"), before);
  set_mode_for_testing(config::Mode::kPassthrough);
  void* foreign = nullptr;
  ASSERT_EQ(cudaMalloc(&foreign, kMiB), cudaSuccess);
  set_mode_for_testing(config::Mode::kArena);
  EXPECT_EQ(cudaIpcGetMemHandle(&h, foreign), cudaSuccess);
  EXPECT_EQ(runtime_calls("cudaIpcGetMemHandle") - before, 1U);
  EXPECT_EQ(cudaFree(p), cudaSuccess);
  EXPECT_EQ(cudaFree(foreign), cudaSuccess);
}

TEST_F(ArenaRouting, OutOfMemoryLooksAsItWouldWithoutTheShim) {
  set_limit_for_testing(MiB(64));
  void* p = reinterpret_cast<void*>(0x1234);
  const EntryCount before = entry_count(HookId::cudaMalloc);
  EXPECT_EQ(cudaMalloc(&p, 128 * kMiB), cudaErrorMemoryAllocation);
  EXPECT_EQ(entry_count(HookId::cudaMalloc).failures - before.failures, 1U);
  // Recorded as the runtime's last error, which reading clears (not sticky).
  EXPECT_EQ(cudaGetLastError(), cudaErrorMemoryAllocation);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
  EXPECT_EQ(cudaMallocAsync(&p, 128 * kMiB, nullptr), cudaErrorMemoryAllocation);
  EXPECT_EQ(cudaGetLastError(), cudaErrorMemoryAllocation);
  CUdeviceptr d = 0;
  EXPECT_EQ(cuMemAlloc_v2(&d, 128 * kMiB), CUDA_ERROR_OUT_OF_MEMORY);
  EXPECT_EQ(cuMemAllocAsync(&d, 128 * kMiB, nullptr), CUDA_ERROR_OUT_OF_MEMORY);
  // What fits still does.
  ASSERT_EQ(cudaMalloc(&p, 32 * kMiB), cudaSuccess);
  EXPECT_EQ(cudaFree(p), cudaSuccess);
}

// cudaDeviceEnablePeerAccess(1) on device 0 lets device 0 touch device 1's memory: device 1's
// arena grants device 0 access to its mappings, those made before and after the call.
TEST_F(ArenaRouting, PeerAccessIsGrantedToArenaMappings) {
  set_backend_factory_for_testing(&recording_backend);
  AccessRecorder::clear();
  const std::vector<DeviceOrdinal> own{DeviceOrdinal{1}};
  const std::vector<DeviceOrdinal> with_peer{DeviceOrdinal{1}, DeviceOrdinal{0}};
  fake_driver().set_device(1);
  void* p = nullptr;
  void* small = nullptr;
  ASSERT_EQ(cudaMalloc(&p, 12 * kMiB), cudaSuccess);  // above CUDEFRAG_SMALL_MAX: a range
  ASSERT_EQ(cudaMalloc(&small, 4096), cudaSuccess);
  const auto before_peer = AccessRecorder::grants();
  ASSERT_EQ(before_peer.size(), 2U);  // the large range and the slab
  for (const auto& g : before_peer) EXPECT_EQ(g, own);
  fake_driver().set_device(0);
  const auto calls = runtime_calls("cudaDeviceEnablePeerAccess");
  EXPECT_EQ(cudaDeviceEnablePeerAccess(1, 0), cudaSuccess);
  EXPECT_EQ(runtime_calls("cudaDeviceEnablePeerAccess") - calls, 1U);
  // Both of device 1's mapped ranges again, now with device 0.
  auto grants = AccessRecorder::grants();
  ASSERT_EQ(grants.size(), 4U);
  EXPECT_EQ(grants[2], with_peer);
  EXPECT_EQ(grants[3], with_peer);
  // Later mappings of device 1 get it too; device 0's own arena grants nobody else.
  fake_driver().set_device(1);
  void* q = nullptr;
  ASSERT_EQ(cudaMalloc(&q, 16 * kMiB), cudaSuccess);
  fake_driver().set_device(0);
  void* on0 = nullptr;
  ASSERT_EQ(cudaMalloc(&on0, 16 * kMiB), cudaSuccess);
  grants = AccessRecorder::grants();
  ASSERT_EQ(grants.size(), 6U);
  EXPECT_EQ(grants[4], with_peer);
  EXPECT_EQ(grants[5], std::vector<DeviceOrdinal>{DeviceOrdinal{0}});
  EXPECT_EQ(cudaFree(on0), cudaSuccess);
  EXPECT_EQ(cudaFree(q), cudaSuccess);
  EXPECT_EQ(cudaFree(small), cudaSuccess);
  EXPECT_EQ(cudaFree(p), cudaSuccess);
}

// A peer enabled before the device's arena exists is granted when the arena starts.
TEST_F(ArenaRouting, PeerEnabledBeforeTheArenaIsGrantedAtStart) {
  set_backend_factory_for_testing(&recording_backend);
  AccessRecorder::clear();
  EXPECT_EQ(cudaDeviceEnablePeerAccess(1, 0), cudaSuccess);  // on device 0
  fake_driver().set_device(1);
  void* p = nullptr;
  ASSERT_EQ(cudaMalloc(&p, 4 * kMiB), cudaSuccess);
  const auto grants = AccessRecorder::grants();
  ASSERT_EQ(grants.size(), 1U);
  EXPECT_EQ(grants[0], (std::vector<DeviceOrdinal>{DeviceOrdinal{1}, DeviceOrdinal{0}}));
  EXPECT_EQ(cudaFree(p), cudaSuccess);
}

// PyTorch's cudaMallocAsync backend enables peer copies with cudaMemPoolSetAccess on the default
// pool of the device whose memory is read, not with cudaDeviceEnablePeerAccess: the arena that
// replaces that pool grants the same access. A descriptor that takes access away, or names no
// device, changes nothing in the arena.
TEST_F(ArenaRouting, DefaultPoolAccessIsGrantedToArenaMappings) {
  set_backend_factory_for_testing(&recording_backend);
  AccessRecorder::clear();
  void* p = nullptr;
  ASSERT_EQ(cudaMalloc(&p, 12 * kMiB), cudaSuccess);
  ASSERT_EQ(AccessRecorder::grants().size(), 1U);
  const cudaMemAccessDesc none{{cudaMemLocationTypeDevice, 1}, cudaMemAccessFlagsProtNone};
  const cudaMemAccessDesc host{{cudaMemLocationTypeHost, 0}, cudaMemAccessFlagsProtReadWrite};
  const cudaMemAccessDesc ignored[] = {none, host};
  ASSERT_EQ(cudaMemPoolSetAccess(default_pool_of(0), ignored, 2), cudaSuccess);
  EXPECT_EQ(AccessRecorder::grants().size(), 1U);
  // Another pool (not a default pool the arena replaces) is the driver's business.
  const cudaMemAccessDesc rw{{cudaMemLocationTypeDevice, 1}, cudaMemAccessFlagsProtReadWrite};
  ASSERT_EQ(cudaMemPoolSetAccess(reinterpret_cast<cudaMemPool_t>(0x77), &rw, 1), cudaSuccess);
  EXPECT_EQ(AccessRecorder::grants().size(), 1U);
  const auto calls = runtime_calls("cudaMemPoolSetAccess");
  ASSERT_EQ(cudaMemPoolSetAccess(default_pool_of(0), &rw, 1), cudaSuccess);
  EXPECT_EQ(runtime_calls("cudaMemPoolSetAccess") - calls, 1U);
  const auto grants = AccessRecorder::grants();
  ASSERT_EQ(grants.size(), 2U);
  EXPECT_EQ(grants[1], (std::vector<DeviceOrdinal>{DeviceOrdinal{0}, DeviceOrdinal{1}}));
  EXPECT_EQ(cudaFree(p), cudaSuccess);
}

TEST_F(ArenaRouting, DevicesGetTheirOwnArenas) {
  void* on0 = nullptr;
  void* on1 = nullptr;
  ASSERT_EQ(cudaMalloc(&on0, kMiB), cudaSuccess);
  fake_driver().set_device(1);
  ASSERT_EQ(cudaMalloc(&on1, kMiB), cudaSuccess);
  EXPECT_EQ(owning_arena(DevicePtr::from(on0)).device, DeviceOrdinal{0});
  EXPECT_EQ(owning_arena(DevicePtr::from(on1)).device, DeviceOrdinal{1});
  // Freed from another device's context: still found.
  fake_driver().set_device(0);
  EXPECT_EQ(cudaFree(on1), cudaSuccess);
  EXPECT_EQ(cudaFree(on0), cudaSuccess);
}

TEST_F(ArenaRouting, ADeviceWhoseArenaCannotStartRunsInPassthrough) {
  set_backend_factory_for_testing(&no_backend);
  const auto before = runtime_calls("cudaMalloc");
  void* p = nullptr;
  ASSERT_EQ(cudaMalloc(&p, kMiB), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&p, kMiB), cudaSuccess);
  EXPECT_EQ(runtime_calls("cudaMalloc") - before, 2U);
  EXPECT_EQ(existing_arena(DeviceOrdinal{0}), nullptr);
  EXPECT_EQ(cudaFree(p), cudaSuccess);
}

TEST_F(ArenaRouting, DriverCallsWithoutAContextGoToTheDriver) {
  fake_driver().set_device(-1);
  const auto before = driver_calls("cuMemAlloc_v2");
  CUdeviceptr d = 0;
  EXPECT_EQ(cuMemAlloc_v2(&d, kMiB), CUDA_SUCCESS);  // the fake needs no context
  EXPECT_EQ(driver_calls("cuMemAlloc_v2") - before, 1U);
  EXPECT_EQ(existing_arena(DeviceOrdinal{0}), nullptr);
}

// Many threads on the legacy, per-thread and their own streams at once; each checks that its
// bytes survive while others allocate, free and reuse.
TEST_F(ArenaRouting, ConcurrentThreadsKeepTheirBytes) {
  constexpr int kThreads = 6;
  constexpr int kRounds = 150;
  std::vector<std::thread> threads;
  std::atomic<int> errors{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([t, &errors] {
      const cudaStream_t on = t % 2 == 0 ? cudaStreamPerThread : nullptr;
      for (int i = 0; i < kRounds; ++i) {
        const std::size_t size =
            (i % 3 == 0) ? 3 * kMiB : 4096 * static_cast<std::size_t>(1 + i % 7);
        void* p = nullptr;
        const cudaError_t r = i % 2 == 0 ? cudaMallocAsync(&p, size, on) : cudaMalloc(&p, size);
        if (r != cudaSuccess || p == nullptr) {
          ++errors;
          continue;
        }
        std::memset(p, t + 1, size);
        const auto* bytes = static_cast<const unsigned char*>(p);
        if (bytes[0] != t + 1 || bytes[size - 1] != t + 1) ++errors;
        const cudaError_t f = i % 2 == 0 ? cudaFreeAsync(p, on) : cudaFree(p);
        if (f != cudaSuccess) ++errors;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(pool_attribute(cudaMemPoolAttrUsedMemCurrent), 0U);
}

}  // namespace
}  // namespace cudefrag::hooks
