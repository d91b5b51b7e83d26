// A fake libcudart.so.13 for the hook tests. Like the real runtime, it reaches the driver only
// through function pointers: it opens libcuda.so.1 by hand, takes cuGetProcAddress_v2 from it
// with dlsym and fills its driver table through that, on first use. So under the preloaded shim
// its driver calls run nested inside the runtime hooks. Records every call; no GPU.
#include <cuda.h>
#include <cuda_runtime_api.h>
#include <dlfcn.h>

#include <cstring>
#include <mutex>

#include "tests/shim/hooks/fake/fake_calls.hpp"

namespace {

using cudefrag::fake::CallLog;

constinit CallLog<27> g_calls{{
    "cudaMalloc",
    "cudaFree",
    "cudaMallocAsync",
    "cudaMallocAsync_ptsz",
    "cudaFreeAsync",
    "cudaFreeAsync_ptsz",
    "cudaMallocFromPoolAsync",
    "cudaMallocFromPoolAsync_ptsz",
    "cudaMallocPitch",
    "cudaMalloc3D",
    "cudaMemGetInfo",
    "cudaDeviceGetDefaultMemPool",
    "cudaDeviceGetMemPool",
    "cudaMemPoolGetAttribute",
    "cudaMemPoolSetAttribute",
    "cudaMemPoolTrimTo",
    "cudaIpcGetMemHandle",
    "cudaDeviceEnablePeerAccess",
    "cudaGetDriverEntryPoint",
    "cudaGetDriverEntryPoint_ptsz",
    "cudaGetDriverEntryPointByVersion",
    "cudaGetDriverEntryPointByVersion_ptsz",
    "cudaRuntimeGetVersion",
    "driver_table_filled",
    "cudaStreamDestroy",
    "cudaMemPoolSetAccess",
    "unused3",
}};

using GetProcAddress = CUresult (*)(const char*, void**, int, cuuint64_t,
                                    CUdriverProcAddressQueryResult*);

struct DriverTable {
  GetProcAddress get_proc_address = nullptr;
  decltype(&cuMemAlloc_v2) mem_alloc = nullptr;
  decltype(&cuMemFree_v2) mem_free = nullptr;
  decltype(&cuMemAllocPitch_v2) mem_alloc_pitch = nullptr;
  decltype(&cuMemAllocAsync) mem_alloc_async = nullptr;
  decltype(&cuMemAllocAsync) mem_alloc_async_ptsz = nullptr;
  decltype(&cuMemFreeAsync) mem_free_async = nullptr;
  decltype(&cuMemFreeAsync) mem_free_async_ptsz = nullptr;
  decltype(&cuMemAllocFromPoolAsync) mem_alloc_from_pool = nullptr;
  decltype(&cuMemAllocFromPoolAsync) mem_alloc_from_pool_ptsz = nullptr;
  decltype(&cuMemGetInfo_v2) mem_get_info = nullptr;
};

std::mutex g_mutex;
// As the real runtime's: per thread, set by failed calls, cleared by cudaGetLastError.
thread_local cudaError_t t_last_error = cudaSuccess;

cudaError_t noted(cudaError_t r) {
  if (r != cudaSuccess) t_last_error = r;
  return r;
}
DriverTable g_table;
bool g_filled = false;

template <typename Fn>
void get(GetProcAddress gpa, const char* name, int version, cuuint64_t flags, Fn& out) {
  void* p = nullptr;
  CUdriverProcAddressQueryResult status{};
  if (gpa(name, &p, version, flags, &status) == CUDA_SUCCESS) out = reinterpret_cast<Fn>(p);
}

DriverTable fill(GetProcAddress gpa) {
  DriverTable t;
  t.get_proc_address = gpa;
  if (gpa == nullptr) return t;
  constexpr cuuint64_t kLegacy = CU_GET_PROC_ADDRESS_LEGACY_STREAM;
  constexpr cuuint64_t kPerThread = CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM;
  get(gpa, "cuMemAlloc", 3020, kLegacy, t.mem_alloc);
  get(gpa, "cuMemFree", 3020, kLegacy, t.mem_free);
  get(gpa, "cuMemAllocPitch", 3020, kLegacy, t.mem_alloc_pitch);
  get(gpa, "cuMemAllocAsync", 11020, kLegacy, t.mem_alloc_async);
  get(gpa, "cuMemAllocAsync", 11020, kPerThread, t.mem_alloc_async_ptsz);
  get(gpa, "cuMemFreeAsync", 11020, kLegacy, t.mem_free_async);
  get(gpa, "cuMemFreeAsync", 11020, kPerThread, t.mem_free_async_ptsz);
  get(gpa, "cuMemAllocFromPoolAsync", 11020, kLegacy, t.mem_alloc_from_pool);
  get(gpa, "cuMemAllocFromPoolAsync", 11020, kPerThread, t.mem_alloc_from_pool_ptsz);
  get(gpa, "cuMemGetInfo", 3020, kLegacy, t.mem_get_info);
  return t;
}

// As the real runtime does: the driver is found by hand, not linked.
const DriverTable& driver() {
  const std::lock_guard lock(g_mutex);
  if (!g_filled) {
    void* libcuda = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    auto* gpa = libcuda != nullptr
                    ? reinterpret_cast<GetProcAddress>(dlsym(libcuda, "cuGetProcAddress_v2"))
                    : nullptr;
    g_table = fill(gpa);
    g_filled = true;
    g_calls.record("driver_table_filled");
  }
  return g_table;
}

cudaError_t to_runtime(CUresult r) {
  switch (r) {
    case CUDA_SUCCESS:
      return cudaSuccess;
    case CUDA_ERROR_OUT_OF_MEMORY:
      return cudaErrorMemoryAllocation;
    case CUDA_ERROR_NOT_FOUND:
      return cudaErrorSymbolNotFound;
    default:
      return cudaErrorInvalidValue;
  }
}

template <typename Fn, typename... A>
cudaError_t call(Fn fn, A... a) {
  return fn != nullptr ? to_runtime(fn(a...)) : cudaErrorInitializationError;
}

cudaError_t alloc_through(decltype(&cuMemAllocAsync) fn, void** p, std::size_t size,
                          cudaStream_t s) {
  CUdeviceptr d = 0;
  const cudaError_t r = call(fn, &d, size, reinterpret_cast<CUstream>(s));
  if (r == cudaSuccess && p != nullptr) *p = reinterpret_cast<void*>(d);
  return r;
}

cudaError_t entry_point(const char* symbol, void** fn, int version, unsigned long long flags,
                        cudaDriverEntryPointQueryResult* status) {
  CUdriverProcAddressQueryResult s{};
  const CUresult r = driver().get_proc_address != nullptr
                         ? driver().get_proc_address(symbol, fn, version, flags, &s)
                         : CUDA_ERROR_NOT_INITIALIZED;
  if (status != nullptr) {
    *status = s == CU_GET_PROC_ADDRESS_SUCCESS ? cudaDriverEntryPointSuccess
                                               : cudaDriverEntryPointSymbolNotFound;
  }
  return to_runtime(r);
}

constexpr unsigned long long kPerThreadByDefault = cudaEnablePerThreadDefaultStream;

}  // namespace

