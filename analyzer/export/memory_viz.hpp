// --memory-viz: a pickle that PyTorch's memory_viz opens (torch.cuda._memory_viz and the viewer
// at pytorch.org/memory_viz), shaped as torch.cuda.memory._snapshot() returns it:
//
//   {"device_traces": [[event, ...] per device ordinal],
//    "segments": [segment, ...],            the memory at the end of the range
//    "allocator_settings": {}}
//
// Segments are the mapped virtual ranges of the model (memory_model.hpp), blocks the live
// allocations in them, the gaps inactive blocks, so that every segment's blocks tile it. The
// events are alloc, free_requested + free_completed, segment_map / segment_unmap (the arena's
// ranges, which the viewer merges and splits like PyTorch's expandable segments) and oom.
// The viewer rebuilds earlier states by undoing events from the final segments, which is why
// the model keeps every live block inside a segment at all times.
//
// Each device's events are written to a temporary file as they come and copied into the
// output at the end: memory is bounded by live blocks and distinct stacks.
#pragma once

#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "analyzer/export/pickle_writer.hpp"
#include "analyzer/export/sink.hpp"

namespace cudefrag::analyzer {

class MemoryVizSink : public ExportSink {
 public:
  explicit MemoryVizSink(std::FILE* out) : out_(out) {}
  ~MemoryVizSink() override;

  void mapped(const ExportContext& c, const DeviceMemory& d, AddressRange r,
              std::uint64_t t) override;
  void unmapped(const ExportContext& c, const DeviceMemory& d, AddressRange r,
                std::uint64_t t) override;
  void allocated(const ExportContext& c, const Block& b, std::uint64_t t) override;
  void freed(const ExportContext& c, const Block& b, bool replaced, std::uint64_t t) override;
  void oom(const ExportContext& c, const format::OomRecord& r, std::uint64_t t) override;
  bool finish(const ExportContext& c, std::uint64_t t) override;

 private:
  struct DeviceTrace {
    std::FILE* spill = nullptr;  // events written so far, as pickle items
    PickleWriter pickle;
    std::size_t in_batch = 0;
    std::map<std::uint32_t, std::uint32_t> memo_of_stack;
    std::map<std::string_view, std::uint32_t> memo_of_name;
  };

  DeviceTrace& trace(std::int16_t device);
  void begin_event(DeviceTrace& d, std::string_view action, std::uint64_t stream, std::uint64_t t,
                   const ExportContext& c);
  void end_event(DeviceTrace& d);
  void segment_event(const ExportContext& c, const DeviceMemory& d, std::string_view action,
                     AddressRange r, std::uint64_t t);
  // An event about one block (alloc, free_requested, free_completed): address, size, frames.
  void block_event(const ExportContext& c, std::string_view action, const Block& b,
                   std::uint64_t t);
  // A key or action name: stored once per device, then referred to (a third of an event's
  // bytes otherwise).
  void name(DeviceTrace& d, std::string_view text);
  void frames(DeviceTrace& d, const ExportContext& c, std::uint32_t stack);
  void frames(PickleWriter& w, const ExportContext& c, std::uint32_t stack,
              std::map<std::uint32_t, std::uint32_t>* memo);
  void spill(DeviceTrace& d, bool all);
  void write_segments(PickleWriter& w, const ExportContext& c, int unknown_slot);

  std::FILE* out_;
  std::map<std::int16_t, std::unique_ptr<DeviceTrace>> devices_;
  std::uint32_t next_name_memo_ = 0;  // below 256: two-byte references
  std::uint32_t next_memo_ = 256;     // frame lists
  bool failed_ = false;
};

}  // namespace cudefrag::analyzer
