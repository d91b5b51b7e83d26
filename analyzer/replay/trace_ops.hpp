// A trace as the allocation requests and frees of one device, in time order, for the models.
// The trace is streamed, never loaded: scan() reads it once for its summary and its call stacks,
// replay() reads it again for each model run. Memory is bounded by the live allocations, the
// reorder window of TimeOrder (analyzer/report/time_order.hpp) and the distinct stacks.
//
// What is replayed: every successful allocation (cudaMalloc, cudaMallocAsync, cuMemAlloc, pitch
// and 3D variants...) with the size the program requested, and every free of an allocation seen.
// Requests the traced run saw fail are counted but not replayed (the program held nothing for
// them); frees of addresses allocated before the trace began are counted and skipped.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "analyzer/read/reader.hpp"
#include "analyzer/report/stack_table.hpp"
#include "shim/common/units.hpp"

namespace cudefrag::analyzer::replay {

struct Op {
  std::uint64_t time_ns = 0;  // since the program started
  std::uint64_t key = 0;      // the allocation's address in the traced run
  Bytes size;                 // requested (allocations only)
  std::uint64_t stream = 0;   // the stream handle's value; 0 for the legacy default stream
  std::uint32_t stack = 0;    // stack id in the trace
  std::uint16_t entry = 0;    // entry point id
  bool alloc = false;
  bool legacy = false;  // cudaMalloc / cudaFree style, not stream-ordered
};

struct TraceSummary {
  std::optional<int> device;  // the device replayed; none when the trace has no allocation
  std::string device_name;
  Bytes device_total;              // 0 when the trace has no device record for it
  std::vector<int> other_devices;  // with allocations, not replayed
  std::uint64_t allocations = 0;
  std::uint64_t frees = 0;
  std::uint64_t failed_in_trace = 0;  // failed requests of the traced run (not replayed)
  std::uint64_t unmatched_frees = 0;  // frees of addresses the trace never saw allocated
  std::uint64_t streams = 0;
  Bytes peak_live;  // requested bytes live at once
  std::uint64_t peak_live_ns = 0;
  Ending ending = Ending::kReading;
  std::string warning;  // how a truncated trace ends; empty otherwise
};

class TraceOps {
 public:
  TraceOps(std::string path, std::optional<int> device);

  // Reads the whole trace once. False when it cannot be read (error() says why).
  bool scan();
  // Reads it again and calls on_op for each operation in time order until on_op returns false.
  // Call after a successful scan().
  bool replay(const std::function<bool(const Op&)>& on_op);

  const TraceSummary& summary() const { return summary_; }
  // The call site of a stack, as `cudefrag report` names it.
  std::string site(std::uint32_t stack, std::uint16_t entry);
  const std::string& error() const { return error_; }

 private:
  bool read(const std::function<bool(const Op&)>& on_op, bool scanning);

  std::string path_;
  std::optional<int> device_;
  TraceSummary summary_;
  StackTable stacks_;
  std::string error_;
};

}  // namespace cudefrag::analyzer::replay
