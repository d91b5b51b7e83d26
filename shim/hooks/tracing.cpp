#include "shim/hooks/tracing.hpp"

#include <array>
#include <atomic>
#include <cstring>
#include <string>

#include "shim/config/log.hpp"
#include "shim/hooks/arenas.hpp"
#include "shim/hooks/counters.hpp"
#include "shim/hooks/dispatch.hpp"
#include "shim/vmm/real_cuda.hpp"

namespace cudefrag::hooks {
namespace {

trace::EntryPoint entry(HookId id) noexcept {
  return trace::EntryPoint{static_cast<std::uint16_t>(index(id))};
}

trace::ArenaState state_of(const arena::ArenaStats& s) noexcept {
  trace::ArenaState t;
  t.live = s.live;
  t.mapped = s.mapped;
  t.cached = s.cached;
  t.physical = s.physical;
  t.limit = s.limit;
  t.largest_extent = s.largest_allocatable;
  t.driver_free = s.backend_free;
  t.driver_total = s.backend_total;
  return t;
}

void to_log(std::string_view message) {
  log::warn("trace: %.*s", static_cast<int>(message.size()), message.data());
}

// Every second, on the recorder's writer thread: each arena's figures. Arenas and their state
// are never destroyed, so this may run until the process exits.
void poll_counters() {
  trace::Recorder* r = trace::recorder();
  if (r == nullptr) return;
  for_each_arena([r](DeviceOrdinal d, arena::Arena& a) {
    const arena::ArenaStats s = a.stats();
    r->record_counters(trace::CountersEvent{d, s.live_allocations, state_of(s)});
  });
}

// The device's name, UUID and memory, and the CUDA versions, the first time a traced event
// names the device (a hook has run: CUDA is initialised).
void describe_once(trace::Recorder& r, DeviceOrdinal device) noexcept {
  static std::array<std::atomic<bool>, kMaxArenaDevices> described{};
  static std::atomic<bool> versions{false};
  if (device.value < 0 || device.value >= kMaxArenaDevices) return;
  if (described[static_cast<std::size_t>(device.value)].exchange(true, std::memory_order_relaxed)) {
    return;
  }
  try {
    const real::DriverTable& d = real::driver();
    if (!versions.exchange(true, std::memory_order_relaxed)) {
      int driver_version = 0;
      if (d.cuDriverGetVersion != nullptr) (void)d.cuDriverGetVersion(&driver_version);
      r.record_runtime(driver_version, runtime_version());
    }
    trace::GpuInfo gpu;
    gpu.ordinal = device;
    CUdevice dev = 0;
    if (d.cuDeviceGet != nullptr && d.cuDeviceGet(&dev, device.value) == CUDA_SUCCESS) {
      std::array<char, 256> name{};
      if (d.cuDeviceGetName != nullptr &&
          d.cuDeviceGetName(name.data(), static_cast<int>(name.size()), dev) == CUDA_SUCCESS) {
        gpu.name = name.data();
      }
      CUuuid uuid{};
      if (d.cuDeviceGetUuid_v2 != nullptr && d.cuDeviceGetUuid_v2(&uuid, dev) == CUDA_SUCCESS) {
        std::memcpy(gpu.uuid.data(), uuid.bytes, gpu.uuid.size());
      }
      std::size_t total = 0;
      if (d.cuDeviceTotalMem_v2 != nullptr && d.cuDeviceTotalMem_v2(&total, dev) == CUDA_SUCCESS) {
        gpu.total_memory = Bytes{total};
      }
    }
    r.record_device(gpu);
  } catch (...) {
    // A trace without the device's description is still a trace.
  }
}

}  // namespace

void configure_tracing(const config::Config& c) noexcept {
  if (c.trace.empty()) return;
  try {
    trace::Options o;
    o.path = std::string(c.trace.view());
    o.stacks = static_cast<trace::StackMode>(c.stacks);
    o.free_stacks = c.free_stacks;
    o.max_native_frames = c.native_frames;
    for (const HookInfo& h : kHooks) o.entry_points.emplace_back(h.name);
    o.config = {
        {"mode", std::string(config::to_string(c.mode))},
        {"limit", std::to_string(c.limit.value)},
        {"small_max", std::to_string(c.small_max.value)},
        {"free_stacks", c.free_stacks ? "1" : "0"},
        {"native_frames", std::to_string(c.native_frames)},
        {"grow", std::to_string(c.grow_percent)},
        {"stacks", std::string(config::to_string(c.stacks))},
        {"hook_dlsym", c.hook_dlsym ? "1" : "0"},
    };
    o.poll_counters = &poll_counters;
    o.messages = &to_log;
    if (const std::string problem = trace::validate(o); !problem.empty()) {
      log::error("CUDEFRAG_TRACE: %s; no trace is written", problem.c_str());
      return;
    }
    (void)trace::configure(std::move(o));
  } catch (...) {
    log::error("CUDEFRAG_TRACE: out of memory while setting up the trace; no trace is written");
  }
}

// The trace's own cost, sampled (stats::TraceCost): one traced call in kCostSample per thread is
// timed, and the event count is published in batches of kCostSample, so that a thread touches
// the shared counters once per kCostSample calls.
constexpr std::uint32_t kCostSample = 64;
[[gnu::tls_model("initial-exec")]] thread_local std::uint32_t t_traced_calls = 0;

template <typename Record>
void timed(Record&& record) noexcept {
  if (++t_traced_calls % kCostSample != 0) [[likely]] {
    record();
    return;
  }
  trace::measure_next_capture();
  const trace::TimeNs start = trace::now();
  record();
  const trace::TimeNs end = trace::now();
  const trace::CaptureCost capture = trace::take_capture_cost();
  stats::TraceCost& cost = counters_block().trace_cost;
  stats::add(cost.traced_events, kCostSample);
  stats::add(cost.timed_events, 1);
  stats::add(cost.timed_ns, end.value > start.value ? end.value - start.value : 0);
  if (capture.measured) {
    stats::add(cost.captures, 1);
    stats::add(cost.python_ns, capture.python_ns);
    stats::add(cost.native_ns, capture.native_ns);
    stats::add(cost.intern_ns, capture.intern_ns);
    stats::add(cost.python_frames, capture.python_frames);
    stats::add(cost.native_frames, capture.native_frames);
  }
}

void trace_alloc(HookId id, DeviceOrdinal device, const void* stream, DevicePtr ptr,
                 Bytes requested, Bytes granted, int result) noexcept {
  trace::Recorder* r = trace::recorder();
  if (r == nullptr) return;
  describe_once(*r, device);
  timed([&] {
    r->record_alloc(trace::AllocEvent{entry(id), device, stream, ptr, requested, granted, result,
                                      trace::now()});
  });
}

void trace_free(HookId id, DeviceOrdinal device, const void* stream, DevicePtr ptr, Bytes size,
                int result, trace::TimeNs before) noexcept {
  trace::Recorder* r = trace::recorder();
  if (r == nullptr) return;
  timed([&] {
    r->record_free(trace::FreeEvent{entry(id), device, stream, ptr, size, result, before});
  });
}

void trace_out_of_memory(HookId id, DeviceOrdinal device, const void* stream, Bytes requested,
                         int result, const arena::ArenaStats& state) noexcept {
  trace::Recorder* r = trace::recorder();
  if (r == nullptr) return;
  describe_once(*r, device);
  r->record_oom(trace::OomEvent{entry(id), device, stream, requested, result, state_of(state)});
}

void trace_arena_event(DeviceOrdinal device, const arena::ArenaEvent& e) noexcept {
  trace::Recorder* r = trace::recorder();
  if (r == nullptr) return;
  trace::ArenaEvent t;
  t.device = device;
  t.address = e.va;
  t.bytes = e.size;
  t.count = e.handles;
  switch (e.kind) {
    case arena::ArenaEventKind::kMap:
      t.kind = trace::ArenaEventKind::kMap;
      break;
    case arena::ArenaEventKind::kStitch:
      t.kind = trace::ArenaEventKind::kStitch;
      break;
    case arena::ArenaEventKind::kUnmap:
      t.kind = trace::ArenaEventKind::kUnmap;
      break;
    case arena::ArenaEventKind::kPhysicalCreate:
      t.kind = trace::ArenaEventKind::kPhysicalCreate;
      break;
    case arena::ArenaEventKind::kPhysicalRelease:
      t.kind = trace::ArenaEventKind::kPhysicalRelease;
      break;
    case arena::ArenaEventKind::kCacheRelease:
      t.kind = trace::ArenaEventKind::kCacheRelease;
      t.bytes2 = e.state.cached;
      break;
    // A join changes no mapping; a device synchronize none either; trims are recorded by the
    // hook that asked for them (with the target), failures as out-of-memory records.
    case arena::ArenaEventKind::kJoin:
    case arena::ArenaEventKind::kDeviceSync:
    case arena::ArenaEventKind::kTrim:
    case arena::ArenaEventKind::kOutOfMemory:
      return;
  }
  r->record_arena_event(t);
}

void trace_trim(DeviceOrdinal device, Bytes released, Bytes keep) noexcept {
  trace::Recorder* r = trace::recorder();
  if (r == nullptr) return;
  trace::ArenaEvent t;
  t.kind = trace::ArenaEventKind::kTrim;
  t.device = device;
  t.bytes = released;
  t.bytes2 = keep;
  r->record_arena_event(t);
}

}  // namespace cudefrag::hooks
