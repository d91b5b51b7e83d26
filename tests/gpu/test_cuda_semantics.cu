// What a CUDA program may rely on today when it allocates device memory, checked against the real
// runtime. The binary runs three ways on the GPU machine (scripts/gpu_check.sh): alone, under
// `cudefrag run --mode passthrough` and under `--mode arena`; every test must pass all three times,
// since the shim promises to keep these semantics (docs: shared DESIGN.md, "Semantics a user gets
// for free today"). Without a GPU every test skips.

#include <cuda.h>
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <utility>
#include <vector>

#include "examples/cuda/pattern.cuh"

namespace cudefrag::gpu_tests {
namespace {

using examples::check_pattern;
using examples::fill_pattern;
using examples::grid_for;
using examples::linear_rows;
using examples::Rows;

constexpr std::size_t kMiB = std::size_t{1} << 20;
// Far beyond any card: every allocator must refuse it.
constexpr std::size_t kImpossible = std::size_t{1} << 50;

__device__ std::uint64_t global_timer_ns() {
  std::uint64_t t = 0;
  asm volatile("mov.u64 %0, %%globaltimer;" : "=l"(t));
  return t;
}

// Waits `delay_ns` on the device, then writes `value` into every word: a late writer, to catch
// memory handed to a new owner while queued work can still touch it.
__global__ void write_after(std::uint32_t* p, std::size_t words, std::uint32_t value,
                            std::uint64_t delay_ns) {
  const std::uint64_t start = global_timer_ns();
  while (global_timer_ns() - start < delay_ns) {
  }
  for (std::size_t i = blockIdx.x * std::size_t{blockDim.x} + threadIdx.x; i < words;
       i += std::size_t{gridDim.x} * blockDim.x) {
    p[i] = value;
  }
}

__global__ void copy_words(const std::uint32_t* from, std::uint32_t* to, std::size_t words) {
  for (std::size_t i = blockIdx.x * std::size_t{blockDim.x} + threadIdx.x; i < words;
       i += std::size_t{gridDim.x} * blockDim.x) {
    to[i] = from[i];
  }
}

class CudaSemantics : public ::testing::Test {
 protected:
  void SetUp() override {
    int count = 0;
    if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
      (void)cudaGetLastError();
      GTEST_SKIP() << "no CUDA device";
    }
    ASSERT_EQ(cudaSetDevice(0), cudaSuccess);
    ASSERT_EQ(cudaGetLastError(), cudaSuccess) << "an earlier test left an error behind";
  }

  static std::size_t count_nonzero_words(const void* device_ptr, std::size_t bytes) {
    std::vector<std::uint32_t> host(bytes / 4);
    EXPECT_EQ(cudaMemcpy(host.data(), device_ptr, host.size() * 4, cudaMemcpyDeviceToHost),
              cudaSuccess);
    return static_cast<std::size_t>(
        std::count_if(host.begin(), host.end(), [](std::uint32_t w) { return w != 0; }));
  }
};

TEST_F(CudaSemantics, FailedMallocReportsOutOfMemoryOnceAndLeavesNoStickyError) {
  void* p = nullptr;
  EXPECT_EQ(cudaMalloc(&p, kImpossible), cudaErrorMemoryAllocation);
  // PyTorch reads the last error after a failed allocation and expects to find it once.
  EXPECT_EQ(cudaGetLastError(), cudaErrorMemoryAllocation);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
  void* small = nullptr;
  ASSERT_EQ(cudaMalloc(&small, 4096), cudaSuccess);
  EXPECT_EQ(cudaFree(small), cudaSuccess);
}

TEST_F(CudaSemantics, FailedMallocAsyncReportsOutOfMemoryAndTheStreamStaysUsable) {
  cudaStream_t s = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), cudaSuccess);
  void* p = nullptr;
  EXPECT_EQ(cudaMallocAsync(&p, kImpossible, s), cudaErrorMemoryAllocation);
  EXPECT_EQ(cudaGetLastError(), cudaErrorMemoryAllocation);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
  void* small = nullptr;
  ASSERT_EQ(cudaMallocAsync(&small, 4096, s), cudaSuccess);
  EXPECT_EQ(cudaMemsetAsync(small, 1, 4096, s), cudaSuccess);
  EXPECT_EQ(cudaFreeAsync(small, s), cudaSuccess);
  EXPECT_EQ(cudaStreamSynchronize(s), cudaSuccess);
  EXPECT_EQ(cudaStreamDestroy(s), cudaSuccess);
}

