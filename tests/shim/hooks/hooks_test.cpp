// The hooks linked into this test program (no preloading), in front of the fake libcudart (linked)
// and the fake libcuda.so.1 (opened by path before the tests). Every hook forwards to the real
// function and counts; the entry-point hooks hand out our hooks for every version and stream flag
// we claim; nested calls are not counted twice.
#include <dlfcn.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <functional>
#include <map>
#include <set>
#include <string>

#include "shim/hooks/counters.hpp"
#include "shim/hooks/dispatch.hpp"
#include "shim/hooks/exports.hpp"
#include "shim/hooks/hook_table.hpp"
#include "shim/hooks/shim_state.hpp"
#include "tests/shim/hooks/fake/fake_control.hpp"

namespace cudefrag::hooks {
namespace {

constexpr std::size_t kMiB = std::size_t{1} << 20;

using FakeCalls = std::uint64_t (*)(const char*);
using SetDevice = void (*)(int);

struct FakeDriver {
  void* handle = nullptr;
  FakeCalls calls = nullptr;
  SetDevice set_device = nullptr;
};

const FakeDriver& fake_driver() {
  static const FakeDriver d = [] {
    FakeDriver f;
    f.handle = dlopen(CUDEFRAG_TEST_FAKE_DIR "/libcuda.so.1", RTLD_NOW | RTLD_GLOBAL);
    if (f.handle != nullptr) {
      f.calls = reinterpret_cast<FakeCalls>(dlsym(f.handle, "fake_cuda_calls"));
      f.set_device = reinterpret_cast<SetDevice>(dlsym(f.handle, "fake_cuda_set_device"));
    }
    return f;
  }();
  return d;
}

class HooksTest : public ::testing::Test {
 protected:
  // The forwarding of every hook, as passthrough mode does it (arena_routing_test.cpp tests
  // arena mode).
  static void SetUpTestSuite() {
    ASSERT_NE(fake_driver().calls, nullptr) << dlerror();
    set_mode_for_testing(config::Mode::kPassthrough);
  }
  void TearDown() override {
    unsetenv("FAKE_CUDA_INTERNAL_POINTERS");
    fake_driver().set_device(0);
  }
  static std::uint64_t driver_calls(const char* name) { return fake_driver().calls(name); }
};

// The hook that cuGetProcAddress should hand out for `h`'s base name at `version`: `h` itself at
// its own version; at a later version the newest variant of the same kind.
HookId expected_at(HookId h, int version) {
  const auto found = find_driver_hook(info(h).base, version, info(h).ptsz);
  return found ? *found : h;
}

std::vector<HookId> driver_hooks() {
  std::vector<HookId> out;
  for (std::size_t i = 0; i < kHookCount; ++i) {
    if (kHooks[i].api == Api::kDriver) out.push_back(static_cast<HookId>(i));
  }
  return out;
}

void expect_every_driver_hook_handed_out() {
  for (const HookId h : driver_hooks()) {
    const HookInfo& hi = info(h);
    const std::string base(hi.base);
    // Per-thread variants are asked for by flag; legacy ones by flag or by default.
    std::vector<cuuint64_t> flag_sets{CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM};
    if (!hi.ptsz) flag_sets = {CU_GET_PROC_ADDRESS_DEFAULT, CU_GET_PROC_ADDRESS_LEGACY_STREAM};
    for (const cuuint64_t flags : flag_sets) {
      for (const int version : {hi.min_version, 13000}) {
        const HookId want = expected_at(h, version);
        SCOPED_TRACE(base + " version " + std::to_string(version) + " flags " +
                     std::to_string(flags));
        void* fn = nullptr;
        CUdriverProcAddressQueryResult status{};
        ASSERT_EQ(::cuGetProcAddress_v2(base.c_str(), &fn, version, flags, &status), CUDA_SUCCESS);
        EXPECT_EQ(fn, hook_address(want)) << "wanted " << info(want).name;
        fn = nullptr;
        ASSERT_EQ(::cuGetProcAddress(base.c_str(), &fn, version, flags), CUDA_SUCCESS);
        EXPECT_EQ(fn, hook_address(want)) << "wanted " << info(want).name;
        fn = nullptr;
        cudaDriverEntryPointQueryResult rstatus{};
        ASSERT_EQ(::cudaGetDriverEntryPointByVersion(
                      base.c_str(), &fn, static_cast<unsigned>(version), flags, &rstatus),
                  cudaSuccess);
        EXPECT_EQ(fn, hook_address(want)) << "wanted " << info(want).name;
      }
    }
  }
}

TEST_F(HooksTest, EntryPointsHandOutEveryDriverHookForEachVersionAndFlag) {
  expect_every_driver_hook_handed_out();
}

TEST_F(HooksTest, EntryPointsRecogniseInternalAddressesByName) {
  setenv("FAKE_CUDA_INTERNAL_POINTERS", "1", 1);
  expect_every_driver_hook_handed_out();
}

TEST_F(HooksTest, UnversionedEntryPointUsesTheRuntimeVersion) {
  void* fn = nullptr;
  cudaDriverEntryPointQueryResult status{};
  ASSERT_EQ(::cudaGetDriverEntryPoint("cuMemAlloc", &fn, cudaEnableDefault, &status), cudaSuccess);
  EXPECT_EQ(fn, hook_address(HookId::cuMemAlloc_v2));
  ASSERT_EQ(::cudaGetDriverEntryPoint_ptsz("cuMemFreeAsync", &fn, cudaEnableDefault, &status),
            cudaSuccess);
  EXPECT_EQ(fn, hook_address(HookId::cuMemFreeAsync_ptsz));
  ASSERT_EQ(::cudaGetDriverEntryPoint("cuGetProcAddress", &fn, cudaEnableDefault, &status),
            cudaSuccess);
  EXPECT_EQ(fn, hook_address(HookId::cuGetProcAddress_v2));
}

TEST_F(HooksTest, OlderAndNewerVariantsAndOtherFunctionsPassThrough) {
  for (const char* internal : {"0", "1"}) {
    setenv("FAKE_CUDA_INTERNAL_POINTERS", internal, 1);
    void* fn = nullptr;
    CUdriverProcAddressQueryResult status{};
    // CUDA 2.0's cuMemAlloc (32-bit sizes) is not hooked.
    ASSERT_EQ(::cuGetProcAddress_v2("cuMemAlloc", &fn, 2000, 0, &status), CUDA_SUCCESS);
    EXPECT_EQ(fn, dlsym(fake_driver().handle, "cuMemAlloc"));
    // A newer variant than the one we hook must not be answered with ours.
    ASSERT_EQ(::cuGetProcAddress_v2("cuMemAlloc", &fn, 14000, 0, &status), CUDA_SUCCESS);
    EXPECT_FALSE(is_hook_address(fn));
    ASSERT_NE(fn, nullptr);
    ASSERT_EQ(::cuGetProcAddress_v2("cuCtxGetDevice", &fn, 13000, 0, &status), CUDA_SUCCESS);
    EXPECT_EQ(fn, dlsym(fake_driver().handle, "cuCtxGetDevice"));
    fn = reinterpret_cast<void*>(1);
    EXPECT_EQ(::cuGetProcAddress_v2("cuNoSuchFunction", &fn, 13000, 0, &status),
              CUDA_ERROR_NOT_FOUND);
    EXPECT_EQ(fn, nullptr);
    EXPECT_EQ(status, CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND);
  }
}

// One call of each hook and the fake function it must reach.
struct Case {
  std::function<int()> call;  // returns the result code
  const char* fake_name;      // the function the fake library records
  bool driver;                // recorded by the fake driver (else the fake runtime)
};

std::map<HookId, Case> one_call_of_each_hook() {
  static void* p = nullptr;
  static CUdeviceptr d = 0;
  static std::size_t pitch = 0;
  static cudaPitchedPtr pp{};
  static std::size_t a = 0;
  static std::size_t b = 0;
  static cudaMemPool_t pool = nullptr;
  static std::uint64_t value = 0;
  static cudaIpcMemHandle_t ipc{};
  static const cudaMemAccessDesc access{{cudaMemLocationTypeDevice, 1},
                                        cudaMemAccessFlagsProtReadWrite};
  static CUmemGenericAllocationHandle handle = 0;
  static CUmemAllocationProp prop{};
  static void* fn = nullptr;
  static cudaDriverEntryPointQueryResult rs{};
  static CUdriverProcAddressQueryResult ds{};
  static CUstream s = nullptr;
  static CUmemoryPool dpool = nullptr;
  prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
  return {
      {HookId::cudaMalloc, {[] { return int(cudaMalloc(&p, kMiB)); }, "cudaMalloc", false}},
      {HookId::cudaFree, {[] { return int(cudaFree(p)); }, "cudaFree", false}},
      {HookId::cudaMallocAsync,
       {[] { return int(cudaMallocAsync(&p, kMiB, nullptr)); }, "cudaMallocAsync", false}},
      {HookId::cudaMallocAsync_ptsz,
       {[] { return int(cudaMallocAsync_ptsz(&p, kMiB, nullptr)); }, "cudaMallocAsync_ptsz",
        false}},
      {HookId::cudaFreeAsync,
       {[] { return int(cudaFreeAsync(p, nullptr)); }, "cudaFreeAsync", false}},
      {HookId::cudaFreeAsync_ptsz,
       {[] { return int(cudaFreeAsync_ptsz(p, nullptr)); }, "cudaFreeAsync_ptsz", false}},
      {HookId::cudaMallocFromPoolAsync,
       {[] { return int(cudaMallocFromPoolAsync(&p, kMiB, pool, nullptr)); },
        "cudaMallocFromPoolAsync", false}},
      {HookId::cudaMallocFromPoolAsync_ptsz,
       {[] { return int(cudaMallocFromPoolAsync_ptsz(&p, kMiB, pool, nullptr)); },
        "cudaMallocFromPoolAsync_ptsz", false}},
      {HookId::cudaMallocPitch,
       {[] { return int(cudaMallocPitch(&p, &pitch, 100, 10)); }, "cudaMallocPitch", false}},
      {HookId::cudaMalloc3D,
       {[] {
          return int(cudaMalloc3D(&pp, cudaExtent{100, 10, 10}));
        },
        "cudaMalloc3D", false}},
      {HookId::cudaMemGetInfo,
       {[] { return int(cudaMemGetInfo(&a, &b)); }, "cudaMemGetInfo", false}},
      {HookId::cudaDeviceGetDefaultMemPool,
       {[] { return int(cudaDeviceGetDefaultMemPool(&pool, 0)); }, "cudaDeviceGetDefaultMemPool",
        false}},
      {HookId::cudaDeviceGetMemPool,
       {[] { return int(cudaDeviceGetMemPool(&pool, 0)); }, "cudaDeviceGetMemPool", false}},
      {HookId::cudaMemPoolGetAttribute,
       {[] { return int(cudaMemPoolGetAttribute(pool, cudaMemPoolAttrUsedMemCurrent, &value)); },
        "cudaMemPoolGetAttribute", false}},
      {HookId::cudaMemPoolSetAttribute,
       {[] { return int(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &value)); },
        "cudaMemPoolSetAttribute", false}},
      {HookId::cudaMemPoolTrimTo,
       {[] { return int(cudaMemPoolTrimTo(pool, 0)); }, "cudaMemPoolTrimTo", false}},
      {HookId::cudaMemPoolSetAccess,
       {[] { return int(cudaMemPoolSetAccess(pool, &access, 1)); }, "cudaMemPoolSetAccess", false}},
      {HookId::cudaIpcGetMemHandle,
       {[] { return int(cudaIpcGetMemHandle(&ipc, p)); }, "cudaIpcGetMemHandle", false}},
      {HookId::cudaDeviceEnablePeerAccess,
       {[] { return int(cudaDeviceEnablePeerAccess(1, 0)); }, "cudaDeviceEnablePeerAccess", false}},
      {HookId::cudaStreamDestroy,
       {[] { return int(cudaStreamDestroy(nullptr)); }, "cudaStreamDestroy", false}},
      {HookId::cudaGetDriverEntryPoint,
       {[] { return int(cudaGetDriverEntryPoint("cuMemAlloc", &fn, 0, &rs)); },
        "cudaGetDriverEntryPoint", false}},
      {HookId::cudaGetDriverEntryPoint_ptsz,
       {[] { return int(cudaGetDriverEntryPoint_ptsz("cuMemAlloc", &fn, 0, &rs)); },
        "cudaGetDriverEntryPoint_ptsz", false}},
      {HookId::cudaGetDriverEntryPointByVersion,
       {[] { return int(cudaGetDriverEntryPointByVersion("cuMemAlloc", &fn, 12000, 0, &rs)); },
        "cudaGetDriverEntryPointByVersion", false}},
      {HookId::cudaGetDriverEntryPointByVersion_ptsz,
       {[] { return int(cudaGetDriverEntryPointByVersion_ptsz("cuMemAlloc", &fn, 12000, 0, &rs)); },
        "cudaGetDriverEntryPointByVersion_ptsz", false}},
      {HookId::cuMemAlloc_v2, {[] { return int(cuMemAlloc_v2(&d, kMiB)); }, "cuMemAlloc_v2", true}},
      {HookId::cuMemFree_v2, {[] { return int(cuMemFree_v2(d)); }, "cuMemFree_v2", true}},
      {HookId::cuMemAllocPitch_v2,
       {[] { return int(cuMemAllocPitch_v2(&d, &pitch, 100, 10, 4)); }, "cuMemAllocPitch_v2",
        true}},
      {HookId::cuMemAllocAsync,
       {[] { return int(cuMemAllocAsync(&d, kMiB, s)); }, "cuMemAllocAsync", true}},
      {HookId::cuMemAllocAsync_ptsz,
       {[] { return int(cuMemAllocAsync_ptsz(&d, kMiB, s)); }, "cuMemAllocAsync_ptsz", true}},
      {HookId::cuMemFreeAsync, {[] { return int(cuMemFreeAsync(d, s)); }, "cuMemFreeAsync", true}},
      {HookId::cuMemFreeAsync_ptsz,
       {[] { return int(cuMemFreeAsync_ptsz(d, s)); }, "cuMemFreeAsync_ptsz", true}},
      {HookId::cuMemAllocFromPoolAsync,
       {[] { return int(cuMemAllocFromPoolAsync(&d, kMiB, dpool, s)); }, "cuMemAllocFromPoolAsync",
        true}},
      {HookId::cuMemAllocFromPoolAsync_ptsz,
       {[] { return int(cuMemAllocFromPoolAsync_ptsz(&d, kMiB, dpool, s)); },
        "cuMemAllocFromPoolAsync_ptsz", true}},
      {HookId::cuMemGetInfo_v2,
       {[] { return int(cuMemGetInfo_v2(&a, &b)); }, "cuMemGetInfo_v2", true}},
      {HookId::cuMemGetAddressRange_v2,
       {[] { return int(cuMemGetAddressRange_v2(&d, &a, d)); }, "cuMemGetAddressRange_v2", true}},
      {HookId::cuStreamDestroy_v2,
       {[] { return int(cuStreamDestroy_v2(s)); }, "cuStreamDestroy_v2", true}},
      {HookId::cuMemCreate,
       {[] { return int(cuMemCreate(&handle, 2 * kMiB, &prop, 0)); }, "cuMemCreate", true}},
      {HookId::cuMemRelease, {[] { return int(cuMemRelease(handle)); }, "cuMemRelease", true}},
      {HookId::cuMemMap,
       {[] { return int(cuMemMap(d, 2 * kMiB, 0, handle, 0)); }, "cuMemMap", true}},
      {HookId::cuMemUnmap, {[] { return int(cuMemUnmap(d, 2 * kMiB)); }, "cuMemUnmap", true}},
      {HookId::cuGetProcAddress,
       {[] { return int(cuGetProcAddress("cuMemAlloc", &fn, 12000, 0)); }, "cuGetProcAddress",
        true}},
      {HookId::cuGetProcAddress_v2,
       {[] { return int(cuGetProcAddress_v2("cuMemAlloc", &fn, 12000, 0, &ds)); },
        "cuGetProcAddress_v2", true}},
  };
}

TEST_F(HooksTest, EveryHookForwardsToTheRealFunctionAndCountsOnce) {
  const auto cases = one_call_of_each_hook();
  // Every hook but dlsym (tested under preloading) has a case here.
  std::set<HookId> missing;
  for (std::size_t i = 0; i < kHookCount; ++i) {
    const auto id = static_cast<HookId>(i);
    if (id != HookId::dlsym && cases.count(id) == 0) missing.insert(id);
  }
  EXPECT_TRUE(missing.empty()) << "no case for " << info(*missing.begin()).name;
  for (const auto& [id, c] : cases) {
    SCOPED_TRACE(std::string(info(id).name));
    const auto fake_before = c.driver ? driver_calls(c.fake_name) : fake_cudart_calls(c.fake_name);
    const EntryCount before = entry_count(id);
    EXPECT_EQ(c.call(), 0);
    const auto fake_after = c.driver ? driver_calls(c.fake_name) : fake_cudart_calls(c.fake_name);
    const EntryCount after = entry_count(id);
    EXPECT_EQ(fake_after - fake_before, 1U);
    EXPECT_EQ(after.calls - before.calls, 1U);
    EXPECT_EQ(after.failures, before.failures);
  }
}

TEST_F(HooksTest, AllocationsCountBytesFailuresAndLiveBytesPerDevice) {
  const EntryCount before = entry_count(HookId::cudaMalloc);
  const DeviceCount d2_before = device_count(DeviceOrdinal{2});
  fake_driver().set_device(2);
  void* a = nullptr;
  void* b = nullptr;
  ASSERT_EQ(cudaMalloc(&a, 3 * kMiB), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&b, 5 * kMiB), cudaSuccess);
  void* c = nullptr;
  EXPECT_EQ(cudaMalloc(&c, std::size_t{1} << 41), cudaErrorMemoryAllocation);
  const EntryCount after = entry_count(HookId::cudaMalloc);
  EXPECT_EQ(after.calls - before.calls, 3U);
  EXPECT_EQ(after.failures - before.failures, 1U);
  EXPECT_EQ(after.bytes - before.bytes, 8 * kMiB + (std::size_t{1} << 41));
  EXPECT_EQ((device_count(DeviceOrdinal{2}).live - d2_before.live).value, 8 * kMiB);
  EXPECT_GE(device_count(DeviceOrdinal{2}).peak.value, 8 * kMiB);

