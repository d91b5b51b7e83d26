#include "shim/hooks/arenas.hpp"

#include <array>
#include <atomic>
#include <mutex>

#include "shim/config/log.hpp"
#include "shim/hooks/counters.hpp"
#include "shim/hooks/foreign_hooks.hpp"
#include "shim/hooks/shim_state.hpp"
#include "shim/hooks/stream_refs.hpp"
#include "shim/hooks/tracing.hpp"
#include "shim/vmm/cuda_backend.hpp"
#include "shim/vmm/real_cuda.hpp"

namespace cudefrag::hooks {
namespace {

enum class Start : std::uint8_t { kNotTried, kRunning, kFailed };

struct DeviceState {
  std::mutex create_mu;
  std::atomic<arena::Arena*> arena{nullptr};
  std::atomic<Start> start{Start::kNotTried};
  std::atomic<bool> pool_known{false};
  std::atomic<void*> pool{nullptr};
  std::atomic<bool> threshold_set{false};
  std::atomic<std::uint64_t> threshold{0};
  std::atomic<std::uint64_t> pending_peers{0};  // bit per peer ordinal
  std::atomic<bool> stream_ordered{false};      // a stream-ordered allocation was served
  // Set by the arena's listener (its slow path changed what it holds); cleared when published.
  std::atomic<bool> changed{false};
  // What this process last added to the stats file for this device (published under publish_mu).
  std::mutex publish_mu;
  std::uint64_t published_physical = 0;
  std::uint64_t published_stitches = 0;
  std::uint64_t published_slow_allocations = 0;
  std::uint64_t published_slow_ns = 0;
};

// Never destroyed: hooks run during process exit, after static destructors.
std::array<DeviceState, kMaxArenaDevices>& devices() noexcept {
  static auto* const all = new std::array<DeviceState, kMaxArenaDevices>;
  return *all;
}

std::atomic<BackendFactory> g_factory{nullptr};
std::atomic<int> g_bound{0};
std::atomic<bool> g_limit_overridden{false};
std::atomic<std::uint64_t> g_limit_override{0};

bool valid(DeviceOrdinal d) noexcept {
  return d.value >= 0 && d.value < kMaxArenaDevices;
}

DeviceState& state(DeviceOrdinal d) noexcept {
  return devices()[static_cast<std::size_t>(d.value)];
}

std::unique_ptr<vmm::Backend> make_backend(DeviceOrdinal d, vmm::Status* why) {
  if (const BackendFactory f = g_factory.load(std::memory_order_acquire)) return f(d, why);
  return vmm::make_cuda_backend(d, why);
}

void give_up(DeviceOrdinal d, const char* what, vmm::Status why) noexcept {
  const std::string_view reason = vmm::to_string(why);
  log::warn(
      "the arena cannot start on device %d (%s: %.*s): that device runs in passthrough mode, "
      "allocations are served by CUDA unchanged",
      d.value, what, static_cast<int>(reason.size()), reason.data());
}

arena::Arena* create(DeviceOrdinal d, DeviceState& s) noexcept {
  std::lock_guard lock(s.create_mu);
  if (arena::Arena* a = s.arena.load(std::memory_order_acquire)) return a;
  if (s.start.load(std::memory_order_acquire) == Start::kFailed) return nullptr;
  try {
    vmm::Status why = vmm::Status::kOk;
    std::unique_ptr<vmm::Backend> backend = make_backend(d, &why);
    if (backend == nullptr) {
      give_up(d, "no virtual memory backend", why);
      s.start.store(Start::kFailed, std::memory_order_release);
      return nullptr;
    }
    arena::ArenaOptions options;
    options.limit = arena_limit();
    options.small_threshold = active_config().small_max;
    options.grow_percent = active_config().grow_percent;
    std::unique_ptr<arena::Arena> made =
        arena::Arena::create(with_per_thread_streams(std::move(backend)), options, &why);
    if (made == nullptr) {
      give_up(d, "arena set-up failed", why);
      s.start.store(Start::kFailed, std::memory_order_release);
      return nullptr;
    }
    warn_about_foreign_allocator_hooks();
    made->set_listener([&s, d](const arena::ArenaEvent& e) {
      s.changed.store(true, std::memory_order_relaxed);
      trace_arena_event(d, e);
    });
    std::uint64_t peers = s.pending_peers.load(std::memory_order_acquire);
    for (int p = 0; peers != 0; ++p, peers >>= 1) {
      if ((peers & 1) == 0) continue;
      if (made->grant_peer_access(DeviceOrdinal{p}) != vmm::Status::kOk) {
        log::warn("device %d: the arena could not grant peer device %d access", d.value, p);
      }
    }
    arena::Arena* a = made.release();
    s.start.store(Start::kRunning, std::memory_order_release);
    s.arena.store(a, std::memory_order_release);
    int bound = g_bound.load(std::memory_order_relaxed);
    while (bound < d.value + 1 &&
           !g_bound.compare_exchange_weak(bound, d.value + 1, std::memory_order_release)) {
    }
    log::info("arena started on device %d", d.value);
    return a;
  } catch (...) {
    give_up(d, "out of host memory", vmm::Status::kOutOfMemory);
    s.start.store(Start::kFailed, std::memory_order_release);
    return nullptr;
  }
}

// Adds `now - last` to a shared counter (and raises its peak), so that processes sharing the
// stats file add up.
void publish_delta(std::uint64_t& counter, std::uint64_t* peak, std::uint64_t& last,
                   std::uint64_t now) noexcept {
  if (now >= last) {
    const std::uint64_t total =
        std::atomic_ref(counter).fetch_add(now - last, std::memory_order_relaxed) + (now - last);
    if (peak != nullptr) {
      std::atomic_ref p(*peak);
      std::uint64_t seen = p.load(std::memory_order_relaxed);
      while (total > seen && !p.compare_exchange_weak(seen, total, std::memory_order_relaxed)) {
      }
    }
  } else {
    std::atomic_ref(counter).fetch_sub(last - now, std::memory_order_relaxed);
  }
  last = now;
}

}  // namespace

Bytes arena_limit() noexcept {
  if (g_limit_overridden.load(std::memory_order_acquire)) {
    return Bytes{g_limit_override.load(std::memory_order_relaxed)};
  }
  return active_config().limit;
}

arena::Arena* arena_for(DeviceOrdinal device) noexcept {
  if (!valid(device)) return nullptr;
  DeviceState& s = state(device);
  if (arena::Arena* a = s.arena.load(std::memory_order_acquire)) return a;
  if (s.start.load(std::memory_order_acquire) == Start::kFailed) return nullptr;
  return create(device, s);
}

arena::Arena* existing_arena(DeviceOrdinal device) noexcept {
  if (!valid(device)) return nullptr;
  return state(device).arena.load(std::memory_order_acquire);
}

int arena_device_bound() noexcept {
  return g_bound.load(std::memory_order_acquire);
}

OwnedBy owning_arena(DevicePtr p) noexcept {
  OwnedBy found;
  const int bound = arena_device_bound();
  for (int d = 0; d < bound && found.arena == nullptr; ++d) {
    arena::Arena* a = existing_arena(DeviceOrdinal{d});
    if (a != nullptr && a->owns(p)) found = OwnedBy{a, DeviceOrdinal{d}};
  }
  return found;
}

void* default_pool(DeviceOrdinal device) noexcept {
  if (!valid(device)) return nullptr;
  DeviceState& s = state(device);
  if (s.pool_known.load(std::memory_order_acquire)) return s.pool.load(std::memory_order_relaxed);
  const real::DriverTable& d = real::driver();
  if (d.cuDeviceGet == nullptr || d.cuDeviceGetDefaultMemPool == nullptr) return nullptr;
  CUdevice dev = 0;
  CUmemoryPool pool = nullptr;
  if (d.cuDeviceGet(&dev, device.value) != CUDA_SUCCESS ||
      d.cuDeviceGetDefaultMemPool(&pool, dev) != CUDA_SUCCESS) {
    return nullptr;
  }
  // Racing first calls store the same value.
  s.pool.store(pool, std::memory_order_relaxed);
  s.pool_known.store(true, std::memory_order_release);
  return pool;
}

void note_stream_ordered_use(DeviceOrdinal device) noexcept {
  if (!valid(device)) return;
  std::atomic<bool>& used = state(device).stream_ordered;
  // Read first: after the first allocation this stays a shared read, not a store per call.
  if (!used.load(std::memory_order_relaxed)) used.store(true, std::memory_order_relaxed);
}

bool stream_ordered_in_use(DeviceOrdinal device) noexcept {
  return valid(device) && state(device).stream_ordered.load(std::memory_order_relaxed);
}

std::optional<DeviceOrdinal> default_pool_device(const void* pool) noexcept {
  if (pool == nullptr) return std::nullopt;
  // cuDeviceGet fails past the last device, and default_pool() answers nullptr then.
  for (int d = 0; valid(DeviceOrdinal{d}); ++d) {
    void* p = default_pool(DeviceOrdinal{d});
    if (p == nullptr) break;
    if (p == pool) return DeviceOrdinal{d};
  }
  return std::nullopt;
}

std::optional<OwnedBy> default_pool_arena(const void* pool) noexcept {
  if (pool == nullptr) return std::nullopt;
  const int bound = arena_device_bound();
  for (int d = 0; d < bound; ++d) {
    arena::Arena* a = existing_arena(DeviceOrdinal{d});
    if (a != nullptr && default_pool(DeviceOrdinal{d}) == pool) {
      return OwnedBy{a, DeviceOrdinal{d}};
    }
  }
  return std::nullopt;
}

void remember_release_threshold(DeviceOrdinal device, std::uint64_t value) noexcept {
  if (!valid(device)) return;
  DeviceState& s = state(device);
  s.threshold.store(value, std::memory_order_relaxed);
  s.threshold_set.store(true, std::memory_order_release);
}

std::optional<std::uint64_t> release_threshold(DeviceOrdinal device) noexcept {
  if (!valid(device)) return std::nullopt;
  const DeviceState& s = state(device);
  if (!s.threshold_set.load(std::memory_order_acquire)) return std::nullopt;
  return s.threshold.load(std::memory_order_relaxed);
}

void enable_peer(DeviceOrdinal device, DeviceOrdinal peer) noexcept {
  if (!valid(device) || !valid(peer) || device == peer) return;
  DeviceState& s = state(device);
  {
    // Under create_mu, so that an arena being created sees the peer or is granted it here.
    std::lock_guard lock(s.create_mu);
    s.pending_peers.fetch_or(std::uint64_t{1} << peer.value, std::memory_order_acq_rel);
  }
  if (arena::Arena* a = s.arena.load(std::memory_order_acquire)) {
    if (a->grant_peer_access(peer) != vmm::Status::kOk) {
      log::warn("device %d: the arena could not grant peer device %d access", device.value,
                peer.value);
    }
  }
}

void publish_if_changed(DeviceOrdinal device, arena::Arena& a) noexcept {
  if (!valid(device)) return;
  DeviceState& s = state(device);
  if (!s.changed.load(std::memory_order_relaxed)) return;
  std::lock_guard lock(s.publish_mu);
  if (!s.changed.exchange(false, std::memory_order_acq_rel)) return;
  if (static_cast<std::size_t>(device.value) >= stats::kMaxDevices) return;
  const arena::ArenaFigures f = a.figures();
  stats::DeviceCounters& c = counters_block().devices[static_cast<std::size_t>(device.value)];
  publish_delta(c.arena_physical_bytes, &c.arena_peak_physical_bytes, s.published_physical,
                f.physical.value);
  publish_delta(c.arena_stitches, nullptr, s.published_stitches, f.stitches);
  publish_delta(c.arena_slow_allocations, nullptr, s.published_slow_allocations,
                f.slow_allocations);
  publish_delta(c.arena_slow_ns, nullptr, s.published_slow_ns, f.slow_ns);
}

void set_backend_factory_for_testing(BackendFactory factory) noexcept {
  g_factory.store(factory, std::memory_order_release);
}

void set_limit_for_testing(Bytes limit) noexcept {
  g_limit_override.store(limit.value, std::memory_order_relaxed);
  g_limit_overridden.store(true, std::memory_order_release);
}

void reset_arenas_for_testing() noexcept {
  for (DeviceState& s : devices()) {
    std::lock_guard lock(s.create_mu);
    delete s.arena.exchange(nullptr, std::memory_order_acq_rel);
    s.start.store(Start::kNotTried, std::memory_order_release);
    s.pool_known.store(false, std::memory_order_release);
    s.stream_ordered.store(false, std::memory_order_release);
    s.threshold_set.store(false, std::memory_order_release);
    s.pending_peers.store(0, std::memory_order_release);
    s.changed.store(false, std::memory_order_release);
    std::lock_guard publish_lock(s.publish_mu);
    s.published_physical = 0;
    s.published_stitches = 0;
    s.published_slow_allocations = 0;
    s.published_slow_ns = 0;
  }
}

}  // namespace cudefrag::hooks
