// The defragmenting arena of one device: every allocation the hooks serve comes from here.
//
// It reserves ONE large virtual region at start and carves every range from it (so owns() is a
// single comparison). Physical memory is created on demand in handles through the backend seam
// (shim/vmm/backend.hpp). Small requests (up to a threshold, 1 MiB by default) are packed into
// slabs by size class; larger ones get a range of whole handles. Freed memory stays mapped for
// quick reuse; when memory is short, cached ranges that are known idle are unmapped and their
// physical memory is mapped behind a new contiguous range (stitched), so memory the program
// freed can always serve the next request, whatever its size.
//
// Contract:
// - Reuse keeps CUDA's promises. A block freed with free(..., kStreamOrdered) on stream s is
//   reusable at once by stream-ordered allocations on s, and by other streams (and by legacy
//   allocations) once the free has completed on s. A block freed with free(..., kLegacy)
//   (cudaFree) is not handed out until a device synchronize has followed the free. A legacy
//   allocation (cudaMalloc) only gets memory no queued work can touch.
// - Memory is never unmapped while queued work could still touch it. (Past the growth budget the
//   physical memory of a block freed on stream s may be mapped at once behind a new range for
//   an allocation on s; the block's own addresses stay mapped until its free has completed.)
// - The arena never holds more physical memory than the limit.
// - A failed allocation changes no live allocation and reports the arena's state.
// - Every method is thread-safe. Allocations and frees served from the caches make no backend
//   call and take no arena-wide lock (a mutex per size class, one for large cached ranges).
// - Streams are identified by their StreamRef value: the caller must pass a distinct value per
//   stream (the per-thread default stream resolved to the real stream), and call
//   stream_destroyed() before a stream that was used in frees is destroyed.
#pragma once

#include <memory>
#include <optional>
#include <vector>

#include "shim/arena/arena_events.hpp"
#include "shim/arena/arena_stats.hpp"
#include "shim/common/units.hpp"
#include "shim/vmm/backend.hpp"

namespace cudefrag::arena {

struct ArenaOptions {
  // Most physical memory the arena may hold; 0: the device's total memory.
  Bytes limit{0};
  // Size of the virtual region reserved at start; 0: 4 x the device's total memory. At least
  // twice the limit, so that freed ranges kept mapped never starve new ones of addresses.
  Bytes va_reservation{0};
  // Requests up to this size are packed into slabs; larger ones get their own range. 0: none.
  // At most SizeClasses::kMaxThreshold (16 MiB). The shim passes CUDEFRAG_SMALL_MAX (8 MiB by
  // default: a request of 1-8 MiB then wastes under 1/9 of its slot instead of up to half of a
  // 2 MiB-rounded range); the unit tests are written around 1 MiB.
  Bytes small_threshold = MiB(1);
  // A cached range serves a request when it is larger by at most request / 2^slack_shift
  // (rounded down to the granularity): 3 bounds that waste at 12.5%.
  std::uint32_t reuse_slack_shift = 3;
  // The same once memory is short: from the first time the arena had to reclaim cached memory
  // (the limit reached or the device refusing new memory) until it creates a new range with
  // headroom of at least a quarter of what it holds. Every byte a reuse grants
  // beyond the request is then a byte the program may lack: on an H200 a transformer failed a
  // 288 MiB request 19 MiB short while its live ranges held ~60 MiB of such slack
  // (docs/arena.md). 6 bounds the waste at 1.6% (nothing below 128 MiB, where 1/64 is under
  // the 2 MiB granularity).
  std::uint32_t tight_slack_shift = 6;
  // Most physical handles one new range maps; beyond that, the smallest reused handles are
  // released and their memory created again as one handle (cuMemSetAccess costs ~30 us per
  // handle on the H200, cuMemRelease ~10 us).
  std::uint32_t max_stitch_pieces = 16;
  // Growth budget, in percent: with room under the limit, new memory is created only while the
  // arena's physical memory stays within grow_percent % of max(peak live, live + request).
  // Beyond that a request that missed the caches is first rebuilt from cached memory already
  // known idle (unmapped and stitched), then from memory freed on the request's own stream (its
  // old addresses stay mapped until that free completes), never waiting for the device; only
  // what that cannot cover is created. 0: create while the limit allows. Without a budget the arena
  // kept growing when a program did the same work again: replaying the shipped H200 traces 8 times
  // (`cudefrag replay --repeat 8`), 6.5 -> 8.4 GiB (diffusion) and 8.5 -> 9.3 GiB (ComfyUI),
  // where 200 settled at 4.7 and 5.0 GiB after the first time (docs/arena.md).
  std::uint32_t grow_percent = 200;
};

enum class AllocKind : std::uint8_t {
  kStreamOrdered,  // cudaMallocAsync / cuMemAllocAsync on a stream
  kLegacy,         // cudaMalloc / cuMemAlloc: usable by any stream at once
};

enum class FreeKind : std::uint8_t {
  kStreamOrdered,  // cudaFreeAsync / cuMemFreeAsync on a stream
  kLegacy,         // cudaFree / cuMemFree
};

enum class ArenaError : std::uint8_t {
  kNone,
  kOutOfMemory,   // the limit, the device or the address space cannot hold the request
  kBackendError,  // the backend failed otherwise (see backend_status)
};

struct AllocResult {
  DevicePtr ptr;  // null for a zero-byte request, which succeeds
  ArenaError error = ArenaError::kNone;
  vmm::Status backend_status = vmm::Status::kOk;
  // On failure: the arena's state when the request failed.
  Bytes request;
  ArenaStats state;

