// What each hook does, one dispatch function per family (the `family` column of hook_list.h).
// The exported functions (exports.cpp) call dispatch_<family><HookId::name>(args...).
//
// Each dispatch function is the one place where mode arena will route its family's calls (issue
// 3). Today every family forwards to the real function and counts the call.
//
// Rules shared by all families:
// - Re-entrancy: a hook entered while the same thread is already inside one (real cudaMalloc ->
//   the driver -> our cuMemAlloc_v2 through cudart's table) forwards straight to the real
//   function and counts nothing, so each program call is counted once, at the outermost level.
//   Entry-point lookups still substitute our hooks when nested (cudart fills its driver table
//   from inside the first runtime call).
// - The real function comes from real_cuda.hpp, never from the table our cuGetProcAddress hands
//   out, which would lead back here.
// - Nothing here logs, locks globally or allocates on the success path of the async calls.
#pragma once

#include <bit>
#include <cstddef>
#include <type_traits>

#include "shim/hooks/counters.hpp"
#include "shim/hooks/cuda_api.hpp"
#include "shim/hooks/hook_list.h"
#include "shim/hooks/hook_table.hpp"
#include "shim/hooks/shim_state.hpp"
#include "shim/vmm/real_cuda.hpp"

namespace cudefrag::hooks {

// Hooks entered and not yet left on this thread. initial-exec: the library is preloaded, so its
// TLS is static and reaching it costs no call.
inline thread_local int t_hook_depth [[gnu::tls_model("initial-exec")]] = 0;

class HookScope {
 public:
  HookScope() noexcept : outermost_(t_hook_depth++ == 0) {}
  ~HookScope() { --t_hook_depth; }
  HookScope(const HookScope&) = delete;
  HookScope& operator=(const HookScope&) = delete;
  bool outermost() const noexcept { return outermost_; }

