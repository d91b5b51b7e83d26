#include "shim/hooks/counters.hpp"

#include <optional>

#include "shim/hooks/live_table.hpp"

namespace cudefrag::hooks {
namespace {

static_assert(kHookCount <= stats::kMaxEntries, "grow stats::kMaxEntries (and its version)");

constinit stats::StatsBlock g_local_block{};
constinit std::atomic<stats::StatsBlock*> g_block{&g_local_block};

stats::StatsBlock& block() noexcept {
  return *g_block.load(std::memory_order_acquire);
}

stats::DeviceCounters* device_counters(DeviceOrdinal d) noexcept {
  if (d.value < 0 || static_cast<std::size_t>(d.value) >= stats::kMaxDevices) return nullptr;
  return &block().devices[static_cast<std::size_t>(d.value)];
}

// Never destroyed: frees arrive during process exit, after static destructors have run.
LiveTable& allocations() noexcept {
  static LiveTable* const table = new LiveTable;
  return *table;
}
LiveTable& handles() noexcept {
  static LiveTable* const table = new LiveTable;
  return *table;
}

stats::EntryCounters& entry(HookId id) noexcept {
  return block().entries[index(id)];
}

void count(HookId id, bool ok) noexcept {
  stats::EntryCounters& e = entry(id);
  stats::add(e.calls, 1);
  if (!ok) stats::add(e.failures, 1);
}

void track(LiveTable& table, std::uint64_t key, Bytes size, DeviceOrdinal device) noexcept {
  stats::DeviceCounters* d = device_counters(device);
  if (d == nullptr || !table.insert(key, LiveEntry{size, device})) return;
  stats::add_live(*d, size.value);
}

Forgotten forget(LiveTable& table, std::uint64_t key) noexcept {
  Forgotten f;
  f.ptr = DevicePtr{key};
  if (key == 0) return f;
  const std::optional<LiveEntry> e = table.erase(key);
  if (!e) return f;
  f.size = e->size;
  f.device = e->device;
  f.found = true;
  if (stats::DeviceCounters* d = device_counters(e->device)) stats::sub_live(*d, e->size.value);
  return f;
}

void restore(LiveTable& table, const Forgotten& f) noexcept {
  if (f.found) track(table, f.ptr.value, f.size, f.device);
}

}  // namespace

void attach_counters(stats::StatsBlock* b) noexcept {
  g_block.store(b != nullptr ? b : &g_local_block, std::memory_order_release);
}

stats::StatsBlock& counters_block() noexcept {
  return block();
}

void count_call(HookId id, bool ok) noexcept {
  count(id, ok);
}

void count_alloc(HookId id, Bytes requested, bool ok, DevicePtr ptr, Bytes granted,
                 DeviceOrdinal device) noexcept {
  count(id, ok);
  stats::add(entry(id).bytes, requested.value);
  if (ok) track(allocations(), ptr.value, granted, device);
}

Forgotten forget_allocation(DevicePtr ptr) noexcept {
  return forget(allocations(), ptr.value);
}

void count_free(HookId id, bool ok, const Forgotten& f) noexcept {
  count(id, ok);
  if (!ok) restore(allocations(), f);
}

void count_create(HookId id, Bytes size, bool ok, std::uint64_t handle,
                  DeviceOrdinal device) noexcept {
  count(id, ok);
  stats::add(entry(id).bytes, size.value);
  if (ok) track(handles(), handle, size, device);
}

Forgotten forget_handle(std::uint64_t handle) noexcept {
  return forget(handles(), handle);
}

void count_release(HookId id, bool ok, const Forgotten& f) noexcept {
  count(id, ok);
  if (!ok) restore(handles(), f);
}

EntryCount entry_count(HookId id) noexcept {
  stats::EntryCounters& e = entry(id);
  return {stats::load(e.calls), stats::load(e.bytes), stats::load(e.failures)};
}

DeviceCount device_count(DeviceOrdinal device) noexcept {
  stats::DeviceCounters* d = device_counters(device);
  if (d == nullptr) return {};
  return {Bytes{stats::load(d->live_bytes)}, Bytes{stats::load(d->peak_bytes)}};
}

}  // namespace cudefrag::hooks
