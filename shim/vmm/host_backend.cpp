#include "shim/vmm/host_backend.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <condition_variable>
#include <iterator>
#include <limits>
#include <map>
#include <mutex>
#include <unordered_map>
#include <utility>

#include "shim/vmm/host_stream_queue.hpp"

namespace cudefrag::vmm {
namespace {

constexpr bool is_power_of_two(std::uint64_t v) {
  return v != 0 && (v & (v - 1)) == 0;
}

// The CUDA driver's special stream handles (CU_STREAM_LEGACY, CU_STREAM_PER_THREAD); the host
// backend runs both on its default stream.
constexpr std::uintptr_t kStreamLegacy = 0x1;
constexpr std::uintptr_t kStreamPerThread = 0x2;

// An event: record() bumps `recorded` and queues a marker carrying that generation; the marker
// raises `completed` when the stream reaches it. Only the latest record counts, as with CUDA.
struct HostEvent {
  std::mutex mu;
  std::condition_variable cv;
  std::uint64_t recorded = 0;
  std::uint64_t completed = 0;
};

struct Counters {
  std::atomic<std::uint64_t> reserve{0};
  std::atomic<std::uint64_t> unreserve{0};
  std::atomic<std::uint64_t> create{0};
  std::atomic<std::uint64_t> release{0};
  std::atomic<std::uint64_t> map{0};
  std::atomic<std::uint64_t> unmap{0};
  std::atomic<std::uint64_t> set_access{0};
  std::atomic<std::uint64_t> mem_info{0};
  std::atomic<std::uint64_t> event_create{0};
  std::atomic<std::uint64_t> event_destroy{0};
  std::atomic<std::uint64_t> event_record{0};
  std::atomic<std::uint64_t> event_query{0};
  std::atomic<std::uint64_t> event_synchronize{0};
  std::atomic<std::uint64_t> device_synchronize{0};
};

void bump(std::atomic<std::uint64_t>& counter) {
  counter.fetch_add(1, std::memory_order_relaxed);
}

std::uint64_t load(const std::atomic<std::uint64_t>& counter) {
  return counter.load(std::memory_order_relaxed);
}

class HostBackend final : public Backend {
 public:
  explicit HostBackend(const HostBackendOptions& options)
      : options_(options), default_stream_(options.device) {}

  ~HostBackend() override {
    // Queued work may still touch mapped memory; let it finish before the memory goes.
    default_stream_.synchronize();
    std::lock_guard lock(mu_);
    for (const auto& [base, reservation] : reservations_) {
      ::munmap(reinterpret_cast<void*>(base), reservation.size.value);
    }
    for (const auto& [id, handle] : handles_) ::close(handle.fd);
  }

  HostBackend(const HostBackend&) = delete;
  HostBackend& operator=(const HostBackend&) = delete;

  DeviceOrdinal device() const override { return options_.device; }
  Bytes granularity() const override { return options_.granularity; }

