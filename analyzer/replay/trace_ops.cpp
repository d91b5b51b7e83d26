#include "analyzer/replay/trace_ops.hpp"

#include <algorithm>
#include <utility>

#include "analyzer/report/event.hpp"
#include "analyzer/report/time_order.hpp"

namespace cudefrag::analyzer::replay {

TraceOps::TraceOps(std::string path, std::optional<int> device)
    : path_(std::move(path)), device_(device) {}

bool TraceOps::scan() {
  summary_ = TraceSummary{};
  summary_.device = device_;
  std::unordered_map<std::uint64_t, Bytes> live;
  Bytes live_bytes;
  const bool ok = read(
      [&](const Op& op) {
        if (op.alloc) {
          if (const auto old = live.find(op.key); old != live.end()) live_bytes -= old->second;
          live[op.key] = op.size;
          live_bytes += op.size;
          ++summary_.allocations;
          if (live_bytes > summary_.peak_live) {
            summary_.peak_live = live_bytes;
            summary_.peak_live_ns = op.time_ns;
          }
        } else if (const auto it = live.find(op.key); it != live.end()) {
          live_bytes -= it->second;
          live.erase(it);
          ++summary_.frees;
        } else {
          ++summary_.unmatched_frees;
        }
        return true;
      },
      true);
  return ok;
}

bool TraceOps::replay(const std::function<bool(const Op&)>& on_op) {
  return read(on_op, false);
}

std::string TraceOps::site(std::uint32_t stack, std::uint16_t entry) {
  return stacks_.site(stacks_.stack_index(stack, entry)).label;
}

bool TraceOps::read(const std::function<bool(const Op&)>& on_op, bool scanning) {
  TraceReader reader(path_);
  TimeOrder order;
  std::vector<std::uint64_t> streams;  // by dense index (Event::payload)
  std::unordered_map<std::uint64_t, std::uint32_t> stream_index;
  std::vector<bool> async_entry;
  std::uint64_t start_ns = 0;
  std::optional<int> device = scanning ? device_ : summary_.device;
  std::vector<int> others;
  std::vector<DeviceInfo> devices;
  bool go_on = true;

  const auto deliver = [&](const Event& e) {
    if (!go_on) return;
    Op op;
    op.time_ns = e.time_ns >= start_ns ? e.time_ns - start_ns : 0;
    op.key = e.address;
    op.size = Bytes{e.bytes2 != 0 ? e.bytes2 : e.bytes};
    op.stream = streams[e.payload];
    op.stack = e.stack;
    op.entry = e.entry;
    op.alloc = e.kind == EventKind::kAlloc;
    op.legacy = e.entry >= async_entry.size() || !async_entry[e.entry];
    go_on = on_op(op);
  };

  Record record;
  Event event;
  while (go_on && reader.next(record)) {
    if (const auto* m = std::get_if<format::MemoryRecord>(&record)) {
      const bool alloc = m->header.type == format::RecordType::kAlloc;
      if (alloc && (m->result != 0 || m->address == 0)) {
        if (scanning && m->result != 0 && (!device || *device == m->device)) {
          ++summary_.failed_in_trace;
        }
        continue;
      }
      if (alloc && !device) device = m->device;
      if (device && *device != m->device) {
        if (scanning && alloc &&
            std::find(others.begin(), others.end(), m->device) == others.end()) {
          others.push_back(m->device);
        }
        continue;
      }
      if (!device) continue;  // a free before any allocation: nothing it could free
      simple_event(record, event);
      const auto [it, added] =
          stream_index.try_emplace(m->stream, static_cast<std::uint32_t>(streams.size()));
      if (added) streams.push_back(m->stream);
      event.payload = it->second;
      order.push(event);
      while (go_on && order.pop_ready(event)) deliver(event);
      continue;
    }
    if (const auto* p = std::get_if<ProcessInfo>(&record)) {
      start_ns = p->start_mono_ns;
    } else if (const auto* e = std::get_if<EntryPointName>(&record)) {
      if (e->id >= async_entry.size()) async_entry.resize(e->id + std::size_t{1}, false);
      async_entry[e->id] = e->name.find("Async") != std::string::npos;
      if (scanning) stacks_.add_entry_point(*e);
    } else if (!scanning) {
      continue;
    } else if (auto* s = std::get_if<StringDef>(&record)) {
      stacks_.add_string(std::move(*s));
    } else if (auto* k = std::get_if<StackDef>(&record)) {
      stacks_.add_stack(std::move(*k));
    } else if (const auto* y = std::get_if<format::SymbolRecord>(&record)) {
      stacks_.add_symbol(*y);
    } else if (auto* d = std::get_if<DeviceInfo>(&record)) {
      devices.push_back(std::move(*d));
    }
  }
  while (go_on && order.pop_any(event)) deliver(event);

  if (reader.ending() == Ending::kError) {
    error_ = reader.error() ? reader.error()->message : path_ + ": cannot read the trace";
    return false;
  }
  if (scanning) {
    summary_.device = device;
    for (const DeviceInfo& d : devices) {
      if (device && d.ordinal == *device) {
        summary_.device_name = d.name;
        summary_.device_total = Bytes{d.total_memory};
      }
    }
    summary_.other_devices = std::move(others);
    summary_.streams = streams.size();
    summary_.ending = reader.ending();
    if (reader.warning()) summary_.warning = reader.warning()->message;
  }
  return true;
}

}  // namespace cudefrag::analyzer::replay