  ASSERT_EQ(cudaFree(a), cudaSuccess);
  EXPECT_EQ((device_count(DeviceOrdinal{2}).live - d2_before.live).value, 5 * kMiB);
  // A failed free keeps the allocation live.
  const EntryCount free_before = entry_count(HookId::cuMemFree_v2);
  EXPECT_NE(cuMemFree_v2(1), CUDA_SUCCESS);
  EXPECT_EQ(entry_count(HookId::cuMemFree_v2).failures - free_before.failures, 1U);
  ASSERT_EQ(cudaFreeAsync(b, nullptr), cudaSuccess);
  EXPECT_EQ(device_count(DeviceOrdinal{2}).live, d2_before.live);

  // Pitched allocations are live for pitch x rows; requested for width x rows.
  const EntryCount pitch_before = entry_count(HookId::cudaMallocPitch);
  std::size_t pitch = 0;
  ASSERT_EQ(cudaMallocPitch(&a, &pitch, 1000, 100), cudaSuccess);
  EXPECT_EQ(pitch, 1024U);
  EXPECT_EQ(entry_count(HookId::cudaMallocPitch).bytes - pitch_before.bytes, 100000U);
  EXPECT_EQ((device_count(DeviceOrdinal{2}).live - d2_before.live).value, 102400U);
  ASSERT_EQ(cudaFree(a), cudaSuccess);