extern "C" {

cudaError_t cudaMalloc(void** p, std::size_t size) {
  g_calls.record("cudaMalloc");
  CUdeviceptr d = 0;
  const cudaError_t r = call(driver().mem_alloc, &d, size);
  if (r == cudaSuccess && p != nullptr) *p = reinterpret_cast<void*>(d);
  return noted(r);
}
cudaError_t cudaFree(void* p) {
  g_calls.record("cudaFree");
  if (p == nullptr) return cudaSuccess;
  return call(driver().mem_free, reinterpret_cast<CUdeviceptr>(p));
}
cudaError_t cudaMallocAsync(void** p, std::size_t size, cudaStream_t s) {
  g_calls.record("cudaMallocAsync");
  return noted(alloc_through(driver().mem_alloc_async, p, size, s));
}
cudaError_t cudaMallocAsync_ptsz(void** p, std::size_t size, cudaStream_t s) {
  g_calls.record("cudaMallocAsync_ptsz");
  return alloc_through(driver().mem_alloc_async_ptsz, p, size, s);
}
cudaError_t cudaFreeAsync(void* p, cudaStream_t s) {
  g_calls.record("cudaFreeAsync");
  return call(driver().mem_free_async, reinterpret_cast<CUdeviceptr>(p),
              reinterpret_cast<CUstream>(s));
}
cudaError_t cudaFreeAsync_ptsz(void* p, cudaStream_t s) {
  g_calls.record("cudaFreeAsync_ptsz");
  return call(driver().mem_free_async_ptsz, reinterpret_cast<CUdeviceptr>(p),
              reinterpret_cast<CUstream>(s));
}
cudaError_t cudaMallocFromPoolAsync(void** p, std::size_t size, cudaMemPool_t pool,
                                    cudaStream_t s) {
  g_calls.record("cudaMallocFromPoolAsync");
  CUdeviceptr d = 0;
  const cudaError_t r = call(driver().mem_alloc_from_pool, &d, size,
                             reinterpret_cast<CUmemoryPool>(pool), reinterpret_cast<CUstream>(s));
  if (r == cudaSuccess && p != nullptr) *p = reinterpret_cast<void*>(d);
  return r;
}
cudaError_t cudaMallocFromPoolAsync_ptsz(void** p, std::size_t size, cudaMemPool_t pool,
                                         cudaStream_t s) {
  g_calls.record("cudaMallocFromPoolAsync_ptsz");
  CUdeviceptr d = 0;
  const cudaError_t r = call(driver().mem_alloc_from_pool_ptsz, &d, size,
                             reinterpret_cast<CUmemoryPool>(pool), reinterpret_cast<CUstream>(s));
  if (r == cudaSuccess && p != nullptr) *p = reinterpret_cast<void*>(d);
  return r;
}
cudaError_t cudaMallocPitch(void** p, std::size_t* pitch, std::size_t width, std::size_t height) {
  g_calls.record("cudaMallocPitch");
  CUdeviceptr d = 0;
  const cudaError_t r = call(driver().mem_alloc_pitch, &d, pitch, width, height, 16U);
  if (r == cudaSuccess && p != nullptr) *p = reinterpret_cast<void*>(d);
  return r;
}
cudaError_t cudaMalloc3D(cudaPitchedPtr* out, cudaExtent extent) {
  g_calls.record("cudaMalloc3D");
  CUdeviceptr d = 0;
  std::size_t pitch = 0;
  const cudaError_t r =
      call(driver().mem_alloc_pitch, &d, &pitch, extent.width, extent.height * extent.depth, 16U);
  if (r == cudaSuccess && out != nullptr) {
    *out = cudaPitchedPtr{reinterpret_cast<void*>(d), pitch, extent.width, extent.height};
  }
  return r;
}
cudaError_t cudaMemGetInfo(std::size_t* free_bytes, std::size_t* total_bytes) {
  g_calls.record("cudaMemGetInfo");
  return call(driver().mem_get_info, free_bytes, total_bytes);
}
cudaError_t cudaDeviceGetDefaultMemPool(cudaMemPool_t* pool, int device) {
  g_calls.record("cudaDeviceGetDefaultMemPool");
  if (pool != nullptr)
    *pool = reinterpret_cast<cudaMemPool_t>(std::uintptr_t{0x1000} + static_cast<unsigned>(device));
  return cudaSuccess;
}
cudaError_t cudaDeviceGetMemPool(cudaMemPool_t* pool, int device) {
  g_calls.record("cudaDeviceGetMemPool");
  if (pool != nullptr)
    *pool = reinterpret_cast<cudaMemPool_t>(std::uintptr_t{0x1000} + static_cast<unsigned>(device));
  return cudaSuccess;
}
cudaError_t cudaMemPoolGetAttribute(cudaMemPool_t, cudaMemPoolAttr, void* value) {
  g_calls.record("cudaMemPoolGetAttribute");
  if (value != nullptr) std::memset(value, 0, sizeof(std::uint64_t));
  return cudaSuccess;
}
cudaError_t cudaMemPoolSetAttribute(cudaMemPool_t, cudaMemPoolAttr, void*) {
  g_calls.record("cudaMemPoolSetAttribute");
  return cudaSuccess;
}
cudaError_t cudaMemPoolTrimTo(cudaMemPool_t, std::size_t) {
  g_calls.record("cudaMemPoolTrimTo");
  return cudaSuccess;
}
cudaError_t cudaMemPoolSetAccess(cudaMemPool_t, const cudaMemAccessDesc*, std::size_t) {
  g_calls.record("cudaMemPoolSetAccess");
  return cudaSuccess;
}
cudaError_t cudaIpcGetMemHandle(cudaIpcMemHandle_t* handle, void*) {
  g_calls.record("cudaIpcGetMemHandle");
  if (handle != nullptr) std::memset(handle, 0, sizeof *handle);
  return cudaSuccess;
}
cudaError_t cudaDeviceEnablePeerAccess(int, unsigned int) {
  g_calls.record("cudaDeviceEnablePeerAccess");
  return cudaSuccess;
}
cudaError_t cudaGetDriverEntryPoint(const char* symbol, void** fn, unsigned long long flags,
                                    cudaDriverEntryPointQueryResult* status) {
  g_calls.record("cudaGetDriverEntryPoint");
  return entry_point(symbol, fn, 13000, flags, status);
}
cudaError_t cudaGetDriverEntryPoint_ptsz(const char* symbol, void** fn, unsigned long long flags,
                                         cudaDriverEntryPointQueryResult* status) {
  g_calls.record("cudaGetDriverEntryPoint_ptsz");
  return entry_point(symbol, fn, 13000, flags == 0 ? kPerThreadByDefault : flags, status);
}
cudaError_t cudaGetDriverEntryPointByVersion(const char* symbol, void** fn, unsigned int version,
                                             unsigned long long flags,
                                             cudaDriverEntryPointQueryResult* status) {
  g_calls.record("cudaGetDriverEntryPointByVersion");
  return entry_point(symbol, fn, static_cast<int>(version), flags, status);
}
cudaError_t cudaGetDriverEntryPointByVersion_ptsz(const char* symbol, void** fn,
                                                  unsigned int version, unsigned long long flags,
                                                  cudaDriverEntryPointQueryResult* status) {
  g_calls.record("cudaGetDriverEntryPointByVersion_ptsz");
  return entry_point(symbol, fn, static_cast<int>(version),
                     flags == 0 ? kPerThreadByDefault : flags, status);
}
cudaError_t cudaStreamDestroy(cudaStream_t) {
  g_calls.record("cudaStreamDestroy");
  return cudaSuccess;
}
cudaError_t cudaGetLastError() {
  const cudaError_t r = t_last_error;
  t_last_error = cudaSuccess;
  return r;
}
cudaError_t cudaRuntimeGetVersion(int* version) {
  g_calls.record("cudaRuntimeGetVersion");
  if (version != nullptr) *version = 13000;
  return cudaSuccess;
}

// Test controls.
std::uint64_t fake_cudart_calls(const char* name) {
  return g_calls.count(name);
}
void fake_cudart_reset() {
  g_calls.reset();
}
// Fills the driver table through `get_proc_address` (for in-process tests, where dlsym is not
// hooked: they pass the shim's cuGetProcAddress_v2, as the dlsym hook would have).
void fake_cudart_use_driver_lookup(void* get_proc_address) {
  const std::lock_guard lock(g_mutex);
  g_table = fill(reinterpret_cast<GetProcAddress>(get_proc_address));
  g_filled = true;
}

}  // extern "C"
