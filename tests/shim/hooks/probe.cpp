// A CUDA-like program run under the preloaded shim by preload_test.cpp, against the fake libcuda
// and libcudart. Each scenario makes known calls, checks what it can see from inside (results,
// which library a looked-up function lives in), and exits non-zero on the first surprise; the
// test then checks the shim's counters in the stats file.
#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include <sys/wait.h>
#include <unistd.h>

#include "shim/hooks/exports.hpp"  // the hooked functions, _ptsz variants included
#include "tests/shim/hooks/fake/fake_control.hpp"

namespace {

[[noreturn]] void fail(const std::string& what) {
  std::fprintf(stderr, "probe: %s\n", what.c_str());
  std::exit(1);
}

void expect(bool ok, const std::string& what) {
  if (!ok) fail(what);
}

// The exported symbol at `p` and the file it is in.
std::string where(const void* p) {
  Dl_info info{};
  if (p == nullptr || dladdr(p, &info) == 0) return "?";
  return std::string(info.dli_sname != nullptr ? info.dli_sname : "?") + "@" +
         (info.dli_fname != nullptr ? info.dli_fname : "?");
}

bool in_shim(const void* p, const char* name) {
  const std::string w = where(p);
  return w.rfind(std::string(name) + "@", 0) == 0 && w.find("libcudefrag.so") != std::string::npos;
}

bool in_fake_driver(const void* p) {
  return where(p).find("libcuda.so.1") != std::string::npos;
}

std::uint64_t driver_calls(const char* name) {
  void* libcuda = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
  expect(libcuda != nullptr, "libcuda.so.1 is not loaded");
  auto* calls = reinterpret_cast<decltype(&fake_cuda_calls)>(dlsym(libcuda, "fake_cuda_calls"));
  expect(calls != nullptr, "fake_cuda_calls not found");
  return calls(name);
}

// Every runtime hook once (allocations 1 MiB, one failing cudaMalloc), plus a driver function
// obtained through cudaGetDriverEntryPoint.
void runtime_scenario() {
  constexpr std::size_t kMiB = std::size_t{1} << 20;
  void* p = nullptr;
  expect(cudaMalloc(&p, kMiB) == cudaSuccess && p != nullptr, "cudaMalloc");
  expect(cudaFree(p) == cudaSuccess, "cudaFree");
  expect(cudaMalloc(&p, std::size_t{1} << 41) == cudaErrorMemoryAllocation, "failing cudaMalloc");
  expect(cudaMallocAsync(&p, kMiB, nullptr) == cudaSuccess, "cudaMallocAsync");
  expect(cudaFreeAsync(p, nullptr) == cudaSuccess, "cudaFreeAsync");
  expect(cudaMallocAsync_ptsz(&p, kMiB, nullptr) == cudaSuccess, "cudaMallocAsync_ptsz");
  expect(cudaFreeAsync_ptsz(p, nullptr) == cudaSuccess, "cudaFreeAsync_ptsz");
  cudaMemPool_t pool = nullptr;
  expect(cudaDeviceGetDefaultMemPool(&pool, 0) == cudaSuccess, "cudaDeviceGetDefaultMemPool");
  expect(cudaDeviceGetMemPool(&pool, 0) == cudaSuccess, "cudaDeviceGetMemPool");
  expect(cudaMallocFromPoolAsync(&p, kMiB, pool, nullptr) == cudaSuccess,
         "cudaMallocFromPoolAsync");
  expect(cudaFreeAsync(p, nullptr) == cudaSuccess, "cudaFreeAsync");
  expect(cudaMallocFromPoolAsync_ptsz(&p, kMiB, pool, nullptr) == cudaSuccess,
         "cudaMallocFromPoolAsync_ptsz");
  expect(cudaFreeAsync(p, nullptr) == cudaSuccess, "cudaFreeAsync");
  std::size_t pitch = 0;
  expect(cudaMallocPitch(&p, &pitch, 1000, 1024) == cudaSuccess && pitch == 1024,
         "cudaMallocPitch");
  expect(cudaFree(p) == cudaSuccess, "cudaFree");
  cudaPitchedPtr pp{};
  expect(cudaMalloc3D(&pp, cudaExtent{1000, 16, 64}) == cudaSuccess, "cudaMalloc3D");
  expect(cudaFree(pp.ptr) == cudaSuccess, "cudaFree");
  std::size_t free_bytes = 0;
  std::size_t total_bytes = 0;
  expect(cudaMemGetInfo(&free_bytes, &total_bytes) == cudaSuccess && total_bytes == 2UL << 30,
         "cudaMemGetInfo");
  std::uint64_t value = 0;
  expect(cudaMemPoolGetAttribute(pool, cudaMemPoolAttrReservedMemCurrent, &value) == cudaSuccess,
         "cudaMemPoolGetAttribute");
  expect(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &value) == cudaSuccess,
         "cudaMemPoolSetAttribute");
  expect(cudaMemPoolTrimTo(pool, 0) == cudaSuccess, "cudaMemPoolTrimTo");
  const cudaMemAccessDesc access{{cudaMemLocationTypeDevice, 1}, cudaMemAccessFlagsProtReadWrite};
  expect(cudaMemPoolSetAccess(pool, &access, 1) == cudaSuccess, "cudaMemPoolSetAccess");
  cudaIpcMemHandle_t ipc{};
  expect(cudaIpcGetMemHandle(&ipc, p) == cudaSuccess, "cudaIpcGetMemHandle");
  expect(cudaDeviceEnablePeerAccess(1, 0) == cudaSuccess, "cudaDeviceEnablePeerAccess");