TEST_F(CudaSemantics, FreeOfNullSucceeds) {
  EXPECT_EQ(cudaFree(nullptr), cudaSuccess);
}

TEST_F(CudaSemantics, ZeroByteMallocSucceedsAndCanBeFreed) {
  void* p = reinterpret_cast<void*>(0x1);
  EXPECT_EQ(cudaMalloc(&p, 0), cudaSuccess);
  EXPECT_EQ(cudaFree(p), cudaSuccess);
  EXPECT_EQ(cudaGetLastError(), cudaSuccess);
}

// Many live allocations of both kinds never overlap, and each keeps its own bytes.
TEST_F(CudaSemantics, LiveAllocationsAreDisjointAndKeepTheirData) {
  cudaStream_t s = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), cudaSuccess);
  std::mt19937_64 rng(42);
  struct Live {
    char* p;
    std::size_t bytes;
    bool async;
  };
  std::vector<Live> live;
  for (int i = 0; i < 300; ++i) {
    const std::size_t bytes = (std::size_t{1} << (rng() % 24)) + rng() % 4096;
    const bool async = (i % 2) == 1;
    void* p = nullptr;
    ASSERT_EQ(async ? cudaMallocAsync(&p, bytes, s) : cudaMalloc(&p, bytes), cudaSuccess);
    live.push_back({static_cast<char*>(p), bytes, async});
    const Rows r = linear_rows(p, bytes);
    fill_pattern<<<grid_for(r), 256, 0, s>>>(r, static_cast<std::uint64_t>(i));
  }
  unsigned long long* errors = nullptr;
  ASSERT_EQ(cudaMalloc(&errors, sizeof *errors), cudaSuccess);
  ASSERT_EQ(cudaMemsetAsync(errors, 0, sizeof *errors, s), cudaSuccess);
  for (std::size_t i = 0; i < live.size(); ++i) {
    const Rows r = linear_rows(live[i].p, live[i].bytes);
    check_pattern<<<grid_for(r), 256, 0, s>>>(r, i, errors);
  }
  unsigned long long mismatches = 1;
  ASSERT_EQ(cudaMemcpyAsync(&mismatches, errors, sizeof mismatches, cudaMemcpyDeviceToHost, s),
            cudaSuccess);
  ASSERT_EQ(cudaStreamSynchronize(s), cudaSuccess);
  EXPECT_EQ(mismatches, 0u);

  std::vector<Live> by_address = live;
  std::sort(by_address.begin(), by_address.end(),
            [](const Live& a, const Live& b) { return a.p < b.p; });
  for (std::size_t i = 1; i < by_address.size(); ++i) {
    EXPECT_LE(by_address[i - 1].p + by_address[i - 1].bytes, by_address[i].p)
        << "allocations overlap";
  }
  std::shuffle(live.begin(), live.end(), rng);
  for (const Live& l : live) {
    EXPECT_EQ(l.async ? cudaFreeAsync(l.p, s) : cudaFree(l.p), cudaSuccess);
  }
  EXPECT_EQ(cudaFree(errors), cudaSuccess);
  EXPECT_EQ(cudaStreamSynchronize(s), cudaSuccess);
  EXPECT_EQ(cudaStreamDestroy(s), cudaSuccess);
}

TEST_F(CudaSemantics, PointerAttributesDescribeAnInteriorPointer) {
  cudaStream_t s = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), cudaSuccess);
  for (const bool async : {false, true}) {
    void* p = nullptr;
    const std::size_t bytes = 5 * kMiB + 3;
    ASSERT_EQ(async ? cudaMallocAsync(&p, bytes, s) : cudaMalloc(&p, bytes), cudaSuccess);
    ASSERT_EQ(cudaStreamSynchronize(s), cudaSuccess);
    char* inside = static_cast<char*>(p) + 3 * kMiB + 100;
    cudaPointerAttributes a{};
    ASSERT_EQ(cudaPointerGetAttributes(&a, inside), cudaSuccess);
    EXPECT_EQ(a.type, cudaMemoryTypeDevice) << (async ? "async" : "sync");
    EXPECT_EQ(a.device, 0);
    EXPECT_EQ(a.devicePointer, inside);
    EXPECT_EQ(async ? cudaFreeAsync(p, s) : cudaFree(p), cudaSuccess);
  }
  EXPECT_EQ(cudaStreamSynchronize(s), cudaSuccess);
  EXPECT_EQ(cudaStreamDestroy(s), cudaSuccess);
}

