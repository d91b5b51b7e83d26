// What each export format receives from the pass over a trace (export_pass.hpp): the changes of
// memory in time order, already filtered (device, time range). Times are CLOCK_MONOTONIC ns as
// in the trace and never go back. A sink writes as it goes (memory bounded by live state) and
// remembers a write error for finish() to report.
#pragma once

#include <cstdint>

#include "analyzer/export/frames.hpp"
#include "analyzer/export/memory_model.hpp"
#include "analyzer/read/reader.hpp"
#include "analyzer/report/stack_table.hpp"

namespace cudefrag::analyzer {

// Shared by the sinks: what the trace has said so far.
struct ExportContext {
  bool has_process = false;
  ProcessInfo process;
  std::uint64_t start_ns = 0;  // the program's start (monotonic)
  FrameTable frames;
  // Call sites and entry point names, as `cudefrag report` names them; looking a site up
  // assigns it an index, hence mutable.
  mutable StackTable stacks;
  MemoryModel memory;

  // Wall-clock µs since the Unix epoch of monotonic time `t`.
  std::int64_t wall_us(std::uint64_t t) const {
    const auto delta = static_cast<std::int64_t>(t - start_ns);
    return (static_cast<std::int64_t>(process.start_wall_ns) + delta) / 1000;
  }
};

class ExportSink {
 public:
  virtual ~ExportSink() = default;

  // The range starts at `t` (the first event inside it); memory may already be in use.
  virtual void range_started(const ExportContext&, std::uint64_t /*t*/) {}
  // Live bytes, mapped ranges or physical memory of `d` changed.
  virtual void memory_changed(const ExportContext&, const DeviceMemory& /*d*/,
                              std::uint64_t /*t*/) {}
  virtual void mapped(const ExportContext&, const DeviceMemory&, AddressRange, std::uint64_t) {}
  virtual void unmapped(const ExportContext&, const DeviceMemory&, AddressRange, std::uint64_t) {}
  virtual void allocated(const ExportContext&, const Block&, std::uint64_t) {}
  virtual void freed(const ExportContext&, const Block&, bool /*replaced*/, std::uint64_t) {}
  virtual void oom(const ExportContext&, const format::OomRecord&, std::uint64_t) {}
  virtual void mark(const ExportContext&, const Mark&, std::uint64_t) {}
  // The end of the range (`t`: the last event's time, 0 when there was none): write what is
  // left. False when the output could not be written.
  virtual bool finish(const ExportContext&, std::uint64_t t) = 0;
};

}  // namespace cudefrag::analyzer