 private:
  bool outermost_;
};

// The real function behind each hook, typed.
template <HookId id>
struct Real;
#define CUDEFRAG_RT(name, family, params, args)                                   \
  template <>                                                                     \
  struct Real<HookId::name> {                                                     \
    static auto get() noexcept { return ::cudefrag::real::runtime().name.get(); } \
  };
#define CUDEFRAG_DRV(name, real_fn, base, version, ptsz, family, params, args) \
  template <>                                                                  \
  struct Real<HookId::name> {                                                  \
    static auto get() noexcept { return ::cudefrag::real::driver().real_fn; }  \
  };
CUDEFRAG_RUNTIME_HOOKS(CUDEFRAG_RT)
CUDEFRAG_DRIVER_HOOKS(CUDEFRAG_DRV)
#undef CUDEFRAG_RT
#undef CUDEFRAG_DRV

template <typename R>
constexpr bool succeeded(R result) noexcept {
  return static_cast<int>(result) == 0;
}

// When the real function cannot be found (no libcudart or libcuda behind us): logged once per
// entry point, and the call fails as a missing symbol would.
void report_missing(HookId id) noexcept;
constexpr cudaError_t missing_result(cudaError_t) noexcept {
  return cudaErrorSharedObjectSymbolNotFound;
}
constexpr CUresult missing_result(CUresult) noexcept {
  return CUDA_ERROR_SHARED_OBJECT_SYMBOL_NOT_FOUND;
}

// The device whose context is current on this thread (0 when none can be found).
DeviceOrdinal current_device() noexcept;

inline DevicePtr to_device_ptr(const void* p) noexcept {
  return DevicePtr::from(p);
}
inline DevicePtr to_device_ptr(CUdeviceptr p) noexcept {
  return DevicePtr{static_cast<std::uintptr_t>(p)};
}

// Calls the real function of `id`; counts the call when outermost. For the families whose arena
// behaviour will differ only in what they report (meminfo, pool, query, peer).
template <HookId id, typename... A>
auto forward_counted(A... a) noexcept {
  ensure_initialized();
  const HookScope scope;
  const auto real_fn = Real<id>::get();
  using R = decltype(real_fn(a...));
  if (real_fn == nullptr) {
    report_missing(id);
    return missing_result(R{});
  }
  const R r = real_fn(a...);
  if (scope.outermost()) count_call(id, succeeded(r));
  return r;
}

template <typename P>
concept OutPointer = std::is_same_v<P, void**> || std::is_same_v<P, CUdeviceptr*>;

// --- alloc: device allocations. Arena mode serves them from the device's arena here. ---

// cudaMalloc, cudaMallocAsync, cudaMallocFromPoolAsync, cuMemAlloc_v2, cuMemAllocAsync,
// cuMemAllocFromPoolAsync (and _ptsz): (out, size, rest...).
template <HookId id, OutPointer P, typename... Rest>
auto dispatch_alloc(P out, std::size_t size, Rest... rest) noexcept {
  ensure_initialized();
  const HookScope scope;
  const auto real_fn = Real<id>::get();
  using R = decltype(real_fn(out, size, rest...));
  if (real_fn == nullptr) {
    report_missing(id);
    return missing_result(R{});
  }
  const R r = real_fn(out, size, rest...);
  if (scope.outermost()) {
    const bool ok = succeeded(r) && out != nullptr;
    count_alloc(id, Bytes{size}, succeeded(r), ok ? to_device_ptr(*out) : DevicePtr{}, Bytes{size},
                ok ? current_device() : DeviceOrdinal{});
  }
  return r;
}

// cudaMallocPitch (out, pitch, width, height) and cuMemAllocPitch_v2 (..., element size).
template <HookId id, OutPointer P, typename... Rest>
auto dispatch_alloc(P out, std::size_t* pitch, std::size_t width, std::size_t height,
                    Rest... rest) noexcept {
  ensure_initialized();
  const HookScope scope;
  const auto real_fn = Real<id>::get();
  using R = decltype(real_fn(out, pitch, width, height, rest...));
  if (real_fn == nullptr) {
    report_missing(id);
    return missing_result(R{});
  }
  const R r = real_fn(out, pitch, width, height, rest...);
  if (scope.outermost()) {
    const bool ok = succeeded(r) && out != nullptr && pitch != nullptr;
    count_alloc(id, Bytes{width * height}, succeeded(r), ok ? to_device_ptr(*out) : DevicePtr{},
                Bytes{ok ? *pitch * height : 0}, ok ? current_device() : DeviceOrdinal{});
  }
  return r;
}

// cudaMalloc3D.
template <HookId id>
cudaError_t dispatch_alloc(cudaPitchedPtr* out, cudaExtent extent) noexcept {
  ensure_initialized();
  const HookScope scope;
  const auto real_fn = Real<id>::get();
  if (real_fn == nullptr) {
    report_missing(id);
    return missing_result(cudaError_t{});
  }
  const cudaError_t r = real_fn(out, extent);
  if (scope.outermost()) {
    const bool ok = succeeded(r) && out != nullptr;
    const std::size_t rows = extent.height * extent.depth;
    count_alloc(id, Bytes{extent.width * rows}, succeeded(r),
                ok ? to_device_ptr(out->ptr) : DevicePtr{}, Bytes{ok ? out->pitch * rows : 0},
                ok ? current_device() : DeviceOrdinal{});
  }
  return r;
}

// --- free: arena mode returns the arena's own pointers to it here, others to the driver. ---

// cudaFree, cudaFreeAsync, cuMemFree_v2, cuMemFreeAsync (and _ptsz): (ptr, rest...).
template <HookId id, typename P, typename... Rest>
auto dispatch_free(P ptr, Rest... rest) noexcept {
  ensure_initialized();
  const HookScope scope;
  const auto real_fn = Real<id>::get();
  using R = decltype(real_fn(ptr, rest...));
  if (real_fn == nullptr) {
    report_missing(id);
    return missing_result(R{});
  }
  if (!scope.outermost()) return real_fn(ptr, rest...);
  const Forgotten f = forget_allocation(to_device_ptr(ptr));
  const R r = real_fn(ptr, rest...);
  count_free(id, succeeded(r), f);
  return r;
}

// --- meminfo: arena mode reports cached arena memory as free here (ComfyUI sizes its model
// loading from it). ---
template <HookId id, typename... A>
auto dispatch_meminfo(A... a) noexcept {
  return forward_counted<id>(a...);
}

// --- pool: arena mode answers for the default pool it replaces (PyTorch's memory_stats and
// empty_cache under backend:cudaMallocAsync). ---
template <HookId id, typename... A>
auto dispatch_pool(A... a) noexcept {
  return forward_counted<id>(a...);
}

// --- query: arena mode answers for its own pointers (the whole allocation's range; legacy IPC,
// which VMM memory does not support). ---
template <HookId id, typename... A>
auto dispatch_query(A... a) noexcept {
  return forward_counted<id>(a...);
}

// --- peer: arena mode grants the peer access to its mappings (cuMemSetAccess), which
// cudaDeviceEnablePeerAccess alone does not. ---
template <HookId id, typename... A>
auto dispatch_peer(A... a) noexcept {
  return forward_counted<id>(a...);
}

// --- vmm: the program's own use of the virtual memory API (PyTorch's expandable segments). Its
// physical allocations count towards the device's live bytes; the arena must leave them alone. ---

// cuMemCreate.
template <HookId id>
CUresult dispatch_vmm(CUmemGenericAllocationHandle* handle, std::size_t size,
                      const CUmemAllocationProp* prop, unsigned long long flags) noexcept {
  ensure_initialized();
  const HookScope scope;
  const auto real_fn = Real<id>::get();
  if (real_fn == nullptr) {
    report_missing(id);
    return missing_result(CUresult{});
  }
  const CUresult r = real_fn(handle, size, prop, flags);
  if (scope.outermost()) {
    const bool ok = succeeded(r) && handle != nullptr;
    // Physical memory placed in host RAM is not device memory: counted as a call, not as live.
    const bool on_device = prop != nullptr && prop->location.type == CU_MEM_LOCATION_TYPE_DEVICE;
    count_create(id, Bytes{size}, succeeded(r), ok ? *handle : 0,
                 on_device ? DeviceOrdinal{prop->location.id} : DeviceOrdinal{-1});
  }
  return r;
}

// cuMemRelease.
template <HookId id>
CUresult dispatch_vmm(CUmemGenericAllocationHandle handle) noexcept {
  ensure_initialized();
  const HookScope scope;
  const auto real_fn = Real<id>::get();
  if (real_fn == nullptr) {
    report_missing(id);
    return missing_result(CUresult{});
  }
  if (!scope.outermost()) return real_fn(handle);
  const Forgotten f = forget_handle(handle);
  const CUresult r = real_fn(handle);
  count_release(id, succeeded(r), f);
  return r;
}

// cuMemMap, cuMemUnmap.
template <HookId id, typename... Rest>
CUresult dispatch_vmm(CUdeviceptr ptr, std::size_t size, Rest... rest) noexcept {
  return forward_counted<id>(ptr, size, rest...);
}

// --- entry: lookups of driver functions by name. They hand out our hooks in place of the real
// functions, so that calls through the returned pointers reach the shim. ---

// `found` is what the real lookup returned for `symbol`; returns our hook for it when there is
// one (matched by the real address first, then by name, version and per-thread flag), `found`
// otherwise.
void* substitute_driver_function(const char* symbol, void* found, int version,
                                 bool per_thread) noexcept;

// The version of the loaded CUDA runtime (what cudaGetDriverEntryPoint asks the driver for).
int runtime_version() noexcept;

// Whether a lookup asks for the per-thread-default-stream variant: explicitly by flag, or by
// default through a _ptsz entry point.
constexpr bool per_thread_requested(unsigned long long flags, bool ptsz_entry) noexcept {
  if ((flags & CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM) != 0) return true;
  if ((flags & CU_GET_PROC_ADDRESS_LEGACY_STREAM) != 0) return false;
  return ptsz_entry;
}

template <HookId id, typename Lookup>
auto lookup_and_substitute(const char* symbol, void** out, int version, unsigned long long flags,
                           Lookup&& real_lookup) noexcept {
  ensure_initialized();
  const HookScope scope;
  const auto r = real_lookup();
  if (succeeded(r) && out != nullptr && *out != nullptr && symbol != nullptr) {
    *out = substitute_driver_function(symbol, *out, version,
                                      per_thread_requested(flags, info(id).ptsz));
  }
  if (scope.outermost()) count_call(id, succeeded(r));
  return r;
}

// cuGetProcAddress (CUDA 11.3).
template <HookId id>
CUresult dispatch_entry(const char* symbol, void** pfn, int version, cuuint64_t flags) noexcept {
  const auto real_fn = Real<id>::get();
  if (real_fn == nullptr) {
    report_missing(id);
    return missing_result(CUresult{});
  }
  return lookup_and_substitute<id>(symbol, pfn, version, flags,
                                   [&] { return real_fn(symbol, pfn, version, flags); });
}

// cuGetProcAddress_v2.
template <HookId id>
CUresult dispatch_entry(const char* symbol, void** pfn, int version, cuuint64_t flags,
                        CUdriverProcAddressQueryResult* status) noexcept {
  const auto real_fn = Real<id>::get();
  if (real_fn == nullptr) {
    report_missing(id);
    return missing_result(CUresult{});
  }
  return lookup_and_substitute<id>(symbol, pfn, version, flags,
                                   [&] { return real_fn(symbol, pfn, version, flags, status); });
}

// cudaGetDriverEntryPoint (and _ptsz): the driver version asked for is the runtime's own.
template <HookId id>
cudaError_t dispatch_entry(const char* symbol, void** fn, unsigned long long flags,
                           cudaDriverEntryPointQueryResult* status) noexcept {
  const auto real_fn = Real<id>::get();
  if (real_fn == nullptr) {
    report_missing(id);
    return missing_result(cudaError_t{});
  }
  return lookup_and_substitute<id>(symbol, fn, runtime_version(), flags,
                                   [&] { return real_fn(symbol, fn, flags, status); });
}

// cudaGetDriverEntryPointByVersion (and _ptsz).
template <HookId id>
cudaError_t dispatch_entry(const char* symbol, void** fn, unsigned int version,
                           unsigned long long flags,
                           cudaDriverEntryPointQueryResult* status) noexcept {
  const auto real_fn = Real<id>::get();
  if (real_fn == nullptr) {
    report_missing(id);
    return missing_result(cudaError_t{});
  }
  return lookup_and_substitute<id>(symbol, fn, static_cast<int>(version), flags,
                                   [&] { return real_fn(symbol, fn, version, flags, status); });
}

}  // namespace cudefrag::hooks
