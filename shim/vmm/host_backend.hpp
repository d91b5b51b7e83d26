// Host-memory implementation of the backend seam (backend.hpp), used by the CPU tests and
// benchmarks. A real implementation of the same contract, not a mock: physical allocations are
// memfd chunks, mappings are mmap(MAP_FIXED|MAP_SHARED) into PROT_NONE reservations, so aliasing,
// remapping and "bytes survive a remap" behave as with cuMemMap.
//
// It checks every rule of the contract, including those the CUDA driver leaves unchecked, so that
// an arena that passes here does not fail (or silently misbehave) on the driver:
// - map() needs every page of [va, va + size) inside ONE reservation and unmapped, and maps
//   whole handles only (offset 0, size = the handle's size; kNotSupported otherwise), as the
//   driver does.
// - unmap() and set_access() need [va, va + size) to be covered by whole mappings, with no gap
//   and no mapping cut in two.
// - unreserve() needs the exact base and size reserve() returned, and no mapping left in it.
// - A handle is unusable once released, even while its memory lives on in a mapping.
// Every other rule broken returns kInvalidValue; no refused call changes anything.
// Device-located memory counts against `capacity`; host-located memory does not, as on CUDA,
// where it does not show in cuMemGetInfo.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>

#include "shim/vmm/backend.hpp"

namespace cudefrag::vmm {

namespace detail {
class HostStreamQueue;  // host_stream_queue.hpp
}

// A stream for the host backend: a worker thread that runs enqueued work in order. Tests enqueue
// "kernels" (functions that write or check bytes, possibly after a delay) so that the arena's
// stream-ordering rules are exercised against real asynchrony.
//
// Like a CUDA stream, it belongs to one device: the host backend of that device waits for it in
// device_synchronize() (whether or not the backend ever saw it), and refuses to record an event
// on a stream of another device.
class HostStream {
 public:
  explicit HostStream(DeviceOrdinal device = DeviceOrdinal{0});
  ~HostStream();  // runs what is queued, then stops
  HostStream(const HostStream&) = delete;
  HostStream& operator=(const HostStream&) = delete;

  void enqueue(std::function<void()> work);
  // Blocks until everything enqueued so far has run. Called from the stream's own work it returns
  // at once (what came before has run; waiting for itself would never end).
  void synchronize();
  StreamRef ref() { return StreamRef{this}; }
  DeviceOrdinal device() const { return device_; }

 private:
  DeviceOrdinal device_;
  // Shared with the backends that resolved this stream from a StreamRef: one that races with the
  // destructor still holds a valid queue, which refuses new work once stopped.
  std::shared_ptr<detail::HostStreamQueue> queue_;
};

struct HostBackendOptions {
  DeviceOrdinal device{0};
  // A power of two and a multiple of the system page size (4 KiB); tests may go below 2 MiB.
  Bytes granularity = MiB(2);
  // Physical bytes the "card" has; create() beyond it returns kOutOfMemory.
  Bytes capacity = GiB(1);
};

// StreamRef values given to this backend must be nullptr (a default stream that the backend
// owns; CU_STREAM_LEGACY (0x1) and CU_STREAM_PER_THREAD (0x2) name it too) or a live HostStream
// of the backend's device; anything else returns kInvalidValue.
// Returns nullptr when the options are invalid (see HostBackendOptions).
std::unique_ptr<Backend> make_host_backend(const HostBackendOptions& options);

// What a host backend has been asked to do, so that tests can assert, e.g., that the arena's
// cached fast path made no backend call. Counters count calls, failed ones included; the gauges
// say what is alive now (for leak checks).
struct HostBackendStats {
  std::uint64_t reserve = 0;
  std::uint64_t unreserve = 0;
  std::uint64_t create = 0;
  std::uint64_t release = 0;
  std::uint64_t map = 0;
  std::uint64_t unmap = 0;
  std::uint64_t set_access = 0;
  std::uint64_t mem_info = 0;
  std::uint64_t event_create = 0;
  std::uint64_t event_destroy = 0;
  std::uint64_t event_record = 0;
  std::uint64_t event_query = 0;
  std::uint64_t event_synchronize = 0;
  std::uint64_t device_synchronize = 0;

  // Sum of every counter above.
  std::uint64_t calls() const;

  Bytes device_bytes;               // device-located physical bytes not yet freed
  Bytes host_bytes;                 // host-located physical bytes not yet freed
  std::uint64_t live_handles = 0;   // created and not yet freed (released-but-mapped count)
  std::uint64_t live_mappings = 0;  // map() calls not yet undone by unmap()
  std::uint64_t live_reservations = 0;
  std::uint64_t live_events = 0;
};

// Stats of a backend made by make_host_backend(); nullopt for any other backend.
std::optional<HostBackendStats> host_backend_stats(const Backend& backend);

}  // namespace cudefrag::vmm
