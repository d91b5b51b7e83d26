// One pass over a trace for every export at once. Records are taken in file order: definitions
// go to the context at once, events are put back in time order (report/time_order.hpp) and
// replayed into the memory model (memory_model.hpp), whose changes reach the sinks when they
// fall inside the filters.
//
// Filters: the model follows the whole trace up to the end of the range, so that the memory in
// use when the range starts is known; sinks hear only of events from --from to --to and of the
// selected device. Events after --to are read (a corrupt file is still an error) and ignored:
// the memory at the end is the memory at the end of the range.
//
// Contract: add() every record in file order, then finish() once.
#pragma once

#include <cstdint>
#include <optional>
#include <unordered_map>
#include <vector>

#include "analyzer/export/sink.hpp"
#include "analyzer/report/event.hpp"
#include "analyzer/report/time_order.hpp"

namespace cudefrag::analyzer {

struct ExportFilter {
  std::optional<int> device;
  std::optional<double> from_s;  // seconds since the program started
  std::optional<double> to_s;
  bool until_oom = false;  // the range ends at its first out-of-memory error (selected device)
};

class ExportPass : private MemoryListener {
 public:
  ExportPass(ExportFilter filter, std::vector<ExportSink*> sinks);

  // The record may be moved from.
  void add(Record& record);
  // Replays what is left and lets each sink finish; false when one could not write.
  bool finish();

 private:
  std::uint32_t stream_index(std::uint64_t stream);
  void push(const Event& event);
  void replay(const Event& event);
  void alloc(const Event& e);
  void arena(const Event& e);
  void physical(std::int16_t device, std::uint64_t bytes);
  void changed(const DeviceMemory& d);
  bool selected(std::int16_t device) const { return !filter_.device || *filter_.device == device; }
  bool emitting(std::int16_t device) const { return emitting_ && selected(device); }

  void mapped(const DeviceMemory& d, AddressRange range) override;
  void unmapped(const DeviceMemory& d, AddressRange range) override;
  void allocated(const DeviceMemory& d, Block& block) override;
  void freed(const DeviceMemory& d, const Block& block, bool replaced) override;

  ExportFilter filter_;
  std::vector<ExportSink*> sinks_;
  ExportContext context_;
  TimeOrder order_;
  PayloadStore payloads_;
  std::uint64_t from_ns_ = 0;
  std::uint64_t to_ns_ = UINT64_MAX;
  std::uint64_t clock_ns_ = 0;  // never goes back
  std::uint64_t last_ns_ = 0;   // of the last event inside the range
  bool entered_ = false;
  bool emitting_ = false;
  std::vector<std::uint64_t> streams_;  // distinct stream handles, by index
  std::unordered_map<std::uint64_t, std::uint32_t> stream_of_value_;
};

}  // namespace cudefrag::analyzer
