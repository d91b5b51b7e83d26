// The real CUDA functions, resolved from the real libraries and never from cudefrag's own
// exports: the driver's from libcuda.so.1 (dlopen + the real dlsym, then the real
// cuGetProcAddress), the runtime's from the libcudart the program loaded (dlsym(RTLD_NEXT), or the
// loaded libcudart found by name when the program opened it RTLD_LOCAL).
//
// It lives at the bottom, beside the backends, because both the CUDA backend and the hooks
// forward to it, and nothing below the hooks may reach up into them. The table handed out by our
// own cuGetProcAddress is a different one (hooks/); calling through that one from a hook would
// call the hook itself.
#pragma once

#include <cuda.h>
#include <cuda_runtime_api.h>

#include <atomic>
#include <bit>

namespace cudefrag::real {

// Driver functions the shim calls or forwards to. Extend this list, never resolve elsewhere.
#define CUDEFRAG_REAL_DRIVER_FUNCTIONS(X) \
  X(cuInit)                               \
  X(cuDriverGetVersion)                   \
  X(cuGetErrorString)                     \
  X(cuGetProcAddress_v2)                  \
  X(cuDeviceGet)                          \
  X(cuDeviceGetCount)                     \
  X(cuDeviceGetAttribute)                 \
  X(cuDevicePrimaryCtxRetain)             \
  X(cuDevicePrimaryCtxRelease_v2)         \
  X(cuCtxGetCurrent)                      \
  X(cuCtxSetCurrent)                      \
  X(cuCtxGetDevice)                       \
  X(cuCtxSynchronize)                     \
  X(cuMemAlloc_v2)                        \
  X(cuMemFree_v2)                         \
  X(cuMemAllocPitch_v2)                   \
  X(cuMemAllocAsync)                      \
  X(cuMemFreeAsync)                       \
  X(cuMemAllocFromPoolAsync)              \
  X(cuMemGetInfo_v2)                      \
  X(cuMemGetAddressRange_v2)              \
  X(cuMemAddressReserve)                  \
  X(cuMemAddressFree)                     \
  X(cuMemCreate)                          \
  X(cuMemRelease)                         \
  X(cuMemMap)                             \
  X(cuMemUnmap)                           \
  X(cuMemSetAccess)                       \
  X(cuMemGetAllocationGranularity)        \
  X(cuEventCreate)                        \
  X(cuEventDestroy_v2)                    \
  X(cuEventRecord)                        \
  X(cuEventQuery)                         \
  X(cuEventSynchronize)                   \
  X(cuStreamCreate)                       \
  X(cuStreamDestroy_v2)                   \
  X(cuLaunchHostFunc)                     \
  X(cuMemcpyHtoD_v2)                      \
  X(cuMemcpyDtoH_v2)                      \
  X(cuMemsetD8_v2)                        \
  X(cuStreamIsCapturing)                  \
  X(cuDeviceGetDefaultMemPool)            \
  X(cuDeviceGetName)                      \
  X(cuDeviceGetUuid_v2)                   \
  X(cuDeviceTotalMem_v2)                  \
  X(cuPointerGetAttribute)

// Per-thread-default-stream variants, exported by libcuda as <name>_ptsz with the signature of
// <name>. cuda.h declares them only when a program is compiled for the per-thread default stream,
// so they are typed from the base function; the table member is <name>_ptsz.
#define CUDEFRAG_REAL_DRIVER_PTSZ_FUNCTIONS(X) \
  X(cuMemAllocAsync)                           \
  X(cuMemFreeAsync)                            \
  X(cuMemAllocFromPoolAsync)

// The first cuGetProcAddress (CUDA 11.3, four arguments). cuda.h renames the token
// cuGetProcAddress to cuGetProcAddress_v2, so this one has no declaration there.
using CuGetProcAddressV1 = CUresult(CUDAAPI*)(const char* symbol, void** pfn, int cudaVersion,
                                              cuuint64_t flags);

struct DriverTable {
#define CUDEFRAG_X(name) decltype(&::name) name = nullptr;
  CUDEFRAG_REAL_DRIVER_FUNCTIONS(CUDEFRAG_X)
#undef CUDEFRAG_X
#define CUDEFRAG_X(name) decltype(&::name) name##_ptsz = nullptr;
  CUDEFRAG_REAL_DRIVER_PTSZ_FUNCTIONS(CUDEFRAG_X)
#undef CUDEFRAG_X
  // Resolved from the export "cuGetProcAddress". Named _v1 because the token cuGetProcAddress is
  // a macro for cuGetProcAddress_v2 wherever cuda.h is included.
  CuGetProcAddressV1 cuGetProcAddress_v1 = nullptr;
};

// Resolved once, lazily and thread-safely, on first use. Entries are null when libcuda.so.1 cannot
// be loaded or lacks the symbol; callers check before calling.
const DriverTable& driver();

// The real dlsym (glibc's), for code that must look symbols up while dlsym itself is hooked.
// A lookup with RTLD_NEXT through it is relative to cudefrag, not to the caller of real_dlsym.
void* real_dlsym(void* handle, const char* name);

// glibc's dlsym itself (from dlvsym(RTLD_NEXT, "dlsym", <glibc version>)), or null; for the dlsym
// hook's tail call, which must reach it with the program's own return address.
using DlsymFunction = void* (*)(void* handle, const char* name);
DlsymFunction real_dlsym_function();

// Handle of the real libcuda.so.1, loading it if needed, or null.
void* libcuda_handle();

// Handle of libcuda.so.1 only if the process has already loaded it, or null; never loads it.
// For code that must not be the one to bring the driver in (the dlsym hook).
void* loaded_libcuda_handle();

// Runtime functions the hooks forward to (the hooked ones) or call.
#define CUDEFRAG_REAL_RUNTIME_FUNCTIONS(X) \
  X(cudaMalloc)                            \
  X(cudaFree)                              \
  X(cudaMallocAsync)                       \
  X(cudaFreeAsync)                         \
  X(cudaMallocFromPoolAsync)               \
  X(cudaMallocPitch)                       \
  X(cudaMalloc3D)                          \
  X(cudaMemGetInfo)                        \
  X(cudaDeviceGetDefaultMemPool)           \
  X(cudaDeviceGetMemPool)                  \
  X(cudaMemPoolGetAttribute)               \
  X(cudaMemPoolSetAttribute)               \
  X(cudaMemPoolTrimTo)                     \
  X(cudaMemPoolSetAccess)                  \
  X(cudaIpcGetMemHandle)                   \
  X(cudaDeviceEnablePeerAccess)            \
  X(cudaStreamDestroy)                     \
  X(cudaGetDriverEntryPoint)               \
  X(cudaGetDriverEntryPointByVersion)      \
  X(cudaRuntimeGetVersion)

// As for the driver: <name>_ptsz exports with the signature of <name>.
#define CUDEFRAG_REAL_RUNTIME_PTSZ_FUNCTIONS(X) \
  X(cudaMallocAsync)                            \
  X(cudaFreeAsync)                              \
  X(cudaMallocFromPoolAsync)                    \
  X(cudaGetDriverEntryPoint)                    \
  X(cudaGetDriverEntryPointByVersion)

// Looks `name` up in the libcudart the program loaded: dlsym(RTLD_NEXT) first, then the loaded
// object whose file name contains "libcudart.so" (a program may have opened it RTLD_LOCAL).
// Never returns an address inside cudefrag itself. Null when not found.
void* find_runtime_symbol(const char* name);

// One runtime function, resolved on first use and cached. Thread-safe: racing first calls resolve
// the same address. A miss is not cached, so a libcudart loaded later is still found.
template <typename Fn>
class LazyRuntimeFunction {
 public:
  constexpr explicit LazyRuntimeFunction(const char* name) : name_(name) {}

