// One timed event of a trace, in the compact form the report keeps while it puts events of
// different threads back in time order (time_order.hpp). Definitions (strings, stacks, symbols)
// and the opening records are not events: the report takes them as they are read.
#pragma once

#include <cstdint>
#include <string>
#include <variant>
#include <vector>

#include "analyzer/read/reader.hpp"

namespace cudefrag::analyzer {

enum class EventKind : std::uint8_t { kAlloc, kFree, kArena, kOom, kCounters, kMark };

// Field use by kind:
//   alloc/free: address, bytes = granted, bytes2 = requested, stack, entry, result
//   arena:      address, bytes, bytes2, stack = count, entry = format::ArenaEventKind
//   oom, counters, mark: payload = slot in a PayloadStore holding the whole record
struct Event {
  std::uint64_t time_ns = 0;
  std::uint64_t address = 0;
  std::uint64_t bytes = 0;
  std::uint64_t bytes2 = 0;
  std::uint32_t stack = 0;
  std::uint32_t thread = 0;
  std::uint32_t payload = 0;
  std::int32_t result = 0;
  std::int16_t device = -1;
  std::uint16_t entry = 0;
  EventKind kind = EventKind::kAlloc;
};

// Alloc, free and arena records (nearly all of a trace) as an Event; false for other records.
bool simple_event(const Record& record, Event& out);

// The few large, rare records (OOM, counters, marks) wait here while their Event is reordered,
// so that every Event stays small. Slots are reused once taken.
class PayloadStore {
 public:
  using Payload = std::variant<format::OomRecord, format::CountersRecord, Mark>;

  std::uint32_t put(Payload payload) {
    if (free_.empty()) {
      slots_.push_back(std::move(payload));
      return static_cast<std::uint32_t>(slots_.size() - 1);
    }
    const std::uint32_t slot = free_.back();
    free_.pop_back();
    slots_[slot] = std::move(payload);
    return slot;
  }

  Payload take(std::uint32_t slot) {
    free_.push_back(slot);
    return std::move(slots_[slot]);
  }

 private:
  std::vector<Payload> slots_;
  std::vector<std::uint32_t> free_;
};

// OOM, counters and mark records as an Event whose payload is parked in `store` (the record may
// be moved from); false for other records.
bool payload_event(Record& record, PayloadStore& store, Event& out);

}  // namespace cudefrag::analyzer
