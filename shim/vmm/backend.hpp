// The seam between the arena and the outside world: every operation the arena needs from the
// CUDA driver, and nothing more. The arena never calls the driver directly, so it runs unchanged
// on the host-memory implementation in the CPU tests, and this file is the one a reader studies
// to port cudefrag.
//
// Two implementations:
//   - CudaBackend (cuda_backend.hpp): cuMemAddressReserve / cuMemCreate / cuMemMap /
//     cuMemSetAccess / cuEvent*, through the table of real driver functions (real_cuda.hpp),
//     never through our own hooks.
//   - HostBackend (host_backend.hpp): memfd chunks mapped with mmap(MAP_FIXED|MAP_SHARED) into
//     PROT_NONE reservations. A chunk can be mapped at two addresses at once and both see the
//     same bytes, exactly like a VMM handle; "streams" are worker threads that run queued work in
//     order, so stream-ordering bugs in the arena show up as corrupted bytes in the tests.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>

#include "shim/common/units.hpp"

namespace cudefrag::vmm {

// Result of every backend call. The arena turns OutOfMemory into "try to reclaim, then report
// OOM"; anything else it reports as a failure of the operation at hand, never as a crash.
enum class Status : std::uint8_t {
  kOk,
  kOutOfMemory,   // physical memory (or address space) exhausted
  kInvalidValue,  // a contract below was broken by the caller
  kNotSupported,  // e.g. no VMM support on this device or driver
  kBackendError,  // anything else the driver reported; details are logged by the backend
};

std::string_view to_string(Status s);

// Where physical memory lives. Host memory mapped into the device's address space is slower but
// lets the arena one day move cold blocks off the card instead of failing (DESIGN.md).
enum class Location : std::uint8_t { kDevice, kHost };

// Opaque handle to one physical allocation (CUmemGenericAllocationHandle on CUDA).
struct PhysHandle {
  std::uint64_t value = 0;
  constexpr auto operator<=>(const PhysHandle&) const = default;
};

// A stream as the program sees it (CUstream / cudaStream_t). nullptr is the legacy default stream;
// the per-thread default stream is its own value (CU_STREAM_PER_THREAD).
struct StreamRef {
  void* value = nullptr;
  constexpr auto operator<=>(const StreamRef&) const = default;
};

// An event created by the backend (CUevent on CUDA).
struct EventRef {
  void* value = nullptr;
  constexpr auto operator<=>(const EventRef&) const = default;
};

// One device's view of virtual memory.
//
// Contract, for every implementation:
// - Sizes passed to reserve/create/map/unmap/set_access are non-zero multiples of granularity(),
//   and addresses and offsets are multiples of it; violating that returns kInvalidValue and
//   changes nothing.
// - reserve() returns a range aligned to granularity() (or to `alignment` when that is a larger
//   power of two) that is not accessible until mapped and given access.
// - map() maps bytes [offset, offset + size) of a physical allocation at va, onto pages of ONE
//   reservation that are not mapped. The same physical bytes may be mapped at several addresses
//   at once; all of them see the same contents. A mapping is not accessible until set_access()
//   is called on it. Only whole handles can be mapped today: offset 0 and size equal to the
//   handle's size; anything else returns kNotSupported (cuMemMap answers
//   CUDA_ERROR_NOT_SUPPORTED on driver 580 / CUDA 13, measured on an H200), so a "piece" of
//   physical memory the arena wants to remap on its own must be a handle of its own.
// - unmap() removes the mappings that tile [va, va + size) exactly (it cannot cut a mapping in
//   two); the range stays reserved. It does NOT wait for the device: the caller must know that
//   no queued work can still touch the range. set_access() likewise takes whole mappings with no
//   gap between them. One call may cover several mappings.
// - The CUDA driver does not catch every broken rule: it takes handles and events as pointers
//   (a stale one is undefined behaviour), maps past the end of a reservation, and unmaps ranges
//   with unmapped pages in them without complaint. The host backend refuses all of these with
//   kInvalidValue, so the CPU tests catch an arena that breaks them.
// - release() may be called while the handle is still mapped; the memory is freed when the last
//   mapping goes (as cuMemRelease does).
// - Events: event_record() captures the work queued on a stream so far; event_query() reports
//   without blocking whether that work has completed; event_synchronize() blocks until it has.
//   device_synchronize() waits for all work on all streams of the device.
// - All methods are thread-safe.
class Backend {
 public:
  virtual ~Backend() = default;

  virtual DeviceOrdinal device() const = 0;
  // Smallest unit of physical allocation and mapping (2 MiB on the H200).
  virtual Bytes granularity() const = 0;

  virtual Status reserve(Bytes size, Bytes alignment, DevicePtr* out) = 0;
  virtual Status unreserve(DevicePtr base, Bytes size) = 0;

  virtual Status create(Bytes size, Location where, PhysHandle* out) = 0;
  virtual Status release(PhysHandle handle) = 0;

  virtual Status map(DevicePtr va, Bytes size, PhysHandle handle, Bytes offset) = 0;
  virtual Status unmap(DevicePtr va, Bytes size) = 0;
  // Grants read-write access to [va, va + size) to each device listed (the arena's own device
  // first, then peers the program enabled).
  virtual Status set_access(DevicePtr va, Bytes size, std::span<const DeviceOrdinal> devices) = 0;

  // Free and total physical memory as the driver sees it (not counting the arena's own cache).
  virtual Status mem_info(Bytes* free, Bytes* total) = 0;

  virtual Status event_create(EventRef* out) = 0;
  virtual Status event_destroy(EventRef event) = 0;
  virtual Status event_record(EventRef event, StreamRef stream) = 0;
  virtual Status event_query(EventRef event, bool* completed) = 0;
  virtual Status event_synchronize(EventRef event) = 0;
  virtual Status device_synchronize() = 0;
};

}  // namespace cudefrag::vmm
