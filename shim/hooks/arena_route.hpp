// What the dispatch functions (dispatch.hpp) do in arena mode, family by family. Non-template,
// so that the exported hooks stay thin: each dispatch function asks here whether the arena takes
// the call, and forwards to the real function when it does not.
//
// Rules (docs/semantics.md says what a program sees):
// - Allocations: cudaMalloc / cuMemAlloc are legacy allocations; the async ones are
//   stream-ordered on their stream, except while that stream is being captured (graph memory
//   nodes belong to the driver); allocations from a pool are the arena's only for the device's
//   default pool. The device is that of the calling thread's current context.
// - A pointer the arena does not own goes to the real free.
// - A thread between cudefrag_arena_pause() and its cudefrag_arena_resume() (cudefrag.h)
//   allocates from CUDA itself; its frees go wherever the memory came from.
// - Nothing here logs on the success path; failures to start an arena and refused calls are
//   logged once.
#pragma once

#include <cstddef>
#include <optional>

#include "shim/common/units.hpp"
#include "shim/hooks/counters.hpp"
#include "shim/hooks/cuda_api.hpp"
#include "shim/hooks/hook_table.hpp"

namespace cudefrag::hooks {

bool arena_mode() noexcept;

// The stream argument of a stream-ordered call, as passed.
struct StreamArg {
  const void* handle = nullptr;
  bool per_thread_entry = false;  // a _ptsz entry point: a null stream is per-thread
};

enum class Outcome : std::uint8_t {
  kPassThrough,  // not the arena's: call the real function
  kServed,
  kOutOfMemory,
};

struct Served {
  Outcome outcome = Outcome::kPassThrough;
  DevicePtr ptr;
  Bytes granted;
  DeviceOrdinal device;
};

// A legacy allocation (stream null) or a stream-ordered one; `from_pool`: the call named `pool`.
// A refused request is traced (with the arena's state, flushed to the file) before this returns.
Served arena_allocate(HookId id, Bytes size, const StreamArg* stream, bool from_pool,
                      const void* pool) noexcept;

enum class FreeOutcome : std::uint8_t { kNotOurs, kFreed, kInvalidPointer };
// `forgotten`: the live-table entry the caller removed for `p` (counters.hpp).
FreeOutcome arena_free(DevicePtr p, const StreamArg* stream, const Forgotten& forgotten) noexcept;

// cudaGetLastError() after a failed allocation the arena answered must report
// cudaErrorMemoryAllocation, as real cudart records it: provoked with an allocation the runtime
// must refuse.
void record_runtime_out_of_memory() noexcept;

// cudaMemGetInfo / cuMemGetInfo: the driver's figures, turned into what the program is told.
struct MemInfo {
  Bytes free;
  Bytes total;
};
MemInfo arena_mem_info(MemInfo driver) noexcept;

// Default pool attributes; nullopt: not the arena's, ask the real function.
std::optional<std::uint64_t> arena_pool_attribute(const void* pool, cudaMemPoolAttr attr) noexcept;
// After the real cudaMemPoolSetAttribute succeeded.
void arena_pool_attribute_set(const void* pool, cudaMemPoolAttr attr, const void* value) noexcept;
void arena_pool_trim(const void* pool, std::size_t keep) noexcept;
// After the real cudaMemPoolSetAccess succeeded: each device given read or read-write access to
// a default pool the arena replaces gets access to the arena's mappings (never taken away: the
// arena grants access, it does not revoke it).
void arena_pool_access(const void* pool, const cudaMemAccessDesc* descs,
                       std::size_t count) noexcept;

// The program's own cuMemCreate found the device full: cudaMemGetInfo counted the arena's cache
// as free, so release up to `size` of it. True when something was released (worth a retry).
bool arena_make_room(DeviceOrdinal device, Bytes size) noexcept;

// cuMemGetAddressRange on arena memory: the whole allocation; nullopt: not the arena's.
std::optional<CUresult> arena_address_range(CUdeviceptr* base, std::size_t* size,
                                            CUdeviceptr p) noexcept;
// Whether `p` is arena memory, which legacy IPC cannot export (logged once).
bool arena_refuses_ipc(const void* p) noexcept;
// After the real cudaDeviceEnablePeerAccess(peer) succeeded on the current device: the current
// device may now touch `peer`'s memory, so `peer`'s arena grants it access.
void arena_peer_enabled(int peer) noexcept;
// Before the real stream destroy.
void arena_stream_destroyed(const void* stream) noexcept;

}  // namespace cudefrag::hooks
