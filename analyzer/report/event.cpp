#include "analyzer/report/event.hpp"

namespace cudefrag::analyzer {

bool simple_event(const Record& record, Event& e) {
  if (const auto* m = std::get_if<format::MemoryRecord>(&record)) {
    e.kind = m->header.type == format::RecordType::kAlloc ? EventKind::kAlloc : EventKind::kFree;
    e.time_ns = m->time_ns;
    e.address = m->address;
    // An allocation's size is what was granted; an older writer may have left it 0.
    e.bytes = m->granted != 0 || e.kind == EventKind::kFree ? m->granted : m->requested;
    e.bytes2 = m->requested;
    e.stack = m->stack;
    e.thread = m->thread;
    e.payload = 0;
    e.result = m->result;
    e.device = m->device;
    e.entry = m->entry;
    return true;
  }
  if (const auto* a = std::get_if<format::ArenaRecord>(&record)) {
    e.kind = EventKind::kArena;
    e.time_ns = a->time_ns;
    e.address = a->address;
    e.bytes = a->bytes;
    e.bytes2 = a->bytes2;
    e.stack = a->count;
    e.thread = a->thread;
    e.payload = 0;
    e.result = 0;
    e.device = a->device;
    e.entry = static_cast<std::uint16_t>(a->kind);
    return true;
  }
  return false;
}

bool payload_event(Record& record, PayloadStore& store, Event& e) {
  e = Event{};
  if (const auto* o = std::get_if<format::OomRecord>(&record)) {
    e.kind = EventKind::kOom;
    e.time_ns = o->time_ns;
    e.thread = o->thread;
    e.device = o->device;
    e.payload = store.put(*o);
    return true;
  }
  if (const auto* c = std::get_if<format::CountersRecord>(&record)) {
    e.kind = EventKind::kCounters;
    e.time_ns = c->time_ns;
    e.thread = 0;  // written by the writer thread; no application thread has id 0
    e.device = c->device;
    e.payload = store.put(*c);
    return true;
  }
  if (auto* mark = std::get_if<Mark>(&record)) {
    e.kind = EventKind::kMark;
    e.time_ns = mark->time_ns;
    e.thread = mark->thread;
    e.payload = store.put(std::move(*mark));
    return true;
  }
  return false;
}

}  // namespace cudefrag::analyzer
