#include "shim/hooks/arena_route.hpp"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <limits>

#include "shim/config/log.hpp"
#include "shim/hooks/arenas.hpp"
#include "shim/hooks/shim_state.hpp"
#include "shim/hooks/stream_refs.hpp"
#include "shim/hooks/tracing.hpp"
#include "shim/vmm/real_cuda.hpp"

namespace cudefrag::hooks {
namespace {

// cudefrag_arena_pause() calls of this thread not yet resumed (cudefrag.h).
[[gnu::tls_model("initial-exec")]] thread_local int t_paused = 0;

std::optional<DeviceOrdinal> context_device() noexcept {
  const auto get = real::driver().cuCtxGetDevice;
  CUdevice device = 0;
  if (get == nullptr || get(&device) != CUDA_SUCCESS) return std::nullopt;
  return DeviceOrdinal{device};
}

// The device an allocation is for. A runtime call with no context current makes the runtime's
// current device's primary context current, as the real call would have (cudaFree(nullptr) is
// the runtime's documented way to do that); a driver call with none fails in the real function.
std::optional<DeviceOrdinal> allocation_device(Api api) noexcept {
  if (const auto d = context_device()) return d;
  if (api != Api::kRuntime) return std::nullopt;
  const auto init = real::runtime().cudaFree.get();
  if (init == nullptr || init(nullptr) != cudaSuccess) return std::nullopt;
  return context_device();
}

// Graph capture turns stream-ordered allocations into graph memory nodes, which the driver
// owns. When the driver cannot say (e.g. the legacy stream while another stream captures in
// global mode), the real function decides.
bool capturing(const StreamArg& s) noexcept {
  const auto is_capturing = real::driver().cuStreamIsCapturing;
  if (is_capturing == nullptr) return false;
  CUstreamCaptureStatus status = CU_STREAM_CAPTURE_STATUS_NONE;
  const CUstream handle = static_cast<CUstream>(driver_stream(s.handle, s.per_thread_entry));
  if (is_capturing(handle, &status) != CUDA_SUCCESS) return true;
  return status != CU_STREAM_CAPTURE_STATUS_NONE;
}

stats::DeviceCounters* device_counters(DeviceOrdinal d) noexcept {
  if (d.value < 0 || static_cast<std::size_t>(d.value) >= stats::kMaxDevices) return nullptr;
  return &counters_block().devices[static_cast<std::size_t>(d.value)];
}

void warn_backend_failure_once(DeviceOrdinal d, vmm::Status s) noexcept {
  static std::atomic<bool> warned{false};
  if (warned.exchange(true, std::memory_order_relaxed)) return;
  const std::string_view why = vmm::to_string(s);
  log::warn(
      "device %d: the arena failed to serve an allocation (%.*s); it went to CUDA instead "
      "(said once)",
      d.value, static_cast<int>(why.size()), why.data());
}

}  // namespace

bool arena_mode() noexcept {
  return effective_mode() == config::Mode::kArena;
}

Served arena_allocate(HookId id, Bytes size, const StreamArg* stream, bool from_pool,
                      const void* pool) noexcept {
  Served out;
  if (t_paused > 0) return out;
  if (stream != nullptr && capturing(*stream)) return out;
  const std::optional<DeviceOrdinal> device = allocation_device(info(id).api);
  if (!device) return out;
  if (from_pool && (pool == nullptr || pool != default_pool(*device))) return out;
  arena::Arena* a = arena_for(*device);
  if (a == nullptr) return out;
  const vmm::StreamRef ref =
      stream != nullptr ? arena_stream(stream->handle, stream->per_thread_entry) : vmm::StreamRef{};
  const arena::AllocKind kind =
      stream != nullptr ? arena::AllocKind::kStreamOrdered : arena::AllocKind::kLegacy;
  const arena::AllocResult r = a->allocate(size, ref, kind);
  publish_if_changed(*device, *a);
  out.device = *device;
  switch (r.error) {
    case arena::ArenaError::kNone:
      out.outcome = Outcome::kServed;
      out.ptr = r.ptr;
      if (stream != nullptr) note_stream_ordered_use(*device);
      if (r.ptr) {
        const std::optional<arena::AllocationRange> range = a->allocation_range(r.ptr);
        out.granted = range ? range->granted : size;
        if (stats::DeviceCounters* c = device_counters(*device)) {
          stats::add(c->arena_live_bytes, out.granted.value);
        }
      }
      return out;
    case arena::ArenaError::kOutOfMemory:
      out.outcome = Outcome::kOutOfMemory;
      // cudaErrorMemoryAllocation and CUDA_ERROR_OUT_OF_MEMORY are both 2.
      trace_out_of_memory(id, *device, stream != nullptr ? stream->handle : nullptr, size,
                          static_cast<int>(CUDA_ERROR_OUT_OF_MEMORY), r.state);
      return out;
    case arena::ArenaError::kBackendError:
      break;
  }
  // The program must not fail because the arena did: CUDA serves this one.
  warn_backend_failure_once(*device, r.backend_status);
  out.outcome = Outcome::kPassThrough;
  return out;
}

FreeOutcome arena_free(DevicePtr p, const StreamArg* stream, const Forgotten& forgotten) noexcept {
  const OwnedBy owner = owning_arena(p);
  if (owner.arena == nullptr) return FreeOutcome::kNotOurs;
  const vmm::StreamRef ref =
      stream != nullptr ? arena_stream(stream->handle, stream->per_thread_entry) : vmm::StreamRef{};
  const arena::FreeKind kind =
      stream != nullptr ? arena::FreeKind::kStreamOrdered : arena::FreeKind::kLegacy;
  const arena::FreeResult r = owner.arena->free(p, ref, kind);
  publish_if_changed(owner.device, *owner.arena);
  if (r != arena::FreeResult::kOk) return FreeOutcome::kInvalidPointer;
  if (forgotten.found) {
    if (stats::DeviceCounters* c = device_counters(owner.device)) {
      std::atomic_ref(c->arena_live_bytes)
          .fetch_sub(forgotten.size.value, std::memory_order_relaxed);
    }
  }
  return FreeOutcome::kFreed;
}

void record_runtime_out_of_memory() noexcept {
  const auto real_malloc = real::runtime().cudaMalloc.get();
  if (real_malloc == nullptr) return;
  // Far beyond any device's memory: refused at once, nothing allocated.
  constexpr std::size_t kImpossible = std::size_t{1} << 62;
  void* p = nullptr;
  if (real_malloc(&p, kImpossible) == cudaSuccess) {
    // Unreachable on any real device; never leak it if it happens.
    if (const auto real_free = real::runtime().cudaFree.get()) real_free(p);
  }
}

MemInfo arena_mem_info(MemInfo driver) noexcept {
  const std::optional<DeviceOrdinal> device = context_device();
  arena::Arena* a = device ? existing_arena(*device) : nullptr;
  const Bytes limit = arena_limit();
  MemInfo out = driver;
  if (limit.value != 0) out.total = limit;
  if (a == nullptr) {
    if (limit.value != 0) out.free = std::min(out.free, limit);
    return out;
  }
  // The arena's cache is told once. A program that allocates stream-ordered uses the default
  // pool the arena stands in for, and reads what that pool keeps from its attributes (reserved
  // minus used, as PyTorch's backend:cudaMallocAsync does in memory_stats()); the driver's own
  // pool's cache is not free memory to cudaMemGetInfo either. ComfyUI adds the two
  // (mem_get_info + reserved - active): counting the cache in both loaded more than fit
  // (docs/RESULTS.md). Any other program hears of the cache only here.
  const bool pool_user = stream_ordered_in_use(*device);
  Bytes held;  // what counts against the limit
  if (pool_user) {
    held = a->figures().physical;
  } else {
    a->settle_frees();
    const arena::ArenaFigures f = a->figures();
    out.free = driver.free + f.reclaimable;
    held = f.live;
  }
  if (limit.value != 0) {
    const Bytes room = limit > held ? limit - held : Bytes{};
    out.free = std::min(out.free, room);
  }
  // Never more free than there is memory: the driver's figure and the arena's cache are read at
  // different instants, and a GPU check saw their sum pass the total once (docs/RESULTS.md).
  out.free = std::min(out.free, out.total);
  return out;
}

std::optional<std::uint64_t> arena_pool_attribute(const void* pool, cudaMemPoolAttr attr) noexcept {
  const std::optional<OwnedBy> owner = default_pool_arena(pool);
  if (!owner) return std::nullopt;
  switch (attr) {
    case cudaMemPoolAttrReservedMemCurrent:
      return owner->arena->figures().physical.value;
    case cudaMemPoolAttrReservedMemHigh:
      return owner->arena->figures().peak_physical.value;
    case cudaMemPoolAttrUsedMemCurrent:
      return owner->arena->figures().live.value;
    case cudaMemPoolAttrUsedMemHigh:
      return owner->arena->figures().peak_live.value;
    case cudaMemPoolAttrReleaseThreshold:
      return release_threshold(owner->device);
    default:
      return std::nullopt;
  }
}

void arena_pool_attribute_set(const void* pool, cudaMemPoolAttr attr, const void* value) noexcept {
  const std::optional<OwnedBy> owner = default_pool_arena(pool);
  if (!owner || value == nullptr) return;
  std::uint64_t v = 0;
  std::memcpy(&v, value, sizeof v);
  switch (attr) {
    case cudaMemPoolAttrReservedMemHigh:
      if (v == 0) owner->arena->reset_peak_physical();
      break;
    case cudaMemPoolAttrUsedMemHigh:
      if (v == 0) owner->arena->reset_peak_live();
      break;
    case cudaMemPoolAttrReleaseThreshold:
      remember_release_threshold(owner->device, v);
      break;
    default:
      break;
  }
}

void arena_pool_trim(const void* pool, std::size_t keep) noexcept {
  const std::optional<OwnedBy> owner = default_pool_arena(pool);
  if (!owner) return;
  const Bytes before = owner->arena->figures().physical;
  (void)owner->arena->trim(Bytes{keep});
  const Bytes after = owner->arena->figures().physical;
  trace_trim(owner->device, before > after ? before - after : Bytes{}, Bytes{keep});
  publish_if_changed(owner->device, *owner->arena);
}

bool arena_make_room(DeviceOrdinal device, Bytes size) noexcept {
  arena::Arena* a = existing_arena(device);
  if (a == nullptr) return false;
  const arena::ArenaFigures f = a->figures();
  if (f.reclaimable.value == 0) return false;
  const Bytes keep = f.physical > size ? f.physical - size : Bytes{};
  (void)a->trim(keep);
  const Bytes after = a->figures().physical;
  if (after >= f.physical) return false;
  trace_trim(device, f.physical - after, keep);
  publish_if_changed(device, *a);
  return true;
}

std::optional<CUresult> arena_address_range(CUdeviceptr* base, std::size_t* size,
                                            CUdeviceptr p) noexcept {
  const DevicePtr ptr{static_cast<std::uintptr_t>(p)};
  const OwnedBy owner = owning_arena(ptr);
  if (owner.arena == nullptr) return std::nullopt;
  const std::optional<arena::AllocationRange> r = owner.arena->allocation_range(ptr);
  if (!r) return CUDA_ERROR_NOT_FOUND;
  if (base != nullptr) *base = static_cast<CUdeviceptr>(r->base.value);
  if (size != nullptr) *size = r->size.value;
  return CUDA_SUCCESS;
}

bool arena_refuses_ipc(const void* p) noexcept {
  if (owning_arena(DevicePtr::from(p)).arena == nullptr) return false;
  static std::atomic<bool> said{false};
  if (!said.exchange(true, std::memory_order_relaxed)) {
    log::warn(
        "cudaIpcGetMemHandle: legacy CUDA IPC cannot share arena (virtual memory) allocations; "
        "the call fails with cudaErrorInvalidValue. Allocate that memory between "
        "cudefrag_arena_pause() and cudefrag_arena_resume() (cudefrag.h), or run with "
        "CUDEFRAG_MODE=passthrough (cudefrag run --mode passthrough), to share it this way.");
  }
  return true;
}

void arena_peer_enabled(int peer) noexcept {
  if (const auto device = context_device()) enable_peer(DeviceOrdinal{peer}, *device);
}

void arena_pool_access(const void* pool, const cudaMemAccessDesc* descs,
                       std::size_t count) noexcept {
  if (descs == nullptr) return;
  // The pool's device may have no arena yet: enable_peer() then grants at its start.
  const std::optional<DeviceOrdinal> device = default_pool_device(pool);
  if (!device) return;
  for (std::size_t i = 0; i < count; ++i) {
    const cudaMemAccessDesc& d = descs[i];
    if (d.location.type != cudaMemLocationTypeDevice || d.flags == cudaMemAccessFlagsProtNone) {
      continue;
    }
    enable_peer(*device, DeviceOrdinal{d.location.id});
  }
}

void arena_stream_destroyed(const void* stream) noexcept {
  // The default streams are never destroyed; a real handle names the same stream everywhere.
  const vmm::StreamRef ref{const_cast<void*>(stream)};
  for_each_arena([&](DeviceOrdinal, arena::Arena& a) { (void)a.stream_destroyed(ref); });
}

}  // namespace cudefrag::hooks

// cudefrag.h is not included: it declares these weak (for programs), which would make the
// definitions weak too.
extern "C" [[gnu::visibility("default")]] int cudefrag_arena_pause(void) {
  int& depth = cudefrag::hooks::t_paused;
  if (depth < std::numeric_limits<int>::max()) ++depth;
  return depth;
}

extern "C" [[gnu::visibility("default")]] int cudefrag_arena_resume(void) {
  int& depth = cudefrag::hooks::t_paused;
  if (depth > 0) --depth;
  return depth;
}