  bool ok() const { return error == ArenaError::kNone; }
};

enum class FreeResult : std::uint8_t {
  kOk,
  kNotOwned,        // outside the arena's region: the caller passes it to the real free
  kInvalidPointer,  // inside the region, but not the start of a live allocation
};

// Figures the hooks report on behalf of the program (cudaMemGetInfo, the default pool's
// attributes, the stats file). Unlike stats(), reading them makes no backend call.
struct ArenaFigures {
  Bytes live;         // granted to live allocations
  Bytes physical;     // held (what a pool calls reserved)
  Bytes reclaimable;  // freed ranges and empty slabs: any request can reuse or stitch them
  Bytes peak_live;
  Bytes peak_physical;
  std::uint64_t stitches = 0;
  std::uint64_t slow_allocations = 0;
  std::uint64_t slow_ns = 0;  // ArenaStats::slow_ns
};

struct AllocationRange {
  DevicePtr base;  // start of the whole allocation
  Bytes size;      // as requested
  Bytes granted;   // as held (slot or range size)
};

class Arena {
 public:
  // Takes the device's memory information and reserves the virtual region. Returns nullptr and
  // sets *why when the backend cannot (kNotSupported, kOutOfMemory...) or the options are
  // invalid (kInvalidValue).
  static std::unique_ptr<Arena> create(std::unique_ptr<vmm::Backend> backend,
                                       const ArenaOptions& options, vmm::Status* why);
  // Waits for the device, then unmaps and releases everything, live allocations included.
  ~Arena();
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;

  AllocResult allocate(Bytes size, vmm::StreamRef stream, AllocKind kind);
  // A null pointer is a successful no-op.
  FreeResult free(DevicePtr p, vmm::StreamRef stream, FreeKind kind);

  bool owns(DevicePtr p) const { return p.value - va_base_.value < va_size_.value; }
  // The whole live allocation holding `inside` (for cuMemGetAddressRange); nullopt if none.
  std::optional<AllocationRange> allocation_range(DevicePtr inside) const;

  // Releases cached memory (freed ranges, empty slabs) until the arena holds at most `keep`
  // physical bytes or nothing more is releasable (cudaMemPoolTrimTo). Waits for outstanding frees
  // first, so that what the program freed can go.
  vmm::Status trim(Bytes keep);
  // Makes what the program freed count in figures().reclaimable, as it would count as free
  // without the shim: cudaFree'd memory not yet fenced costs one device synchronize (what
  // cudaFree itself costs without the shim); stream-ordered frees are taken only when their
  // stream's fence has passed, never waited for. For cudaMemGetInfo: not a hot path.
  void settle_frees();
  // Call before destroying a stream the program freed memory on (see the contract above).
  vmm::Status stream_destroyed(vmm::StreamRef stream);

  ArenaStats stats() const;

  // arena_figures.cpp: cheap figures for the hooks, and the peak resets of
  // cudaMemPoolSetAttribute(ReservedMemHigh / UsedMemHigh, 0): the peak restarts from now.
  ArenaFigures figures() const;
  void reset_peak_live();
  void reset_peak_physical();

  // arena_peers.cpp: grants `peer` read-write access to every mapped range and to every range
  // mapped later (cudaDeviceEnablePeerAccess does not reach VMM mappings). Granting a device
  // twice, or the arena's own device, changes nothing. On failure the peer is not remembered.
  vmm::Status grant_peer_access(DeviceOrdinal peer);
  // Replaces the listener (empty: none). Called under the slow-path mutex; see arena_events.hpp.
  void set_listener(ArenaListener listener);

  vmm::Backend& backend();
  Bytes granularity() const;
  Bytes small_threshold() const;

  struct Impl;

 private:
  explicit Arena(std::unique_ptr<Impl> impl);

  std::unique_ptr<Impl> impl_;
  DevicePtr va_base_;
  Bytes va_size_;
};

}  // namespace cudefrag::arena
