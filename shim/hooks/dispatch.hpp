// What each hook does, one dispatch function per family (the `family` column of hook_list.h).
// The exported functions (exports.cpp) call dispatch_<family><HookId::name>(args...).
//
// Each dispatch function is the one place where arena mode routes its family's calls
// (arena_route.hpp decides); in passthrough mode, and for calls the arena does not take, every
// family forwards to the real function and counts the call.
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
#include <cstring>
#include <type_traits>

#include "shim/hooks/arena_route.hpp"
#include "shim/hooks/counters.hpp"
#include "shim/hooks/cuda_api.hpp"
#include "shim/hooks/hook_list.h"
#include "shim/hooks/hook_table.hpp"
#include "shim/hooks/shim_state.hpp"
#include "shim/hooks/tracing.hpp"
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

// The hooks named _ptsz: a null stream is the per-thread default stream there.
template <HookId id>
constexpr bool per_thread_entry() noexcept {
  return info(id).name.ends_with("_ptsz");
}

// What an allocation call asks the arena: legacy (no stream), stream-ordered, or from a pool.
template <HookId id>
Served serve_allocation(Bytes size) noexcept {
  return arena_allocate(id, size, nullptr, false, nullptr);
}
template <HookId id>
Served serve_allocation(Bytes size, CUstream stream) noexcept {
  const StreamArg s{stream, per_thread_entry<id>()};
  return arena_allocate(id, size, &s, false, nullptr);
}
template <HookId id>
Served serve_allocation(Bytes size, CUmemoryPool pool, CUstream stream) noexcept {
  const StreamArg s{stream, per_thread_entry<id>()};
  return arena_allocate(id, size, &s, true, pool);
}

// The stream an allocation names, for the trace (null for legacy allocations).
inline const void* stream_of() noexcept {
  return nullptr;
}
inline const void* stream_of(CUstream s) noexcept {
  return s;
}
inline const void* stream_of(CUmemoryPool, CUstream s) noexcept {
  return s;
}

// The result code of a call the arena answered, in the entry point's own type.
template <typename R>
R arena_result(Outcome o) noexcept {
  if constexpr (std::is_same_v<R, cudaError_t>) {
    if (o == Outcome::kServed) return cudaSuccess;
    record_runtime_out_of_memory();
    return cudaErrorMemoryAllocation;
  } else {
    return o == Outcome::kServed ? CUDA_SUCCESS : CUDA_ERROR_OUT_OF_MEMORY;
  }
}

template <OutPointer P>
void store_pointer(P out, DevicePtr p) noexcept {
  if constexpr (std::is_same_v<P, void**>) {
    *out = p.as_void();
  } else {
    *out = static_cast<CUdeviceptr>(p.value);
  }
}

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
  if (scope.outermost() && out != nullptr && arena_mode()) {
    const Served s = serve_allocation<id>(Bytes{size}, rest...);
    if (s.outcome != Outcome::kPassThrough) {
      const bool ok = s.outcome == Outcome::kServed;
      if (ok) store_pointer(out, s.ptr);
      count_alloc(id, Bytes{size}, ok, s.ptr, s.granted, s.device);
      // A refusal was traced with the arena's state (arena_allocate).
      if (ok) trace_alloc(id, s.device, stream_of(rest...), s.ptr, Bytes{size}, s.granted, 0);
      return arena_result<R>(s.outcome);
    }
  }
  const R r = real_fn(out, size, rest...);
  if (scope.outermost()) {
    const bool ok = succeeded(r) && out != nullptr;
    const DevicePtr p = ok ? to_device_ptr(*out) : DevicePtr{};
    const DeviceOrdinal device = current_device();
    count_alloc(id, Bytes{size}, succeeded(r), p, Bytes{size}, ok ? device : DeviceOrdinal{});
    trace_alloc(id, device, stream_of(rest...), p, Bytes{size}, ok ? Bytes{size} : Bytes{},
                static_cast<int>(r));
  }
  return r;
}

