// The trace behind the hooks: what each hook and each arena tells the process-wide recorder
// (shim/trace/recorder.hpp) when CUDEFRAG_TRACE names a file.
//
// - Every allocation and free the hooks see, served by an arena or by CUDA, with its entry point,
//   device, stream, address, requested and granted bytes, the result the program got, and the
//   call stack CUDEFRAG_STACKS asks for (captured by the recorder).
// - Arena events from each arena's listener: mappings, stitches, unmaps, physical memory created
//   and released, cached memory released; trims from the hook that asked for them (with the
//   target). The arena's figures every second (the recorder's counters poll).
// - Arena states (OOM, counters) carry the driver's free and total memory as the arena's backend
//   reads them at that moment (cuMemGetInfo; the host backend's own capacity in tests).
// - An allocation the arena refuses: the request and the arena's state, written to the file
//   (flush_sync) before the error returns to the program.
// When tracing is off every function here returns after one atomic load. Nothing here touches
// CUDA before a hook has (the devices are described on their first traced allocation).
#pragma once

#include "shim/arena/arena.hpp"
#include "shim/common/units.hpp"
#include "shim/config/options.hpp"
#include "shim/hooks/hook_table.hpp"
#include "shim/trace/recorder.hpp"

namespace cudefrag::hooks {

// At start-up: hands the recorder its options (it opens the file on the first event).
void configure_tracing(const config::Config& config) noexcept;

inline bool tracing() noexcept {
  return trace::recorder() != nullptr;
}

// The time to stamp a free with: taken before the memory goes back (recorder.hpp); 0 when off.
inline trace::TimeNs free_time() noexcept {
  return tracing() ? trace::now() : trace::TimeNs{};
}

void trace_alloc(HookId id, DeviceOrdinal device, const void* stream, DevicePtr ptr,
                 Bytes requested, Bytes granted, int result) noexcept;
void trace_free(HookId id, DeviceOrdinal device, const void* stream, DevicePtr ptr, Bytes size,
                int result, trace::TimeNs before) noexcept;
// An allocation the arena of `device` refused; `state` as the arena reported it.
void trace_out_of_memory(HookId id, DeviceOrdinal device, const void* stream, Bytes requested,
                         int result, const arena::ArenaStats& state) noexcept;
// The arena listener's half (called under the arena's slow-path mutex).
void trace_arena_event(DeviceOrdinal device, const arena::ArenaEvent& event) noexcept;
// cudaMemPoolTrimTo on a replaced default pool.
void trace_trim(DeviceOrdinal device, Bytes released, Bytes keep) noexcept;

}  // namespace cudefrag::hooks