// The driver's view of an allocation is the whole allocation, also when it spans several of the
// 2 MiB pages an arena would map it from. Reached through cudaGetDriverEntryPointByVersion, as
// PyTorch reaches driver functions.
TEST_F(CudaSemantics, DriverAddressRangeIsTheWholeAllocation) {
  void* fn = nullptr;
  cudaDriverEntryPointQueryResult status{};
  ASSERT_EQ(cudaGetDriverEntryPointByVersion("cuMemGetAddressRange", &fn, 12000, cudaEnableDefault,
                                             &status),
            cudaSuccess);
  ASSERT_EQ(status, cudaDriverEntryPointSuccess);
  const auto get_range = reinterpret_cast<decltype(&cuMemGetAddressRange_v2)>(fn);
  cudaStream_t s = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), cudaSuccess);
  for (const bool async : {false, true}) {
    void* p = nullptr;
    const std::size_t bytes = 5 * kMiB + 3;
    ASSERT_EQ(async ? cudaMallocAsync(&p, bytes, s) : cudaMalloc(&p, bytes), cudaSuccess);
    ASSERT_EQ(cudaStreamSynchronize(s), cudaSuccess);
    const auto base = reinterpret_cast<CUdeviceptr>(p);
    for (const std::size_t offset : {std::size_t{0}, 3 * kMiB, bytes - 1}) {
      CUdeviceptr got_base = 0;
      std::size_t got_size = 0;
      ASSERT_EQ(get_range(&got_base, &got_size, base + offset), CUDA_SUCCESS);
      EXPECT_EQ(got_base, base) << (async ? "async" : "sync") << " offset " << offset;
      EXPECT_GE(got_size, bytes) << (async ? "async" : "sync") << " offset " << offset;
    }
    EXPECT_EQ(async ? cudaFreeAsync(p, s) : cudaFree(p), cudaSuccess);
  }
  EXPECT_EQ(cudaStreamSynchronize(s), cudaSuccess);
  EXPECT_EQ(cudaStreamDestroy(s), cudaSuccess);
}

// What a program can still allocate, as ComfyUI computes it: cudaMemGetInfo's free memory plus
// what the default pool keeps for reuse (reserved - used). A program that allocates
// stream-ordered learns of the pool's cache from the pool, not from cudaMemGetInfo, with the
// driver's pool as with the arena standing in for it (docs/semantics.md).
std::size_t available(std::size_t* total) {
  std::size_t free_bytes = 0;
  EXPECT_EQ(cudaMemGetInfo(&free_bytes, total), cudaSuccess);
  cudaMemPool_t pool = nullptr;
  EXPECT_EQ(cudaDeviceGetDefaultMemPool(&pool, 0), cudaSuccess);
  std::uint64_t reserved = 0, used = 0;
  EXPECT_EQ(cudaMemPoolGetAttribute(pool, cudaMemPoolAttrReservedMemCurrent, &reserved),
            cudaSuccess);
  EXPECT_EQ(cudaMemPoolGetAttribute(pool, cudaMemPoolAttrUsedMemCurrent, &used), cudaSuccess);
  EXPECT_LE(free_bytes, *total);
  return free_bytes + static_cast<std::size_t>(reserved - used);
}

// Programs size their work from these figures (ComfyUI decides what stays on the card from
// them): a live allocation shows as used, and freed memory shows as available again.
TEST_F(CudaSemantics, MemGetInfoCountsLiveAllocationsAndFreedMemoryComesBack) {
  const std::size_t bytes = 1024 * kMiB;
  std::size_t total = 0;
  const std::size_t avail0 = available(&total);
  ASSERT_GT(avail0, 2 * bytes) << "the card is too full for this test";
  void* p = nullptr;
  ASSERT_EQ(cudaMalloc(&p, bytes), cudaSuccess);
  ASSERT_EQ(cudaMemset(p, 0, bytes), cudaSuccess);
  const std::size_t avail1 = available(&total);
  EXPECT_LE(avail1 + bytes, avail0 + 2 * kMiB) << "live memory must show as used";
  ASSERT_EQ(cudaFree(p), cudaSuccess);
  const std::size_t avail2 = available(&total);
  EXPECT_GE(avail2 + 64 * kMiB, avail0) << "freed memory must show as available again";
}

