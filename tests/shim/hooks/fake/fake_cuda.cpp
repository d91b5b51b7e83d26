// A fake libcuda.so.1 for the hook tests: exports the driver functions the hooks intercept and a
// cuGetProcAddress that hands out its own functions by name, version and stream flag, records
// every call, and never touches a GPU.
//
// FAKE_CUDA_INTERNAL_POINTERS=1 makes cuGetProcAddress hand out internal functions instead of
// the exports for a few entries (cuMemAlloc, per-thread cuMemAllocAsync), as a real driver may:
// the hooks must then recognise them by name. "cuMemAlloc" at version 14000 and later is a newer
// variant (_v3) the hooks do not know and must not replace.
#include <cuda.h>

#include <atomic>
#include <cstdlib>
#include <cstring>

#include "tests/shim/hooks/fake/fake_calls.hpp"

#undef cuGetProcAddress
#undef cuMemAlloc

namespace {

using cudefrag::fake::CallLog;
using cudefrag::fake::kFailingSize;
using cudefrag::fake::next_fake_address;

constinit CallLog<24> g_calls{{
    "cuMemAlloc",
    "cuMemAlloc_v2",
    "cuMemAlloc_v3",
    "cuMemFree_v2",
    "cuMemAllocPitch_v2",
    "cuMemAllocAsync",
    "cuMemAllocAsync_ptsz",
    "cuMemFreeAsync",
    "cuMemFreeAsync_ptsz",
    "cuMemAllocFromPoolAsync",
    "cuMemAllocFromPoolAsync_ptsz",
    "cuMemGetInfo_v2",
    "cuMemGetAddressRange_v2",
    "cuMemCreate",
    "cuMemRelease",
    "cuMemMap",
    "cuMemUnmap",
    "cuGetProcAddress",
    "cuGetProcAddress_v2",
    "cuDriverGetVersion",
    "cuStreamDestroy_v2",
    "cuStreamIsCapturing",
    "internal",
    "unused",
}};

thread_local int t_device = 0;  // -1: no context current
std::atomic<int> g_capturing{0};
std::atomic<int> g_failing_creates{0};  // the next n cuMemCreate calls report out of memory

CUresult alloc(const char* name, CUdeviceptr* p, std::size_t size) {
  g_calls.record(name);
  if (p == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (size >= kFailingSize) return CUDA_ERROR_OUT_OF_MEMORY;
  *p = next_fake_address();
  return CUDA_SUCCESS;
}

CUresult free_ptr(const char* name, CUdeviceptr p) {
  g_calls.record(name);
  return p == 1 ? CUDA_ERROR_INVALID_VALUE : CUDA_SUCCESS;  // 1: a pointer tests free in vain
}

CUresult internal_alloc_v2(CUdeviceptr* p, std::size_t size) {
  g_calls.record("internal");
  return alloc("cuMemAlloc_v2", p, size);
}
CUresult internal_alloc_async_ptsz(CUdeviceptr* p, std::size_t size, CUstream) {
  g_calls.record("internal");
  return alloc("cuMemAllocAsync_ptsz", p, size);
}
CUresult alloc_v3(CUdeviceptr* p, std::size_t size) {
  return alloc("cuMemAlloc_v3", p, size);
}

struct Entry {
  const char* base;
  int min_version;
  bool ptsz;
  void* exported;
  void* internal;
};

bool internal_pointers() {
  const char* v = std::getenv("FAKE_CUDA_INTERNAL_POINTERS");
  return v != nullptr && std::strcmp(v, "1") == 0;
}

CUresult lookup(const char* symbol, void** pfn, int version, cuuint64_t flags,
                CUdriverProcAddressQueryResult* status);

}  // namespace

extern "C" {

CUresult cuMemAlloc(unsigned int* p, unsigned int size) {
  g_calls.record("cuMemAlloc");
  if (p == nullptr) return CUDA_ERROR_INVALID_VALUE;
  *p = size;
  return CUDA_SUCCESS;
}
CUresult cuMemAlloc_v2(CUdeviceptr* p, std::size_t size) {
  return alloc("cuMemAlloc_v2", p, size);
}
CUresult cuMemFree_v2(CUdeviceptr p) {
  return free_ptr("cuMemFree_v2", p);
}
CUresult cuMemAllocPitch_v2(CUdeviceptr* p, std::size_t* pitch, std::size_t width,
                            std::size_t height, unsigned int /*element*/) {
  if (pitch != nullptr) *pitch = (width + 511) / 512 * 512;
  return alloc("cuMemAllocPitch_v2", p, width * height);
}
CUresult cuMemAllocAsync(CUdeviceptr* p, std::size_t size, CUstream) {
  return alloc("cuMemAllocAsync", p, size);
}
CUresult cuMemAllocAsync_ptsz(CUdeviceptr* p, std::size_t size, CUstream) {
  return alloc("cuMemAllocAsync_ptsz", p, size);
}
CUresult cuMemFreeAsync(CUdeviceptr p, CUstream) {
  return free_ptr("cuMemFreeAsync", p);
}
CUresult cuMemFreeAsync_ptsz(CUdeviceptr p, CUstream) {
  return free_ptr("cuMemFreeAsync_ptsz", p);
}
CUresult cuMemAllocFromPoolAsync(CUdeviceptr* p, std::size_t size, CUmemoryPool, CUstream) {
  return alloc("cuMemAllocFromPoolAsync", p, size);
}
CUresult cuMemAllocFromPoolAsync_ptsz(CUdeviceptr* p, std::size_t size, CUmemoryPool, CUstream) {
  return alloc("cuMemAllocFromPoolAsync_ptsz", p, size);
}
CUresult cuMemGetInfo_v2(std::size_t* free_bytes, std::size_t* total_bytes) {
  g_calls.record("cuMemGetInfo_v2");
  if (free_bytes != nullptr) *free_bytes = std::size_t{1} << 30;
  if (total_bytes != nullptr) *total_bytes = std::size_t{2} << 30;
  return CUDA_SUCCESS;
}
CUresult cuMemGetAddressRange_v2(CUdeviceptr* base, std::size_t* size, CUdeviceptr p) {
  g_calls.record("cuMemGetAddressRange_v2");
  if (base != nullptr) *base = p;
  if (size != nullptr) *size = 1;
  return CUDA_SUCCESS;
}
CUresult cuMemCreate(CUmemGenericAllocationHandle* handle, std::size_t size,
                     const CUmemAllocationProp* /*prop*/, unsigned long long /*flags*/) {
  g_calls.record("cuMemCreate");
  if (handle == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (size >= kFailingSize) return CUDA_ERROR_OUT_OF_MEMORY;
  int failing = g_failing_creates.load();
  while (failing > 0 && !g_failing_creates.compare_exchange_weak(failing, failing - 1)) {
  }
  if (failing > 0) return CUDA_ERROR_OUT_OF_MEMORY;
  *handle = next_fake_address();
  return CUDA_SUCCESS;
}
CUresult cuMemRelease(CUmemGenericAllocationHandle) {
  g_calls.record("cuMemRelease");
  return CUDA_SUCCESS;
}
CUresult cuMemMap(CUdeviceptr, std::size_t, std::size_t, CUmemGenericAllocationHandle,
                  unsigned long long) {
  g_calls.record("cuMemMap");
  return CUDA_SUCCESS;
}
CUresult cuMemUnmap(CUdeviceptr, std::size_t) {
  g_calls.record("cuMemUnmap");
  return CUDA_SUCCESS;
}
// Not recorded: the hooks call it on every allocation, and the record would dominate the timings
// of benchmarks run against this fake.
CUresult cuCtxGetDevice(CUdevice* device) {
  if (device == nullptr) return CUDA_ERROR_INVALID_VALUE;
  if (t_device < 0) return CUDA_ERROR_INVALID_CONTEXT;
  *device = t_device;
  return CUDA_SUCCESS;
}
CUresult cuDeviceGet(CUdevice* device, int ordinal) {
  if (device == nullptr) return CUDA_ERROR_INVALID_VALUE;
  *device = ordinal;
  return CUDA_SUCCESS;
}
// The same handles as the fake runtime's cudaDeviceGetDefaultMemPool.
CUresult cuDeviceGetDefaultMemPool(CUmemoryPool* pool, CUdevice device) {
  if (pool == nullptr) return CUDA_ERROR_INVALID_VALUE;
  *pool = reinterpret_cast<CUmemoryPool>(std::uintptr_t{0x1000} + static_cast<unsigned>(device));
  return CUDA_SUCCESS;
}
CUresult cuStreamIsCapturing(CUstream, CUstreamCaptureStatus* status) {
  g_calls.record("cuStreamIsCapturing");
  if (status == nullptr) return CUDA_ERROR_INVALID_VALUE;
  *status =
      g_capturing.load() != 0 ? CU_STREAM_CAPTURE_STATUS_ACTIVE : CU_STREAM_CAPTURE_STATUS_NONE;
  return CUDA_SUCCESS;
}
CUresult cuStreamDestroy_v2(CUstream) {
  g_calls.record("cuStreamDestroy_v2");
  return CUDA_SUCCESS;
}
CUresult cuDriverGetVersion(int* version) {
  g_calls.record("cuDriverGetVersion");
  if (version != nullptr) *version = 13000;
  return CUDA_SUCCESS;
}
CUresult cuGetProcAddress_v2(const char* symbol, void** pfn, int version, cuuint64_t flags,
                             CUdriverProcAddressQueryResult* status) {
  g_calls.record("cuGetProcAddress_v2");
  return lookup(symbol, pfn, version, flags, status);
}
CUresult cuGetProcAddress(const char* symbol, void** pfn, int version, cuuint64_t flags) {
  g_calls.record("cuGetProcAddress");
  return lookup(symbol, pfn, version, flags, nullptr);
}

// Test controls.
std::uint64_t fake_cuda_calls(const char* name) {
  return g_calls.count(name);
}
void fake_cuda_reset() {
  g_calls.reset();
}
void fake_cuda_set_device(int device) {
  t_device = device;
}
void fake_cuda_fail_creates(int count) {
  g_failing_creates.store(count);
}
void fake_cuda_set_capturing(int capturing) {
  g_capturing.store(capturing);
}

}  // extern "C"

namespace {

template <typename Fn>
void* address(Fn fn) {
  return reinterpret_cast<void*>(fn);
}

CUresult lookup(const char* symbol, void** pfn, int version, cuuint64_t flags,
                CUdriverProcAddressQueryResult* status) {
  const Entry entries[] = {
      {"cuMemAlloc", 2000, false, address(&cuMemAlloc), nullptr},
      {"cuMemAlloc", 3020, false, address(&cuMemAlloc_v2), address(&internal_alloc_v2)},
      {"cuMemAlloc", 14000, false, address(&alloc_v3), nullptr},
      {"cuMemFree", 3020, false, address(&cuMemFree_v2), nullptr},
      {"cuMemAllocPitch", 3020, false, address(&cuMemAllocPitch_v2), nullptr},
      {"cuMemAllocAsync", 11020, false, address(&cuMemAllocAsync), nullptr},
      {"cuMemAllocAsync", 11020, true, address(&cuMemAllocAsync_ptsz),
       address(&internal_alloc_async_ptsz)},
      {"cuMemFreeAsync", 11020, false, address(&cuMemFreeAsync), nullptr},
      {"cuMemFreeAsync", 11020, true, address(&cuMemFreeAsync_ptsz), nullptr},
      {"cuMemAllocFromPoolAsync", 11020, false, address(&cuMemAllocFromPoolAsync), nullptr},
      {"cuMemAllocFromPoolAsync", 11020, true, address(&cuMemAllocFromPoolAsync_ptsz), nullptr},
      {"cuMemGetInfo", 3020, false, address(&cuMemGetInfo_v2), nullptr},
      {"cuMemGetAddressRange", 3020, false, address(&cuMemGetAddressRange_v2), nullptr},
      {"cuMemCreate", 10020, false, address(&cuMemCreate), nullptr},
      {"cuMemRelease", 10020, false, address(&cuMemRelease), nullptr},
      {"cuMemMap", 10020, false, address(&cuMemMap), nullptr},
      {"cuMemUnmap", 10020, false, address(&cuMemUnmap), nullptr},
      {"cuGetProcAddress", 11030, false, address(&cuGetProcAddress), nullptr},
      {"cuGetProcAddress", 12000, false, address(&cuGetProcAddress_v2), nullptr},
      {"cuCtxGetDevice", 2000, false, address(&cuCtxGetDevice), nullptr},
      {"cuStreamDestroy", 4000, false, address(&cuStreamDestroy_v2), nullptr},
      {"cuDriverGetVersion", 2020, false, address(&cuDriverGetVersion), nullptr},
  };
  if (pfn == nullptr || symbol == nullptr) return CUDA_ERROR_INVALID_VALUE;
  *pfn = nullptr;
  const bool per_thread = (flags & CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM) != 0;
  const Entry* best = nullptr;
  bool known = false;
  for (const Entry& e : entries) {
    if (std::strcmp(e.base, symbol) != 0) continue;
    known = true;
    if (e.min_version > version) continue;
    // A per-thread variant only for per-thread requests; the legacy one otherwise, or when the
    // function has no per-thread variant.
    if (e.ptsz && !per_thread) continue;
    if (best == nullptr || e.min_version > best->min_version ||
        (e.min_version == best->min_version && e.ptsz)) {
      best = &e;
    }
  }
  if (best == nullptr) {
    if (status != nullptr) {
      *status =
          known ? CU_GET_PROC_ADDRESS_VERSION_NOT_SUFFICIENT : CU_GET_PROC_ADDRESS_SYMBOL_NOT_FOUND;
    }
    return CUDA_ERROR_NOT_FOUND;
  }
  *pfn = internal_pointers() && best->internal != nullptr ? best->internal : best->exported;
  if (status != nullptr) *status = CU_GET_PROC_ADDRESS_SUCCESS;
  return CUDA_SUCCESS;
}

}  // namespace