// Pitched allocations pass through in arena mode too: they are rare (image and 3D code), the
// driver picks the pitch for its texture hardware, and a program may rely on that pitch.
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
    const DevicePtr p = ok ? to_device_ptr(*out) : DevicePtr{};
    const Bytes granted{ok ? *pitch * height : 0};
    const DeviceOrdinal device = current_device();
    count_alloc(id, Bytes{width * height}, succeeded(r), p, granted, ok ? device : DeviceOrdinal{});
    trace_alloc(id, device, nullptr, p, Bytes{width * height}, granted, static_cast<int>(r));
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
    const DevicePtr p = ok ? to_device_ptr(out->ptr) : DevicePtr{};
    const Bytes granted{ok ? out->pitch * rows : 0};
    const DeviceOrdinal device = current_device();
    count_alloc(id, Bytes{extent.width * rows}, succeeded(r), p, granted,
                ok ? device : DeviceOrdinal{});
    trace_alloc(id, device, nullptr, p, Bytes{extent.width * rows}, granted, static_cast<int>(r));
  }
  return r;
}

// --- free: arena mode returns the arena's own pointers to it here, others to the driver. ---

inline const void* free_stream_of() noexcept {
  return nullptr;
}
inline const void* free_stream_of(CUstream s) noexcept {
  return s;
}

template <HookId id>
const StreamArg* free_stream(StreamArg& s, CUstream stream) noexcept {
  s = StreamArg{stream, per_thread_entry<id>()};
  return &s;
}
template <HookId id>
const StreamArg* free_stream(StreamArg&) noexcept {
  return nullptr;
}

template <typename R>
R invalid_value_result() noexcept {
  if constexpr (std::is_same_v<R, cudaError_t>) {
    return cudaErrorInvalidValue;
  } else {
    return CUDA_ERROR_INVALID_VALUE;
  }
}

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
  const DevicePtr p = to_device_ptr(ptr);
  const trace::TimeNs before = free_time();
  const Forgotten f = forget_allocation(p);
  const DeviceOrdinal device = f.found ? f.device : DeviceOrdinal{-1};
  if (p && arena_mode()) {
    StreamArg storage;
    const FreeOutcome o = arena_free(p, free_stream<id>(storage, rest...), f);
    if (o != FreeOutcome::kNotOurs) {
      const bool ok = o == FreeOutcome::kFreed;
      count_free(id, ok, f);
      const R r = ok ? R{} : invalid_value_result<R>();
      trace_free(id, device, free_stream_of(rest...), p, f.size, static_cast<int>(r), before);
      return r;
    }
  }
  const R r = real_fn(ptr, rest...);
  count_free(id, succeeded(r), f);
  if (p) trace_free(id, device, free_stream_of(rest...), p, f.size, static_cast<int>(r), before);
  return r;
}

// --- meminfo: arena mode reports cached arena memory as free (ComfyUI sizes its model loading
// from it) and the limit, when there is one, as the total. Null out-pointers are allowed. ---
// Nested (real cudaMemGetInfo -> our cuMemGetInfo through cudart's driver table), the figures
// go back untouched: the outermost hook adds the arena's cache once. Adding it at both levels
// counted the cache twice, and free passed total on the GPU.
template <HookId id>
auto dispatch_meminfo(std::size_t* free_bytes, std::size_t* total_bytes) noexcept {
  if (!arena_mode() || t_hook_depth > 0) return forward_counted<id>(free_bytes, total_bytes);
  std::size_t f = 0;
  std::size_t t = 0;
  const auto r = forward_counted<id>(&f, &t);
  if (!succeeded(r)) return r;
  const MemInfo told = arena_mem_info(MemInfo{Bytes{f}, Bytes{t}});
  if (free_bytes != nullptr) *free_bytes = told.free.value;
  if (total_bytes != nullptr) *total_bytes = told.total.value;
  return r;
}

// --- pool: arena mode answers for the default pool it replaces (PyTorch's memory_stats and
// empty_cache under backend:cudaMallocAsync); other pools are the driver's. ---

// cudaDeviceGetDefaultMemPool, cudaDeviceGetMemPool.
template <HookId id>
cudaError_t dispatch_pool(cudaMemPool_t* pool, int device) noexcept {
  return forward_counted<id>(pool, device);
}