// cudaFree returns only when no queued work can still touch the memory, so the next allocation
// may take it at once. A late writer on a non-blocking stream would show in the new buffer if the
// memory were reused too early.
TEST_F(CudaSemantics, MemoryFreedWithCudaFreeIsNotReusedUnderPendingWork) {
  const std::size_t bytes = 8 * kMiB;
  cudaStream_t writer = nullptr, other = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&writer, cudaStreamNonBlocking), cudaSuccess);
  ASSERT_EQ(cudaStreamCreateWithFlags(&other, cudaStreamNonBlocking), cudaSuccess);
  void* a = nullptr;
  ASSERT_EQ(cudaMalloc(&a, bytes), cudaSuccess);
  write_after<<<64, 256, 0, writer>>>(static_cast<std::uint32_t*>(a), bytes / 4, 0xDEADBEEF,
                                      50'000'000);
  ASSERT_EQ(cudaGetLastError(), cudaSuccess);
  ASSERT_EQ(cudaFree(a), cudaSuccess);
  void* b = nullptr;
  ASSERT_EQ(cudaMalloc(&b, bytes), cudaSuccess);
  ASSERT_EQ(cudaMemsetAsync(b, 0, bytes, other), cudaSuccess);
  ASSERT_EQ(cudaStreamSynchronize(other), cudaSuccess);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  EXPECT_EQ(count_nonzero_words(b, bytes), 0u) << "a kernel queued before cudaFree wrote into "
                                                  "memory handed out after it";
  EXPECT_EQ(cudaFree(b), cudaSuccess);
  EXPECT_EQ(cudaStreamDestroy(writer), cudaSuccess);
  EXPECT_EQ(cudaStreamDestroy(other), cudaSuccess);
}

// cudaFreeAsync(p, s1): another stream may get p only once the free has completed on s1 (or
// with a dependency on it). A late writer on s1 would show in s2's new buffer otherwise.
TEST_F(CudaSemantics, MemoryFreedAsyncIsNotReusedByAnotherStreamBeforeTheFreeCompletes) {
  const std::size_t bytes = 8 * kMiB;
  cudaStream_t s1 = nullptr, s2 = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&s1, cudaStreamNonBlocking), cudaSuccess);
  ASSERT_EQ(cudaStreamCreateWithFlags(&s2, cudaStreamNonBlocking), cudaSuccess);
  void* a = nullptr;
  ASSERT_EQ(cudaMallocAsync(&a, bytes, s1), cudaSuccess);
  write_after<<<64, 256, 0, s1>>>(static_cast<std::uint32_t*>(a), bytes / 4, 0xDEADBEEF,
                                  50'000'000);
  ASSERT_EQ(cudaGetLastError(), cudaSuccess);
  ASSERT_EQ(cudaFreeAsync(a, s1), cudaSuccess);
  void* b = nullptr;
  ASSERT_EQ(cudaMallocAsync(&b, bytes, s2), cudaSuccess);
  ASSERT_EQ(cudaMemsetAsync(b, 0, bytes, s2), cudaSuccess);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  EXPECT_EQ(count_nonzero_words(b, bytes), 0u)
      << "memory freed on one stream was reused by another before the free completed";
  EXPECT_EQ(cudaFreeAsync(b, s2), cudaSuccess);
  EXPECT_EQ(cudaStreamSynchronize(s2), cudaSuccess);
  EXPECT_EQ(cudaStreamDestroy(s1), cudaSuccess);
  EXPECT_EQ(cudaStreamDestroy(s2), cudaSuccess);
}

