#include "analyzer/export/export_pass.hpp"

#include <algorithm>
#include <cmath>

namespace cudefrag::analyzer {
namespace {

std::uint64_t after_start(std::uint64_t start, double seconds) {
  const double ns = std::round(seconds * 1e9);
  if (ns >= 1.8e19) return UINT64_MAX;
  const auto offset = static_cast<std::uint64_t>(ns);
  return offset > UINT64_MAX - start ? UINT64_MAX : start + offset;
}

}  // namespace

ExportPass::ExportPass(ExportFilter filter, std::vector<ExportSink*> sinks)
    : filter_(filter), sinks_(std::move(sinks)) {
  context_.memory.set_listener(this);
}

void ExportPass::add(Record& record) {
  if (Event simple; simple_event(record, simple)) {
    // An Event has no room for the stream; an allocation keeps the index of its stream in the
    // payload field, which alloc and free events do not use otherwise.
    if (const auto* m = std::get_if<format::MemoryRecord>(&record)) {
      simple.payload = stream_index(m->stream);
    }
    push(simple);
  } else if (Event e; payload_event(record, payloads_, e)) {
    push(e);
  } else if (auto* stack = std::get_if<StackDef>(&record)) {
    context_.frames.add_stack(*stack);
    context_.stacks.add_stack(std::move(*stack));
  } else if (auto* string = std::get_if<StringDef>(&record)) {
    context_.frames.add_string(*string);
    context_.stacks.add_string(std::move(*string));
  } else if (const auto* symbol = std::get_if<format::SymbolRecord>(&record)) {
    context_.frames.add_symbol(*symbol);
    context_.stacks.add_symbol(*symbol);
  } else if (const auto* name = std::get_if<EntryPointName>(&record)) {
    context_.stacks.add_entry_point(*name);
  } else if (auto* process = std::get_if<ProcessInfo>(&record)) {
    if (context_.has_process) return;
    context_.has_process = true;
    context_.process = std::move(*process);
    context_.start_ns = context_.process.start_mono_ns;
    if (filter_.from_s) from_ns_ = after_start(context_.start_ns, *filter_.from_s);
    if (filter_.to_s) to_ns_ = after_start(context_.start_ns, *filter_.to_s);
  }
}

std::uint32_t ExportPass::stream_index(std::uint64_t stream) {
  const auto [it, added] =
      stream_of_value_.try_emplace(stream, static_cast<std::uint32_t>(streams_.size()));
  if (added) streams_.push_back(stream);
  return it->second;
}

void ExportPass::push(const Event& event) {
  order_.push(event);
  Event ready;
  while (order_.pop_ready(ready)) replay(ready);
}

void ExportPass::replay(const Event& e) {
  // An event released late (see time_order.hpp) counts at the current time.
  const std::uint64_t t = std::max(e.time_ns, clock_ns_);
  clock_ns_ = t;
  const bool has_payload =
      e.kind == EventKind::kOom || e.kind == EventKind::kCounters || e.kind == EventKind::kMark;
  if (t > to_ns_) {
    emitting_ = false;
    if (has_payload) payloads_.take(e.payload);
    return;
  }
  if (!entered_ && t >= from_ns_) {
    entered_ = emitting_ = true;
    for (ExportSink* s : sinks_) s->range_started(context_, t);
    for (const auto& d : context_.memory.devices()) {
      if (selected(d->device)) {
        for (ExportSink* s : sinks_) s->memory_changed(context_, *d, t);
      }
    }
  }
  if (emitting_) last_ns_ = t;
  switch (e.kind) {
    case EventKind::kAlloc:
      alloc(e);
      break;
    case EventKind::kFree:
      // Freeing NULL does nothing; a free of memory allocated before the trace is left out.
      if (e.address != 0) context_.memory.free(e.address);
      break;
    case EventKind::kArena:
      arena(e);
      break;
    case EventKind::kOom: {
      const auto r = std::get<format::OomRecord>(payloads_.take(e.payload));
      physical(r.device, r.state.physical);
      if (emitting(r.device)) {
        for (ExportSink* s : sinks_) s->oom(context_, r, t);
        // The memory at the OOM, as PyTorch's snapshots taken in an OOM observer show it.
        if (filter_.until_oom) to_ns_ = t;
      }
      break;
    }
    case EventKind::kCounters: {
      const auto r = std::get<format::CountersRecord>(payloads_.take(e.payload));
      physical(r.device, r.state.physical);
      break;
    }
    case EventKind::kMark: {
      const Mark mark = std::get<Mark>(payloads_.take(e.payload));
      if (emitting_) {
        for (ExportSink* s : sinks_) s->mark(context_, mark, t);
      }
      break;
    }
  }
}

void ExportPass::alloc(const Event& e) {
  // A failed request holds nothing (its OOM record tells the rest), nor does a zero-size one.
  if (e.result != 0 || e.address == 0 || e.bytes == 0) return;
  Block b;
  b.address = e.address;
  b.size = e.bytes;
  b.requested = e.bytes2 != 0 ? std::min(e.bytes2, e.bytes) : e.bytes;
  b.time_ns = clock_ns_;
  b.stack = e.stack;
  b.thread = e.thread;
  b.entry = e.entry;
  b.device = e.device;
  b.stream = streams_[e.payload];
  b.exported = emitting(e.device);
  context_.memory.allocate(b);
}

void ExportPass::arena(const Event& e) {
  switch (static_cast<format::ArenaEventKind>(e.entry)) {
    case format::ArenaEventKind::kMap:
    case format::ArenaEventKind::kStitch:
      context_.memory.map(e.device, e.address, e.bytes);
      changed(context_.memory.device(e.device));
      break;
    case format::ArenaEventKind::kUnmap:
      context_.memory.unmap(e.device, e.address, e.bytes);
      changed(context_.memory.device(e.device));
      break;
    case format::ArenaEventKind::kPhysicalCreate: {
      DeviceMemory& d = context_.memory.device(e.device);
      physical(e.device, d.physical + e.bytes);
      break;
    }
    case format::ArenaEventKind::kPhysicalRelease: {
      // A release counts once the amount is known (a creation or a sample came before).
      DeviceMemory& d = context_.memory.device(e.device);
      if (d.has_physical) physical(e.device, d.physical - std::min(d.physical, e.bytes));
      break;
    }
    default:
      break;
  }
}

void ExportPass::physical(std::int16_t device, std::uint64_t bytes) {
  DeviceMemory& d = context_.memory.device(device);
  if (d.has_physical && d.physical == bytes) return;
  d.has_physical = true;
  d.physical = bytes;
  changed(d);
}

void ExportPass::changed(const DeviceMemory& d) {
  if (!emitting(d.device)) return;
  for (ExportSink* s : sinks_) s->memory_changed(context_, d, clock_ns_);
}

void ExportPass::mapped(const DeviceMemory& d, AddressRange range) {
  if (!emitting(d.device)) return;
  for (ExportSink* s : sinks_) s->mapped(context_, d, range, clock_ns_);
}

void ExportPass::unmapped(const DeviceMemory& d, AddressRange range) {
  if (!emitting(d.device)) return;
  for (ExportSink* s : sinks_) s->unmapped(context_, d, range, clock_ns_);
}

void ExportPass::allocated(const DeviceMemory& d, Block& block) {
  if (!emitting(d.device)) return;
  for (ExportSink* s : sinks_) s->allocated(context_, block, clock_ns_);
  changed(d);
}

void ExportPass::freed(const DeviceMemory& d, const Block& block, bool replaced) {
  if (!emitting(d.device)) return;
  for (ExportSink* s : sinks_) s->freed(context_, block, replaced, clock_ns_);
  changed(d);
}

bool ExportPass::finish() {
  Event e;
  while (order_.pop_any(e)) replay(e);
  bool ok = true;
  for (ExportSink* s : sinks_) ok = s->finish(context_, entered_ ? last_ns_ : 0) && ok;
  return ok;
}

}  // namespace cudefrag::analyzer