// cudaMemPoolGetAttribute, cudaMemPoolSetAttribute.
template <HookId id>
cudaError_t dispatch_pool(cudaMemPool_t pool, cudaMemPoolAttr attr, void* value) noexcept {
  if constexpr (id == HookId::cudaMemPoolGetAttribute) {
    ensure_initialized();
    if (value != nullptr && arena_mode()) {
      if (const auto v = arena_pool_attribute(pool, attr)) {
        const HookScope scope;
        std::memcpy(value, &*v, sizeof *v);
        if (scope.outermost()) count_call(id, true);
        return cudaSuccess;
      }
    }
    return forward_counted<id>(pool, attr, value);
  } else {
    const cudaError_t r = forward_counted<id>(pool, attr, value);
    if (r == cudaSuccess && arena_mode()) arena_pool_attribute_set(pool, attr, value);
    return r;
  }
}

// cudaMemPoolTrimTo: the arena trims too (torch.cuda.empty_cache()).
template <HookId id>
cudaError_t dispatch_pool(cudaMemPool_t pool, std::size_t keep) noexcept {
  ensure_initialized();
  if (arena_mode()) arena_pool_trim(pool, keep);
  return forward_counted<id>(pool, keep);
}

// cudaMemPoolSetAccess on a default pool the arena replaces: the arena grants the devices the
// same access to its mappings. PyTorch's cudaMallocAsync backend enables peer copies this way,
// without cudaDeviceEnablePeerAccess.
template <HookId id>
cudaError_t dispatch_pool(cudaMemPool_t pool, const cudaMemAccessDesc* descs,
                          std::size_t count) noexcept {
  const cudaError_t r = forward_counted<id>(pool, descs, count);
  if (r == cudaSuccess && arena_mode()) arena_pool_access(pool, descs, count);
  return r;
}

// --- query: arena mode answers for its own pointers. ---

// cuMemGetAddressRange_v2: the whole allocation, not the handle behind it.
template <HookId id>
CUresult dispatch_query(CUdeviceptr* base, std::size_t* size, CUdeviceptr p) noexcept {
  ensure_initialized();
  if (arena_mode()) {
    if (const auto r = arena_address_range(base, size, p)) {
      const HookScope scope;
      if (scope.outermost()) count_call(id, *r == CUDA_SUCCESS);
      return *r;
    }
  }
  return forward_counted<id>(base, size, p);
}

// cudaIpcGetMemHandle: legacy IPC cannot export virtual-memory allocations (docs/semantics.md).
template <HookId id>
cudaError_t dispatch_query(cudaIpcMemHandle_t* handle, void* p) noexcept {
  ensure_initialized();
  if (arena_mode() && arena_refuses_ipc(p)) {
    const HookScope scope;
    if (scope.outermost()) count_call(id, false);
    return cudaErrorInvalidValue;
  }
  return forward_counted<id>(handle, p);
}

// --- peer: arena mode grants the peer access to its mappings (cuMemSetAccess), which
// cudaDeviceEnablePeerAccess alone does not. ---
template <HookId id>
cudaError_t dispatch_peer(int peer, unsigned int flags) noexcept {
  const cudaError_t r = forward_counted<id>(peer, flags);
  // Already enabled (by an earlier call) still means the program expects access: grant it,
  // which costs nothing when the arena has it already.
  if ((r == cudaSuccess || r == cudaErrorPeerAccessAlreadyEnabled) && arena_mode()) {
    arena_peer_enabled(peer);
  }
  return r;
}

// --- stream: cudaStreamDestroy, cuStreamDestroy_v2. The arenas settle the stream's frees first
// (arena.hpp: a later stream at the same address must start with nothing pending). ---
template <HookId id>
auto dispatch_stream(CUstream stream) noexcept {
  ensure_initialized();
  if (arena_mode() && t_hook_depth == 0) arena_stream_destroyed(stream);
  return forward_counted<id>(stream);
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
  CUresult r = real_fn(handle, size, prop, flags);
  const bool on_device = prop != nullptr && prop->location.type == CU_MEM_LOCATION_TYPE_DEVICE;
  // PyTorch's expandable segments (or ComfyUI's own pager) create physical memory themselves,
  // sized from cudaMemGetInfo, which counts the arena's cache as free: make that true.
  if (r == CUDA_ERROR_OUT_OF_MEMORY && scope.outermost() && on_device && arena_mode() &&
      arena_make_room(DeviceOrdinal{prop->location.id}, Bytes{size})) {
    r = real_fn(handle, size, prop, flags);
  }
  if (scope.outermost()) {
    const bool ok = succeeded(r) && handle != nullptr;
    // Physical memory placed in host RAM is not device memory: counted as a call, not as live.
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