  // Physical memory the program creates itself counts on its device.
  CUmemAllocationProp prop{};
  prop.location.type = CU_MEM_LOCATION_TYPE_DEVICE;
  prop.location.id = 3;
  CUmemGenericAllocationHandle h = 0;
  const DeviceCount d3_before = device_count(DeviceOrdinal{3});
  ASSERT_EQ(cuMemCreate(&h, 2 * kMiB, &prop, 0), CUDA_SUCCESS);
  EXPECT_EQ((device_count(DeviceOrdinal{3}).live - d3_before.live).value, 2 * kMiB);
  ASSERT_EQ(cuMemRelease(h), CUDA_SUCCESS);
  EXPECT_EQ(device_count(DeviceOrdinal{3}).live, d3_before.live);
}

TEST_F(HooksTest, NullOutPointersAreForwardedNotDereferenced) {
  EXPECT_EQ(cuMemGetInfo_v2(nullptr, nullptr), CUDA_SUCCESS);
  EXPECT_EQ(cudaMemGetInfo(nullptr, nullptr), cudaSuccess);
  EXPECT_NE(cuMemAlloc_v2(nullptr, kMiB), CUDA_SUCCESS);
  EXPECT_EQ(cudaFree(nullptr), cudaSuccess);
}

// cudart reaches the driver through the table our cuGetProcAddress filled: the nested driver
// call reaches the driver but is not counted a second time.
TEST_F(HooksTest, NestedDriverCallsAreForwardedWithoutCounting) {
  fake_cudart_use_driver_lookup(hook_address(HookId::cuGetProcAddress_v2));
  const EntryCount rt_before = entry_count(HookId::cudaMalloc);
  const EntryCount drv_before = entry_count(HookId::cuMemAlloc_v2);
  const EntryCount gpa_before = entry_count(HookId::cuGetProcAddress_v2);
  const auto fake_before = driver_calls("cuMemAlloc_v2");
  void* p = nullptr;
  ASSERT_EQ(cudaMalloc(&p, kMiB), cudaSuccess);
  ASSERT_EQ(cudaFree(p), cudaSuccess);
  EXPECT_EQ(entry_count(HookId::cudaMalloc).calls - rt_before.calls, 1U);
  EXPECT_EQ(entry_count(HookId::cuMemAlloc_v2).calls, drv_before.calls);
  EXPECT_EQ(driver_calls("cuMemAlloc_v2") - fake_before, 1U);
  // Nested entry-point lookups still hand out hooks.
  void* fn = nullptr;
  cudaDriverEntryPointQueryResult status{};
  ASSERT_EQ(cudaGetDriverEntryPoint("cuMemCreate", &fn, 0, &status), cudaSuccess);
  EXPECT_EQ(fn, hook_address(HookId::cuMemCreate));
  EXPECT_EQ(entry_count(HookId::cuGetProcAddress_v2).calls, gpa_before.calls);
  fake_cudart_use_driver_lookup(dlsym(fake_driver().handle, "cuGetProcAddress_v2"));
}