  // The runtime reached the driver through the shim's hooks (nested, so not counted as driver
  // calls), and the driver did the work.
  expect(driver_calls("cuMemAlloc_v2") == 2, "cuMemAlloc_v2 reached the fake driver twice");

  void* fn = nullptr;
  cudaDriverEntryPointQueryResult status{};
  expect(cudaGetDriverEntryPoint("cuMemAlloc", &fn, cudaEnableDefault, &status) == cudaSuccess,
         "cudaGetDriverEntryPoint");
  expect(in_shim(fn, "cuMemAlloc_v2"), "cudaGetDriverEntryPoint gave " + where(fn));
  expect(cudaGetDriverEntryPoint_ptsz("cuMemAllocAsync", &fn, cudaEnableDefault, &status) ==
                 cudaSuccess &&
             in_shim(fn, "cuMemAllocAsync_ptsz"),
         "cudaGetDriverEntryPoint_ptsz gave " + where(fn));
  expect(cudaGetDriverEntryPointByVersion("cuMemFree", &fn, 12000, cudaEnableDefault, &status) ==
                 cudaSuccess &&
             in_shim(fn, "cuMemFree_v2"),
         "cudaGetDriverEntryPointByVersion gave " + where(fn));
  expect(cudaGetDriverEntryPointByVersion_ptsz("cuMemAllocAsync", &fn, 12000,
                                               cudaEnableLegacyStream, &status) == cudaSuccess &&
             in_shim(fn, "cuMemAllocAsync"),
         "cudaGetDriverEntryPointByVersion_ptsz gave " + where(fn));
  expect(cudaGetDriverEntryPointByVersion("cuMemCreate", &fn, 12000, cudaEnableDefault, &status) ==
                 cudaSuccess &&
             in_shim(fn, "cuMemCreate"),
         "cuMemCreate through cudaGetDriverEntryPointByVersion gave " + where(fn));
  // A call through a pointer handed out counts as the driver call it is.
  auto* alloc = reinterpret_cast<decltype(&cuMemAlloc_v2)>(
      (cudaGetDriverEntryPoint("cuMemAlloc", &fn, cudaEnableDefault, &status), fn));
  CUdeviceptr d = 0;
  expect(alloc(&d, 3 * kMiB) == CUDA_SUCCESS, "cuMemAlloc_v2 through the entry point");
  expect(cudaGetDriverEntryPoint("cuMemFree", &fn, cudaEnableDefault, &status) == cudaSuccess,
         "cudaGetDriverEntryPoint(cuMemFree)");
  expect(reinterpret_cast<decltype(&cuMemFree_v2)>(fn)(d) == CUDA_SUCCESS, "cuMemFree_v2");
}