// Allocations made while a stream is captured become memory nodes of the graph; the graph then
// runs again and again with its own memory.
TEST_F(CudaSemantics, AllocationsDuringStreamCaptureBecomePartOfTheGraph) {
  const std::size_t bytes = 3 * kMiB;
  cudaStream_t s = nullptr;
  ASSERT_EQ(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), cudaSuccess);
  void* out = nullptr;
  ASSERT_EQ(cudaMalloc(&out, bytes), cudaSuccess);
  ASSERT_EQ(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal), cudaSuccess);
  void* tmp = nullptr;
  ASSERT_EQ(cudaMallocAsync(&tmp, bytes, s), cudaSuccess);
  const Rows r = linear_rows(tmp, bytes);
  fill_pattern<<<grid_for(r), 256, 0, s>>>(r, 77);
  copy_words<<<256, 256, 0, s>>>(static_cast<const std::uint32_t*>(tmp),
                                 static_cast<std::uint32_t*>(out), bytes / 4);
  ASSERT_EQ(cudaFreeAsync(tmp, s), cudaSuccess);
  cudaGraph_t graph = nullptr;
  ASSERT_EQ(cudaStreamEndCapture(s, &graph), cudaSuccess);
  cudaGraphExec_t exec = nullptr;
  ASSERT_EQ(cudaGraphInstantiate(&exec, graph, 0), cudaSuccess);
  for (int i = 0; i < 3; ++i) {
    ASSERT_EQ(cudaMemsetAsync(out, 0, bytes, s), cudaSuccess);
    ASSERT_EQ(cudaGraphLaunch(exec, s), cudaSuccess);
    ASSERT_EQ(cudaStreamSynchronize(s), cudaSuccess);
    std::vector<std::uint32_t> host(bytes / 4);
    ASSERT_EQ(cudaMemcpy(host.data(), out, bytes, cudaMemcpyDeviceToHost), cudaSuccess);
    EXPECT_EQ(examples::count_mismatches(host.data(), host.size(), 1, 77), 0u) << "launch " << i;
  }
  EXPECT_EQ(cudaGraphExecDestroy(exec), cudaSuccess);
  EXPECT_EQ(cudaGraphDestroy(graph), cudaSuccess);
  EXPECT_EQ(cudaFree(out), cudaSuccess);
  EXPECT_EQ(cudaStreamDestroy(s), cudaSuccess);
}

// With peer access enabled, a kernel on device 1 reads device 0's cudaMalloc memory. VMM mappings
// ignore cudaDeviceEnablePeerAccess, so an arena must grant the peer access itself.
TEST_F(CudaSemantics, PeerDeviceReadsMemoryAfterPeerAccessIsEnabled) {
  int count = 0;
  ASSERT_EQ(cudaGetDeviceCount(&count), cudaSuccess);
  if (count < 2) GTEST_SKIP() << "one device only";
  int can = 0;
  ASSERT_EQ(cudaDeviceCanAccessPeer(&can, 1, 0), cudaSuccess);
  if (can == 0) GTEST_SKIP() << "device 1 cannot access device 0";
  const std::size_t bytes = 5 * kMiB;
  void* on0 = nullptr;
  ASSERT_EQ(cudaMalloc(&on0, bytes), cudaSuccess);
  const Rows r = linear_rows(on0, bytes);
  fill_pattern<<<grid_for(r), 256>>>(r, 5);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);

  ASSERT_EQ(cudaSetDevice(1), cudaSuccess);
  const cudaError_t enabled = cudaDeviceEnablePeerAccess(0, 0);
  ASSERT_TRUE(enabled == cudaSuccess || enabled == cudaErrorPeerAccessAlreadyEnabled);
  (void)cudaGetLastError();
  void* on1 = nullptr;
  ASSERT_EQ(cudaMalloc(&on1, bytes), cudaSuccess);
  copy_words<<<256, 256>>>(static_cast<const std::uint32_t*>(on0), static_cast<std::uint32_t*>(on1),
                           bytes / 4);
  ASSERT_EQ(cudaDeviceSynchronize(), cudaSuccess);
  std::vector<std::uint32_t> host(bytes / 4);
  ASSERT_EQ(cudaMemcpy(host.data(), on1, bytes, cudaMemcpyDeviceToHost), cudaSuccess);
  EXPECT_EQ(examples::count_mismatches(host.data(), host.size(), 1, 5), 0u);
  EXPECT_EQ(cudaFree(on1), cudaSuccess);
  ASSERT_EQ(cudaSetDevice(0), cudaSuccess);
  EXPECT_EQ(cudaFree(on0), cudaSuccess);
}

}  // namespace
}  // namespace cudefrag::gpu_tests