  Fn get() const noexcept {
    void* p = cached_.load(std::memory_order_acquire);
    if (p == nullptr) {
      p = find_runtime_symbol(name_);
      if (p != nullptr) cached_.store(p, std::memory_order_release);
    }
    return std::bit_cast<Fn>(p);
  }
  const char* name() const noexcept { return name_; }

 private:
  const char* name_;
  mutable std::atomic<void*> cached_{nullptr};
};

// cudaGetDriverEntryPoint is deprecated in CUDA 13; naming its type is not a use of it.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
struct RuntimeTable {
#define CUDEFRAG_X(name) LazyRuntimeFunction<decltype(&::name)> name{#name};
  CUDEFRAG_REAL_RUNTIME_FUNCTIONS(CUDEFRAG_X)
#undef CUDEFRAG_X
#define CUDEFRAG_X(name) LazyRuntimeFunction<decltype(&::name)> name##_ptsz{#name "_ptsz"};
  CUDEFRAG_REAL_RUNTIME_PTSZ_FUNCTIONS(CUDEFRAG_X)
#undef CUDEFRAG_X
};
#pragma GCC diagnostic pop

// The runtime table; usable at any time (before main, from any thread), entries resolve lazily.
const RuntimeTable& runtime();

}  // namespace cudefrag::real
