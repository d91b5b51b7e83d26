// Per-stream fences for stream-ordered frees, without an event per free.
//
// Every free gets its stream's next sequence number (one relaxed atomic increment). A block
// freed on stream s with number q is reusable by allocations on s at once, and by other streams
// once fenced(s) >= q. fenced(s) advances only when an event recorded on s completes (the event
// was recorded after reading s's counter, so it covers every free numbered up to that value),
// or after a device-wide synchronize. Events are recorded only when someone needs the blocks
// (the arena's slow path), at most one outstanding per stream.
//
// Blocks freed with cudaFree belong to the pseudo stream kParked: only device_synchronize()
// fences them, so that a batch of cudaFree'd blocks costs one synchronize, never one per free.
//
// Thread safety: index_of(), tag_free(), reusable() and has_unfenced() are lock-free and may be
// called from any thread. poll(), wait_for_all(), synchronize_device() and retire() call the
// backend and must be called by one thread at a time (the arena's slow path mutex).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>

#include "shim/arena/fence_tag.hpp"
#include "shim/vmm/backend.hpp"

namespace cudefrag::arena {

class StreamFences {
 public:
  // Distinct streams a process may use at once; past that, frees on new streams are treated as
  // cudaFree (parked), which stays correct and only costs a device synchronize.
  static constexpr std::uint32_t kCapacity = 1024;

  explicit StreamFences(vmm::Backend& backend);
  ~StreamFences();
  StreamFences(const StreamFences&) = delete;
  StreamFences& operator=(const StreamFences&) = delete;

  // The index of `stream`, registering it on first use; kParked when the table is full.
  StreamIndex index_of(vmm::StreamRef stream);

  // Stamps a free on `stream` (kParked for cudaFree).
  FenceTag tag_free(StreamIndex stream) {
    Slot& s = slots_[stream.value];
    return FenceTag{stream, s.free_seq.fetch_add(1, std::memory_order_acq_rel) + 1};
  }

  // Whether a block stamped `tag` may go to an allocation on `by` (kAnyStream: on any stream).
  bool reusable(FenceTag tag, StreamIndex by) const {
    if (tag.ready()) return true;
    if (tag.stream == by && by != kParked) return true;
    return slots_[tag.stream.value].fenced_seq.load(std::memory_order_acquire) >= tag.seq;
  }

  bool fenced(FenceTag tag) const { return reusable(tag, kAnyStream); }
  std::uint64_t fenced_seq(StreamIndex stream) const {
    return slots_[stream.value].fenced_seq.load(std::memory_order_acquire);
  }

  // True when some stream (or the parked set) has frees not yet known to be complete.
  bool has_unfenced() const;
  bool parked_unfenced() const { return unfenced(slots_[kParked.value]); }

  struct Counts {
    std::uint64_t events_recorded = 0;
    std::uint64_t event_waits = 0;
    std::uint64_t device_syncs = 0;
  };
  Counts counts() const;

  // Slow path. Queries outstanding events (advancing fences that completed) and records an event
  // on every stream with unfenced frees and none outstanding. Never blocks. Returns true when a
  // fence advanced.
  bool poll();
  // Slow path. Makes every free made so far reusable by all: one device synchronize when parked
  // frees are unfenced (it fences every stream too), else an event wait per stream with unfenced
  // frees. Falls back to a device synchronize when an event cannot be recorded.
  vmm::Status wait_for_all();
  // Slow path. One device-wide synchronize; fences every stream and the parked set.
  vmm::Status synchronize_device();
  // Slow path. `stream` is about to be destroyed: waits until its frees are complete, so that a
  // later stream at the same address starts with nothing unfenced.
  vmm::Status retire(vmm::StreamRef stream);

 private:
  struct alignas(64) Slot {
    std::atomic<std::uint64_t> key{0};  // stream value + 1; 0: empty
    std::atomic<std::uint64_t> free_seq{0};
    std::atomic<std::uint64_t> fenced_seq{0};
    // Owned by the slow path.
    vmm::StreamRef stream;
    vmm::EventRef event;
    bool has_event = false;
    bool outstanding = false;
    // A record failed (the stream was destroyed without retire(), say): poll() leaves the slot
    // alone until a device synchronize fences it, instead of failing again at every slow path.
    bool record_failed = false;
    std::uint64_t event_seq = 0;
  };

  static bool unfenced(const Slot& s) {
    return s.free_seq.load(std::memory_order_acquire) >
           s.fenced_seq.load(std::memory_order_acquire);
  }
  static void advance(Slot& s, std::uint64_t to);
  Slot* find(std::uint64_t key);
  vmm::Status record(Slot& s);
  std::uint32_t registered() const { return registered_count_.load(std::memory_order_acquire); }

  vmm::Backend& backend_;
  std::array<Slot, kCapacity> slots_;
  std::mutex register_mu_;
  std::array<std::uint32_t, kCapacity> registered_{};  // slot indices, in registration order
  std::atomic<std::uint32_t> registered_count_{0};
  std::atomic<std::uint64_t> events_recorded_{0};
  std::atomic<std::uint64_t> event_waits_{0};
  std::atomic<std::uint64_t> device_syncs_{0};
};

}  // namespace cudefrag::arena