  Status reserve(Bytes size, Bytes alignment, DevicePtr* out) override {
    bump(counters_.reserve);
    if (out == nullptr || !valid_extent(size)) return Status::kInvalidValue;
    if (alignment.value != 0 && !is_power_of_two(alignment.value)) return Status::kInvalidValue;
    const Bytes align = std::max(alignment, options_.granularity);
    if (size.value > std::numeric_limits<std::uint64_t>::max() - align.value) {
      return Status::kInvalidValue;
    }
    // Over-reserve by the alignment and trim both ends, since mmap only aligns to pages.
    const Bytes span = size + align;
    void* raw =
        ::mmap(nullptr, span.value, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (raw == MAP_FAILED) return Status::kOutOfMemory;
    const DevicePtr raw_base = DevicePtr::from(raw);
    const DevicePtr base{Bytes{raw_base.value}.align_up(align).value};
    const Bytes head = base - raw_base;
    const Bytes tail = (raw_base + span) - (base + size);
    if (head.value != 0) ::munmap(raw_base.as_void(), head.value);
    if (tail.value != 0) ::munmap((base + size).as_void(), tail.value);

    std::lock_guard lock(mu_);
    reservations_.emplace(base.value, Reservation{size, {}});
    *out = base;
    return Status::kOk;
  }

  Status unreserve(DevicePtr base, Bytes size) override {
    bump(counters_.unreserve);
    std::lock_guard lock(mu_);
    auto it = reservations_.find(base.value);
    if (it == reservations_.end() || it->second.size != size || !it->second.mappings.empty()) {
      return Status::kInvalidValue;
    }
    // Under the lock: once unmapped, the kernel may hand the range to a concurrent reserve().
    if (::munmap(base.as_void(), size.value) != 0) return Status::kBackendError;
    reservations_.erase(it);
    return Status::kOk;
  }

  Status create(Bytes size, Location where, PhysHandle* out) override {
    bump(counters_.create);
    if (out == nullptr || !valid_extent(size)) return Status::kInvalidValue;
    if (where != Location::kDevice && where != Location::kHost) return Status::kInvalidValue;
    std::lock_guard lock(mu_);
    if (where == Location::kDevice && size > options_.capacity - device_bytes_) {
      return Status::kOutOfMemory;
    }
    const int fd = ::memfd_create("cudefrag-host-backend", MFD_CLOEXEC);
    if (fd < 0) return Status::kOutOfMemory;
    if (::ftruncate(fd, static_cast<off_t>(size.value)) != 0) {
      ::close(fd);
      return Status::kOutOfMemory;
    }
    const std::uint64_t id = next_handle_++;
    handles_.emplace(id, Handle{fd, size, where, false, 0});
    (where == Location::kDevice ? device_bytes_ : host_bytes_) += size;
    *out = PhysHandle{id};
    return Status::kOk;
  }

  Status release(PhysHandle handle) override {
    bump(counters_.release);
    std::lock_guard lock(mu_);
    auto it = handles_.find(handle.value);
    if (it == handles_.end() || it->second.released) return Status::kInvalidValue;
    it->second.released = true;
    if (it->second.mappings == 0) free_handle(it);
    return Status::kOk;
  }

  Status map(DevicePtr va, Bytes size, PhysHandle handle, Bytes offset) override {
    bump(counters_.map);
    if (!valid_extent(size) || !aligned(va) || !offset.is_aligned(options_.granularity)) {
      return Status::kInvalidValue;
    }
    std::lock_guard lock(mu_);
    auto h = handles_.find(handle.value);
    if (h == handles_.end() || h->second.released) return Status::kInvalidValue;
    // As cuMemMap on driver 580: only a whole handle maps (backend.hpp).
    if (offset.value != 0 || size != h->second.size) return Status::kNotSupported;
    Reservation* r = find_reservation(va, size);
    if (r == nullptr || overlaps_mapping(*r, va, size)) return Status::kInvalidValue;

    void* p = ::mmap(va.as_void(), size.value, PROT_NONE, MAP_SHARED | MAP_FIXED, h->second.fd,
                     static_cast<off_t>(offset.value));
    if (p == MAP_FAILED) {
      const int err = errno;
      // A failed MAP_FIXED may already have dropped the placeholder: put it back.
      place_holder(va, size);
      return err == ENOMEM ? Status::kOutOfMemory : Status::kBackendError;
    }
    r->mappings.emplace(va.value, Mapping{size, handle.value});
    ++h->second.mappings;
    ++live_mappings_;
    return Status::kOk;
  }

  Status unmap(DevicePtr va, Bytes size) override {
    bump(counters_.unmap);
    if (!valid_extent(size) || !aligned(va)) return Status::kInvalidValue;
    std::lock_guard lock(mu_);
    Reservation* r = find_reservation(va, size);
    if (r == nullptr || !covered_by_whole_mappings(*r, va, size)) return Status::kInvalidValue;
    if (!place_holder(va, size)) return Status::kBackendError;

    auto it = r->mappings.find(va.value);
    const std::uintptr_t end = (va + size).value;
    while (it != r->mappings.end() && it->first < end) {
      auto h = handles_.find(it->second.handle);
      --h->second.mappings;
      if (h->second.released && h->second.mappings == 0) free_handle(h);
      it = r->mappings.erase(it);
      --live_mappings_;
    }
    return Status::kOk;
  }

  Status set_access(DevicePtr va, Bytes size, std::span<const DeviceOrdinal> devices) override {
    bump(counters_.set_access);
    if (!valid_extent(size) || !aligned(va) || devices.empty()) return Status::kInvalidValue;
    if (std::any_of(devices.begin(), devices.end(), [](DeviceOrdinal d) { return d.value < 0; })) {
      return Status::kInvalidValue;
    }
    std::lock_guard lock(mu_);
    Reservation* r = find_reservation(va, size);
    if (r == nullptr || !covered_by_whole_mappings(*r, va, size)) return Status::kInvalidValue;
    if (::mprotect(va.as_void(), size.value, PROT_READ | PROT_WRITE) != 0) {
      return Status::kBackendError;
    }
    return Status::kOk;
  }

  Status mem_info(Bytes* free, Bytes* total) override {
    bump(counters_.mem_info);
    if (free == nullptr || total == nullptr) return Status::kInvalidValue;
    std::lock_guard lock(mu_);
    *free = options_.capacity - device_bytes_;
    *total = options_.capacity;
    return Status::kOk;
  }

  Status event_create(EventRef* out) override {
    bump(counters_.event_create);
    if (out == nullptr) return Status::kInvalidValue;
    auto event = std::make_shared<HostEvent>();
    std::lock_guard lock(events_mu_);
    *out = EventRef{event.get()};
    events_.emplace(event.get(), std::move(event));
    return Status::kOk;
  }

  Status event_destroy(EventRef event) override {
    bump(counters_.event_destroy);
    std::lock_guard lock(events_mu_);
    // A marker still queued keeps its own reference, so destroying a pending event is safe.
    return events_.erase(event.value) == 1 ? Status::kOk : Status::kInvalidValue;
  }

  Status event_record(EventRef event, StreamRef stream) override {
    bump(counters_.event_record);
    std::shared_ptr<HostEvent> e = find_event(event);
    if (e == nullptr) return Status::kInvalidValue;
    std::shared_ptr<detail::HostStreamQueue> queue = resolve(stream);
    if (queue == nullptr) return Status::kInvalidValue;

    std::lock_guard lock(e->mu);
    const std::uint64_t generation = e->recorded + 1;
    const bool queued = queue->enqueue([e, generation] {
      {
        std::lock_guard marker_lock(e->mu);
        e->completed = std::max(e->completed, generation);
      }
      e->cv.notify_all();
    });
    if (!queued) return Status::kInvalidValue;  // the stream is being destroyed
    e->recorded = generation;
    return Status::kOk;
  }

  Status event_query(EventRef event, bool* completed) override {
    bump(counters_.event_query);
    std::shared_ptr<HostEvent> e = find_event(event);
    if (e == nullptr || completed == nullptr) return Status::kInvalidValue;
    std::lock_guard lock(e->mu);
    *completed = e->completed >= e->recorded;
    return Status::kOk;
  }

  Status event_synchronize(EventRef event) override {
    bump(counters_.event_synchronize);
    std::shared_ptr<HostEvent> e = find_event(event);
    if (e == nullptr) return Status::kInvalidValue;
    std::unique_lock lock(e->mu);
    const std::uint64_t target = e->recorded;
    e->cv.wait(lock, [&] { return e->completed >= target; });
    return Status::kOk;
  }

  Status device_synchronize() override {
    bump(counters_.device_synchronize);
    // Every live stream of this device (the default stream among them), as cuCtxSynchronize waits
    // for every stream of the context, whether or not this backend ever saw it.
    for (const auto& queue : detail::live_streams(options_.device)) queue->synchronize();
    return Status::kOk;
  }

  HostBackendStats stats() const {
    HostBackendStats s;
    s.reserve = load(counters_.reserve);
    s.unreserve = load(counters_.unreserve);
    s.create = load(counters_.create);
    s.release = load(counters_.release);
    s.map = load(counters_.map);
    s.unmap = load(counters_.unmap);
    s.set_access = load(counters_.set_access);
    s.mem_info = load(counters_.mem_info);
    s.event_create = load(counters_.event_create);
    s.event_destroy = load(counters_.event_destroy);
    s.event_record = load(counters_.event_record);
    s.event_query = load(counters_.event_query);
    s.event_synchronize = load(counters_.event_synchronize);
    s.device_synchronize = load(counters_.device_synchronize);
    {
      std::lock_guard lock(mu_);
      s.device_bytes = device_bytes_;
      s.host_bytes = host_bytes_;
      s.live_handles = handles_.size();
      s.live_mappings = live_mappings_;
      s.live_reservations = reservations_.size();
    }
    {
      std::lock_guard lock(events_mu_);
      s.live_events = events_.size();
    }
    return s;
  }

 private:
  struct Handle {
    int fd;
    Bytes size;
    Location where;
    bool released;
    std::uint32_t mappings;
  };
  struct Mapping {
    Bytes size;
    std::uint64_t handle;
  };
  struct Reservation {
    Bytes size;
    std::map<std::uintptr_t, Mapping> mappings;  // by start address
  };

  bool valid_extent(Bytes size) const {
    return size.value != 0 && size.is_aligned(options_.granularity);
  }
  bool aligned(DevicePtr va) const { return Bytes{va.value}.is_aligned(options_.granularity); }

  // The reservation holding all of [va, va + size), or nullptr.
  Reservation* find_reservation(DevicePtr va, Bytes size) {
    auto it = reservations_.upper_bound(va.value);
    if (it == reservations_.begin()) return nullptr;
    --it;
    const Bytes into = va - DevicePtr{it->first};
    if (into >= it->second.size || size > it->second.size - into) return nullptr;
    return &it->second;
  }

  static bool overlaps_mapping(const Reservation& r, DevicePtr va, Bytes size) {
    const std::uintptr_t end = (va + size).value;
    auto next = r.mappings.lower_bound(va.value);
    if (next != r.mappings.end() && next->first < end) return true;
    if (next == r.mappings.begin()) return false;
    const auto prev = std::prev(next);
    return prev->first + prev->second.size.value > va.value;
  }

  // True when mappings tile [va, va + size) exactly: one starts at va, each next one starts where
  // the previous ended, and the last one ends at va + size.
  static bool covered_by_whole_mappings(const Reservation& r, DevicePtr va, Bytes size) {
    const std::uintptr_t end = (va + size).value;
    std::uintptr_t cursor = va.value;
    for (auto it = r.mappings.find(va.value); it != r.mappings.end() && it->first == cursor; ++it) {
      cursor += it->second.size.value;
      if (cursor >= end) return cursor == end;
    }
    return false;
  }

  // Replaces whatever is at [va, va + size) with inaccessible, unbacked address space.
  static bool place_holder(DevicePtr va, Bytes size) {
    return ::mmap(va.as_void(), size.value, PROT_NONE,
                  MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0) != MAP_FAILED;
  }

  void free_handle(std::unordered_map<std::uint64_t, Handle>::iterator it) {
    ::close(it->second.fd);
    (it->second.where == Location::kDevice ? device_bytes_ : host_bytes_) -= it->second.size;
    handles_.erase(it);
  }

  std::shared_ptr<HostEvent> find_event(EventRef event) {
    std::lock_guard lock(events_mu_);
    auto it = events_.find(event.value);
    return it == events_.end() ? nullptr : it->second;
  }

  std::shared_ptr<detail::HostStreamQueue> resolve(StreamRef stream) {
    const auto raw = reinterpret_cast<std::uintptr_t>(stream.value);
    const void* key = (raw == 0 || raw == kStreamLegacy || raw == kStreamPerThread)
                          ? static_cast<const void*>(&default_stream_)
                          : stream.value;
    detail::LiveStream live = detail::find_live_stream(key);
    if (live.queue == nullptr || live.device != options_.device) return nullptr;
    return live.queue;
  }

  const HostBackendOptions options_;
  mutable Counters counters_;

  mutable std::mutex mu_;                               // guards everything below up to events_mu_
  std::map<std::uintptr_t, Reservation> reservations_;  // by base address
  std::unordered_map<std::uint64_t, Handle> handles_;
  std::uint64_t next_handle_ = 1;  // never reused, so a stale handle is refused, not aliased
  Bytes device_bytes_;
  Bytes host_bytes_;
  std::uint64_t live_mappings_ = 0;

  mutable std::mutex events_mu_;
  std::unordered_map<void*, std::shared_ptr<HostEvent>> events_;

  HostStream default_stream_;  // last: destroyed (drained) first
};

}  // namespace

std::uint64_t HostBackendStats::calls() const {
  return reserve + unreserve + create + release + map + unmap + set_access + mem_info +
         event_create + event_destroy + event_record + event_query + event_synchronize +
         device_synchronize;
}

std::unique_ptr<Backend> make_host_backend(const HostBackendOptions& options) {
  const auto page = static_cast<std::uint64_t>(::sysconf(_SC_PAGESIZE));
  if (!is_power_of_two(options.granularity.value) || !options.granularity.is_aligned(Bytes{page})) {
    return nullptr;
  }
  if (options.device.value < 0) return nullptr;
  return std::make_unique<HostBackend>(options);
}

std::optional<HostBackendStats> host_backend_stats(const Backend& backend) {
  const auto* host = dynamic_cast<const HostBackend*>(&backend);
  if (host == nullptr) return std::nullopt;
  return host->stats();
}

}  // namespace cudefrag::vmm
