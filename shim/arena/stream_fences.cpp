#include "shim/arena/stream_fences.hpp"

#include <algorithm>

namespace cudefrag::arena {
namespace {

std::uint64_t key_of(vmm::StreamRef stream) {
  return static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(stream.value)) + 1;
}

// Streams are heap pointers (low bits zero) or small constants: mix before reducing.
std::uint32_t home_slot(std::uint64_t key) {
  key ^= key >> 33;
  key *= 0xff51afd7ed558ccdULL;
  key ^= key >> 33;
  // Slot 0 is the parked set.
  return static_cast<std::uint32_t>(key % (StreamFences::kCapacity - 1)) + 1;
}

std::uint32_t next_slot(std::uint32_t i) {
  return i + 1 < StreamFences::kCapacity ? i + 1 : 1;
}

}  // namespace

StreamFences::StreamFences(vmm::Backend& backend) : backend_(backend) {}

StreamFences::~StreamFences() {
  for (std::uint32_t n = 0; n < registered(); ++n) {
    Slot& s = slots_[registered_[n]];
    if (s.has_event) backend_.event_destroy(s.event);
  }
}

StreamFences::Slot* StreamFences::find(std::uint64_t key) {
  std::uint32_t i = home_slot(key);
  for (std::uint32_t probes = 1; probes < kCapacity; ++probes, i = next_slot(i)) {
    const std::uint64_t k = slots_[i].key.load(std::memory_order_acquire);
    if (k == key) return &slots_[i];
    if (k == 0) return nullptr;
  }
  return nullptr;
}

StreamIndex StreamFences::index_of(vmm::StreamRef stream) {
  const std::uint64_t key = key_of(stream);
  if (Slot* s = find(key)) return StreamIndex{static_cast<std::uint32_t>(s - slots_.data())};

  std::lock_guard lock(register_mu_);
  std::uint32_t i = home_slot(key);
  for (std::uint32_t probes = 1; probes < kCapacity; ++probes, i = next_slot(i)) {
    Slot& s = slots_[i];
    const std::uint64_t k = s.key.load(std::memory_order_acquire);
    if (k == key) return StreamIndex{i};
    if (k != 0) continue;
    s.stream = stream;
    s.key.store(key, std::memory_order_release);
    const std::uint32_t n = registered_count_.load(std::memory_order_relaxed);
    registered_[n] = i;
    registered_count_.store(n + 1, std::memory_order_release);
    return StreamIndex{i};
  }
  return kParked;
}

bool StreamFences::has_unfenced() const {
  if (unfenced(slots_[kParked.value])) return true;
  for (std::uint32_t n = 0; n < registered(); ++n) {
    if (unfenced(slots_[registered_[n]])) return true;
  }
  return false;
}

StreamFences::Counts StreamFences::counts() const {
  return Counts{events_recorded_.load(std::memory_order_relaxed),
                event_waits_.load(std::memory_order_relaxed),
                device_syncs_.load(std::memory_order_relaxed)};
}

void StreamFences::advance(Slot& s, std::uint64_t to) {
  if (to > s.fenced_seq.load(std::memory_order_relaxed)) {
    s.fenced_seq.store(to, std::memory_order_release);
  }
}

vmm::Status StreamFences::record(Slot& s) {
  if (!s.has_event) {
    const vmm::Status st = backend_.event_create(&s.event);
    if (st != vmm::Status::kOk) return st;
    s.has_event = true;
  }
  // Read the counter BEFORE recording: every free numbered up to `seq` was made (and the work it
  // follows was queued) before the event, so the event's completion fences all of them.
  const std::uint64_t seq = s.free_seq.load(std::memory_order_acquire);
  const vmm::Status st = backend_.event_record(s.event, s.stream);
  if (st != vmm::Status::kOk) {
    s.record_failed = true;
    return st;
  }
  s.outstanding = true;
  s.event_seq = seq;
  events_recorded_.fetch_add(1, std::memory_order_relaxed);
  return vmm::Status::kOk;
}

bool StreamFences::poll() {
  bool advanced = false;
  for (std::uint32_t n = 0; n < registered(); ++n) {
    Slot& s = slots_[registered_[n]];
    if (s.outstanding) {
      bool done = false;
      if (backend_.event_query(s.event, &done) == vmm::Status::kOk && done) {
        s.outstanding = false;
        if (s.event_seq > s.fenced_seq.load(std::memory_order_relaxed)) advanced = true;
        advance(s, s.event_seq);
      }
    }
    // After a failed record, only wait_for_all()'s device synchronize fences the stream.
    if (!s.outstanding && !s.record_failed && unfenced(s)) (void)record(s);
  }
  return advanced;
}

vmm::Status StreamFences::wait_for_all() {
  if (unfenced(slots_[kParked.value])) return synchronize_device();
  for (std::uint32_t n = 0; n < registered(); ++n) {
    Slot& s = slots_[registered_[n]];
    if (!unfenced(s)) continue;
    if (!s.outstanding || s.event_seq < s.free_seq.load(std::memory_order_acquire)) {
      if (record(s) != vmm::Status::kOk) return synchronize_device();
    }
    if (backend_.event_synchronize(s.event) != vmm::Status::kOk) return synchronize_device();
    event_waits_.fetch_add(1, std::memory_order_relaxed);
    s.outstanding = false;
    advance(s, s.event_seq);
  }
  return vmm::Status::kOk;
}

vmm::Status StreamFences::synchronize_device() {
  // Snapshot first: frees numbered after the snapshot may follow work the synchronize missed.
  const std::uint32_t count = registered();
  std::array<std::uint64_t, kCapacity> snapshot{};
  const std::uint64_t parked = slots_[kParked.value].free_seq.load(std::memory_order_acquire);
  for (std::uint32_t n = 0; n < count; ++n) {
    snapshot[n] = slots_[registered_[n]].free_seq.load(std::memory_order_acquire);
  }
  const vmm::Status st = backend_.device_synchronize();
  device_syncs_.fetch_add(1, std::memory_order_relaxed);
  if (st != vmm::Status::kOk) return st;
  advance(slots_[kParked.value], parked);
  for (std::uint32_t n = 0; n < count; ++n) {
    Slot& s = slots_[registered_[n]];
    advance(s, snapshot[n]);
    s.record_failed = false;
  }
  return vmm::Status::kOk;
}

vmm::Status StreamFences::retire(vmm::StreamRef stream) {
  Slot* s = find(key_of(stream));
  if (s == nullptr || !unfenced(*s)) return vmm::Status::kOk;
  if (record(*s) != vmm::Status::kOk) return synchronize_device();
  if (backend_.event_synchronize(s->event) != vmm::Status::kOk) return synchronize_device();
  event_waits_.fetch_add(1, std::memory_order_relaxed);
  s->outstanding = false;
  advance(*s, s->event_seq);
  return vmm::Status::kOk;
}

}  // namespace cudefrag::arena