// A program that opens libcuda by hand and looks driver functions up itself.
void dlopen_scenario(bool expect_shim) {
  void* libcuda = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  expect(libcuda != nullptr, "dlopen libcuda.so.1");
  void* alloc_sym = dlsym(libcuda, "cuMemAlloc_v2");
  void* free_sym = dlsym(libcuda, "cuMemFree_v2");
  void* gpa_sym = dlsym(libcuda, "cuGetProcAddress_v2");
  if (!expect_shim) {
    expect(in_fake_driver(alloc_sym) && in_fake_driver(gpa_sym),
           "with the dlsym hook off, dlsym gave " + where(alloc_sym));
    return;
  }
  expect(in_shim(alloc_sym, "cuMemAlloc_v2"),
         "dlsym(libcuda, cuMemAlloc_v2) gave " + where(alloc_sym));
  expect(in_shim(free_sym, "cuMemFree_v2"), "dlsym(libcuda, cuMemFree_v2) gave " + where(free_sym));
  expect(in_shim(gpa_sym, "cuGetProcAddress_v2"),
         "dlsym(libcuda, cuGetProcAddress_v2) gave " + where(gpa_sym));
  expect(in_shim(dlsym(libcuda, "cuGetProcAddress"), "cuGetProcAddress"),
         "dlsym(libcuda, cuGetProcAddress)");
  // Functions the shim does not hook come from the library itself.
  expect(in_fake_driver(dlsym(libcuda, "cuCtxGetDevice")), "dlsym(libcuda, cuCtxGetDevice)");

  auto* alloc = reinterpret_cast<decltype(&cuMemAlloc_v2)>(alloc_sym);
  auto* release = reinterpret_cast<decltype(&cuMemFree_v2)>(free_sym);
  CUdeviceptr d = 0;
  expect(alloc(&d, 5 << 20) == CUDA_SUCCESS && d != 0, "cuMemAlloc_v2 via dlsym");
  expect(release(d) == CUDA_SUCCESS, "cuMemFree_v2 via dlsym");

  auto* gpa = reinterpret_cast<decltype(&cuGetProcAddress_v2)>(gpa_sym);
  void* fn = nullptr;
  CUdriverProcAddressQueryResult status{};
  expect(gpa("cuMemAllocAsync", &fn, 12000, CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM,
             &status) == CUDA_SUCCESS &&
             in_shim(fn, "cuMemAllocAsync_ptsz"),
         "cuGetProcAddress_v2(cuMemAllocAsync, per-thread) gave " + where(fn));
  expect(gpa("cuCtxGetDevice", &fn, 12000, 0, &status) == CUDA_SUCCESS && in_fake_driver(fn),
         "cuGetProcAddress_v2(cuCtxGetDevice) gave " + where(fn));
  expect(driver_calls("cuMemAlloc_v2") == 1, "the fake driver saw one cuMemAlloc_v2");
}

// dlsym(RTLD_NEXT) from another preloaded library must resolve relative to that library.
void rtld_next_scenario() {
  using Lookup = const char* (*)();
  auto* lookup = reinterpret_cast<Lookup>(dlsym(RTLD_DEFAULT, "cudefrag_probe_lookup_next"));
  expect(lookup != nullptr, "cudefrag_probe_lookup_next is not preloaded");
  const std::string got = lookup();
  expect(got == "C", "dlsym(RTLD_NEXT) from the second preloaded library found " + got);
}

