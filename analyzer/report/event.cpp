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

}  // namespace cudefrag::analyzer
