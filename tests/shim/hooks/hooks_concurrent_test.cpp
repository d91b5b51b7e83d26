// Hooks called from 16 threads at once, directly and nested (the fake runtime reaching the driver
// through the table our cuGetProcAddress filled): every call is forwarded, counted once, and the
// live bytes return to where they started. Runs under ThreadSanitizer (label concurrent).
#include <dlfcn.h>
#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "shim/hooks/counters.hpp"
#include "shim/hooks/exports.hpp"
#include "shim/hooks/hook_table.hpp"
#include "shim/hooks/shim_state.hpp"
#include "tests/shim/hooks/fake/fake_control.hpp"

namespace cudefrag::hooks {
namespace {

constexpr int kThreads = 16;
constexpr int kRounds = 300;
constexpr std::size_t kSize = 64 << 10;

TEST(HooksConcurrent, CountersAddUpAcrossSixteenThreads) {
  void* libcuda = dlopen(CUDEFRAG_TEST_FAKE_DIR "/libcuda.so.1", RTLD_NOW | RTLD_GLOBAL);
  ASSERT_NE(libcuda, nullptr) << dlerror();
  auto* fake_calls =
      reinterpret_cast<std::uint64_t (*)(const char*)>(dlsym(libcuda, "fake_cuda_calls"));
  ASSERT_NE(fake_calls, nullptr);
  // Forwarding under load; arena mode under load is in arena_routing_test.cpp.
  set_mode_for_testing(config::Mode::kPassthrough);
  // The runtime's driver table holds our hooks, as under preloading.
  fake_cudart_use_driver_lookup(hook_address(HookId::cuGetProcAddress_v2));

  const EntryCount malloc_before = entry_count(HookId::cudaMalloc);
  const EntryCount async_before = entry_count(HookId::cudaMallocAsync);
  const EntryCount free_before = entry_count(HookId::cudaFree);
  const EntryCount drv_before = entry_count(HookId::cuMemAlloc_v2);
  const EntryCount drv_free_before = entry_count(HookId::cuMemFree_v2);
  const EntryCount gpa_before = entry_count(HookId::cuGetProcAddress_v2);
  const DeviceCount dev_before = device_count(DeviceOrdinal{0});
  const std::uint64_t fake_alloc_before = fake_calls("cuMemAlloc_v2");

  std::vector<std::thread> threads;
  std::atomic<int> errors{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&errors] {
      for (int i = 0; i < kRounds; ++i) {
        void* a = nullptr;
        void* b = nullptr;
        CUdeviceptr c = 0;
        void* fn = nullptr;
        CUdriverProcAddressQueryResult status{};
        if (cudaMalloc(&a, kSize) != cudaSuccess) ++errors;
        if (cudaMallocAsync(&b, kSize, nullptr) != cudaSuccess) ++errors;
        if (cuMemAlloc_v2(&c, kSize) != CUDA_SUCCESS) ++errors;
        if (cuGetProcAddress_v2("cuMemFree", &fn, 12000, 0, &status) != CUDA_SUCCESS ||
            fn != hook_address(HookId::cuMemFree_v2)) {
          ++errors;
        }
        if (cudaFree(a) != cudaSuccess) ++errors;
        if (cudaFreeAsync(b, nullptr) != cudaSuccess) ++errors;
        if (reinterpret_cast<decltype(&cuMemFree_v2)>(fn)(c) != CUDA_SUCCESS) ++errors;
      }
    });
  }
  for (auto& t : threads) t.join();
  fake_cudart_use_driver_lookup(dlsym(libcuda, "cuGetProcAddress_v2"));

  constexpr std::uint64_t kCalls = kThreads * kRounds;
  EXPECT_EQ(errors.load(), 0);
  EXPECT_EQ(entry_count(HookId::cudaMalloc).calls - malloc_before.calls, kCalls);
  EXPECT_EQ(entry_count(HookId::cudaMalloc).bytes - malloc_before.bytes, kCalls * kSize);
  EXPECT_EQ(entry_count(HookId::cudaMallocAsync).calls - async_before.calls, kCalls);
  EXPECT_EQ(entry_count(HookId::cudaFree).calls - free_before.calls, kCalls);
  // Direct driver calls are counted; the runtime's nested ones are not.
  EXPECT_EQ(entry_count(HookId::cuMemAlloc_v2).calls - drv_before.calls, kCalls);
  EXPECT_EQ(entry_count(HookId::cuMemFree_v2).calls - drv_free_before.calls, kCalls);
  EXPECT_EQ(entry_count(HookId::cuGetProcAddress_v2).calls - gpa_before.calls, kCalls);
  // But all of them reached the driver.
  EXPECT_EQ(fake_calls("cuMemAlloc_v2") - fake_alloc_before, 2 * kCalls);
  const DeviceCount dev_after = device_count(DeviceOrdinal{0});
  EXPECT_EQ(dev_after.live, dev_before.live);
  EXPECT_GE(dev_after.peak.value, dev_before.live.value + 3 * kSize);
  EXPECT_LE(dev_after.peak.value,
            dev_before.live.value + 3 * kSize * kThreads + dev_before.peak.value);
}

}  // namespace
}  // namespace cudefrag::hooks