// Many threads allocating and freeing at once: 16 x 200 x (cudaMalloc + cudaFree +
// cudaMallocAsync + cudaFreeAsync), 64 KiB each.
void threads_scenario() {
  std::vector<std::thread> threads;
  for (int t = 0; t < 16; ++t) {
    threads.emplace_back([] {
      for (int i = 0; i < 200; ++i) {
        void* a = nullptr;
        void* b = nullptr;
        if (cudaMalloc(&a, 64 << 10) != cudaSuccess) std::abort();
        if (cudaMallocAsync(&b, 64 << 10, nullptr) != cudaSuccess) std::abort();
        if (cudaFree(a) != cudaSuccess) std::abort();
        if (cudaFreeAsync(b, nullptr) != cudaSuccess) std::abort();
      }
    });
  }
  for (auto& t : threads) t.join();
}

// Leaves 7 MiB live at exit, on device 0 (two allocations) and device 1 (one).
void live_scenario() {
  void* a = nullptr;
  void* b = nullptr;
  void* c = nullptr;
  expect(cudaMalloc(&a, 2 << 20) == cudaSuccess, "cudaMalloc");
  expect(cudaMalloc(&b, 1 << 20) == cudaSuccess, "cudaMalloc");
  void* libcuda = dlopen("libcuda.so.1", RTLD_NOW | RTLD_NOLOAD);
  auto* set_device =
      reinterpret_cast<decltype(&fake_cuda_set_device)>(dlsym(libcuda, "fake_cuda_set_device"));
  expect(set_device != nullptr, "fake_cuda_set_device");
  set_device(1);
  expect(cudaMalloc(&c, 4 << 20) == cudaSuccess, "cudaMalloc on device 1");
}

// Enough traced calls on one thread (100 allocations, then their frees) that the shim times some
// of them (one in 64: the 64th is an allocation, with a call stack to measure).
void many_scenario() {
  std::vector<void*> blocks(100, nullptr);
  for (void*& p : blocks) expect(cudaMalloc(&p, 1 << 20) == cudaSuccess, "cudaMalloc");
  for (void* p : blocks) expect(cudaFree(p) == cudaSuccess, "cudaFree");
}

// A program and the child it forks share the shim's counters file: both count.
void fork_scenario() {
  void* p = nullptr;
  expect(cudaMalloc(&p, 1 << 20) == cudaSuccess, "cudaMalloc in the parent");
  const pid_t child = fork();
  expect(child >= 0, "fork");
  if (child == 0) {
    void* q = nullptr;
    _exit(cudaMalloc(&q, 2 << 20) == cudaSuccess && cudaFree(q) == cudaSuccess ? 0 : 1);
  }
  int status = 0;
  expect(waitpid(child, &status, 0) == child && WIFEXITED(status) && WEXITSTATUS(status) == 0,
         "the child's allocation");
  expect(cudaFree(p) == cudaSuccess, "cudaFree in the parent");
}

// Allocations from a static constructor, before main, before the program has set anything up.
struct EarlyAllocation {
  EarlyAllocation() {
    const char* early = std::getenv("PROBE_EARLY");
    if (early == nullptr || std::strcmp(early, "1") != 0) return;
    void* p = nullptr;
    if (cudaMalloc(&p, 4 << 20) != cudaSuccess || cudaFree(p) != cudaSuccess) std::abort();
  }
} g_early_allocation;

}  // namespace

int main(int argc, char** argv) {
  const std::string scenario = argc > 1 ? argv[1] : "";
  if (scenario == "runtime") {
    runtime_scenario();
  } else if (scenario == "dlopen") {
    dlopen_scenario(true);
  } else if (scenario == "dlopen-unhooked") {
    dlopen_scenario(false);
  } else if (scenario == "rtld-next") {
    rtld_next_scenario();
  } else if (scenario == "threads") {
    threads_scenario();
  } else if (scenario == "fork") {
    fork_scenario();
  } else if (scenario == "live") {
    live_scenario();
  } else if (scenario == "many") {
    many_scenario();
  } else if (scenario == "exit") {
    return argc > 2 ? std::atoi(argv[2]) : 0;
  } else {
    fail("unknown scenario '" + scenario + "'");
  }
  std::puts("probe: ok");
  return 0;
}
