// What every export needs to know at each point of a trace: the live allocations (blocks) and,
// per device, the virtual ranges mapped. The arena's map, stitch and unmap events say what is
// mapped; the model keeps one invariant whatever the trace holds, because PyTorch's memory_viz
// replays a snapshot backwards from its end and fails on a block outside every segment:
//
//   every live block lies inside the mapped ranges of its device.
//
// So an allocation outside every mapped range (no arena: passthrough mode, memory allocated
// before the shim, or lost arena records) maps its own range, unmapped again when it is freed;
// an unmap of a range that still holds live blocks unmaps only the rest, and the blocks' part
// goes when they are freed. A new allocation that overlaps live blocks replaces them (their
// frees were lost: dropped records). Each change is reported to a listener in the order made.
//
// Memory: one entry per live block and per mapped range; nothing per event.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <vector>

#include "analyzer/export/interval_set.hpp"

namespace cudefrag::analyzer {

struct Block {
  std::uint64_t address = 0;
  std::uint64_t size = 0;       // granted
  std::uint64_t requested = 0;  // what the program asked for (<= size)
  std::uint64_t stream = 0;
  std::uint64_t time_ns = 0;
  std::uint32_t stack = 0;  // stack id of the allocation, 0 when none
  std::uint32_t thread = 0;
  std::uint16_t entry = 0;
  std::int16_t device = -1;
  bool exported = false;  // its allocation was written to the outputs (inside the filters)
};

struct DeviceMemory {
  std::int16_t device = -1;
  std::uint64_t live = 0;  // bytes in live blocks
  std::uint64_t live_count = 0;
  IntervalSet mapped;             // what the outputs show as segments
  IntervalSet held;               // mapped only because live blocks are in it (see above)
  bool has_arena_ranges = false;  // the trace mapped ranges on this device
  bool has_physical = false;
  std::uint64_t physical = 0;
};

class MemoryListener {
 public:
  virtual ~MemoryListener() = default;
  virtual void mapped(const DeviceMemory& d, AddressRange range) = 0;
  virtual void unmapped(const DeviceMemory& d, AddressRange range) = 0;
  virtual void allocated(const DeviceMemory& d, Block& block) = 0;
  // `replaced`: freed because a new allocation overlapped it (its free record was lost).
  virtual void freed(const DeviceMemory& d, const Block& block, bool replaced) = 0;
};

class MemoryModel {
 public:
  void set_listener(MemoryListener* listener) { listener_ = listener; }

  void allocate(const Block& block);
  // False when no live block starts at `address`.
  bool free(std::uint64_t address);
  void map(std::int16_t device, std::uint64_t address, std::uint64_t bytes);
  void unmap(std::int16_t device, std::uint64_t address, std::uint64_t bytes);

  DeviceMemory& device(std::int16_t ordinal);
  const std::vector<std::unique_ptr<DeviceMemory>>& devices() const { return devices_; }
  // Live blocks by address (all devices: addresses are unique in a process's unified space).
  const std::map<std::uint64_t, Block>& blocks() const { return blocks_; }

 private:
  void release(std::map<std::uint64_t, Block>::iterator it, bool replaced);

  MemoryListener* listener_ = nullptr;
  std::map<std::uint64_t, Block> blocks_;
  std::vector<std::unique_ptr<DeviceMemory>> devices_;
  DeviceMemory* last_ = nullptr;
};

}  // namespace cudefrag::analyzer