TEST(HookTable, NamesAreUniqueAndDriverHooksKnowTheirVersions) {
  std::set<std::string_view> names;
  for (const HookInfo& h : kHooks) {
    EXPECT_TRUE(names.insert(h.name).second) << h.name;
    if (h.api != Api::kDriver) continue;
    EXPECT_FALSE(h.base.empty()) << h.name;
    EXPECT_GE(h.min_version, 2000) << h.name;
    EXPECT_EQ(h.ptsz, h.name.ends_with("_ptsz")) << h.name;
    EXPECT_TRUE(h.name.starts_with(h.base)) << h.name;
  }
}

TEST(HookTable, FindDriverHookPicksTheVariantForVersionAndStream) {
  EXPECT_EQ(find_driver_hook("cuMemAlloc", 13000, false), HookId::cuMemAlloc_v2);
  EXPECT_EQ(find_driver_hook("cuMemAlloc", 13000, true), HookId::cuMemAlloc_v2);
  EXPECT_EQ(find_driver_hook("cuMemAlloc", 3010, false), std::nullopt);
  EXPECT_EQ(find_driver_hook("cuMemAllocAsync", 12000, true), HookId::cuMemAllocAsync_ptsz);
  EXPECT_EQ(find_driver_hook("cuMemAllocAsync", 12000, false), HookId::cuMemAllocAsync);
  EXPECT_EQ(find_driver_hook("cuMemAllocAsync", 11010, false), std::nullopt);
  EXPECT_EQ(find_driver_hook("cuGetProcAddress", 11030, false), HookId::cuGetProcAddress);
  EXPECT_EQ(find_driver_hook("cuGetProcAddress", 12000, false), HookId::cuGetProcAddress_v2);
  EXPECT_EQ(find_driver_hook("cudaMalloc", 13000, false), std::nullopt);
  EXPECT_EQ(find_driver_export("cuMemFreeAsync_ptsz"), HookId::cuMemFreeAsync_ptsz);
  EXPECT_EQ(find_driver_export("cuMemFreeAsync_ptszz"), std::nullopt);
  EXPECT_EQ(find_driver_export("cudaMalloc"), std::nullopt);
}

TEST(HookTable, PerThreadRequestFollowsFlagThenEntryPoint) {
  EXPECT_TRUE(per_thread_requested(CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM, false));
  EXPECT_FALSE(per_thread_requested(CU_GET_PROC_ADDRESS_LEGACY_STREAM, true));
  EXPECT_TRUE(per_thread_requested(CU_GET_PROC_ADDRESS_DEFAULT, true));
  EXPECT_FALSE(per_thread_requested(CU_GET_PROC_ADDRESS_DEFAULT, false));
}

}  // namespace
}  // namespace cudefrag::hooks
