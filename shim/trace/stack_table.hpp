// Call stacks stored once in a trace and referred to by id. A stack is its native return
// addresses and its Python frames; the same frames always get the same id. Looking up a known
// stack is a hash, one lock-free probe and a compare of the frames; only a new stack takes the
// table's lock and queues its definition.
#pragma once

#include <atomic>
#include <cstdint>
#include <deque>
#include <mutex>
#include <span>
#include <vector>

#include "shim/common/units.hpp"
#include "shim/trace/concurrent_map.hpp"
#include "shim/trace/definitions.hpp"
#include "shim/trace/format.hpp"

namespace cudefrag::trace {

class StackTable {
 public:
  // Enough for any real program's distinct call sites (4 MiB of slots, touched as used).
  static constexpr std::size_t kDefaultCapacity = std::size_t{1} << 18;

  explicit StackTable(DefinitionQueue& definitions, std::size_t capacity = kDefaultCapacity);

  // The id of this stack (from 1), defining it on first sight; 0 when both spans are empty or
  // the table is full (counted in not_stored()). PythonFrame::reserved must be 0.
  StackId intern(std::span<const std::uint64_t> native,
                 std::span<const format::PythonFrame> python);

  std::uint64_t size() const { return defined_.load(std::memory_order_relaxed); }
  std::uint64_t not_stored() const { return not_stored_.load(std::memory_order_relaxed); }

 private:
  struct Stack {
    std::uint32_t id;
    std::uint16_t native_count;
    std::uint16_t python_count;
    std::vector<std::byte> frames;  // native addresses, then Python frames, as in the record
  };

  StackId find(std::uint64_t hash, std::span<const std::uint64_t> native,
               std::span<const format::PythonFrame> python) const;

  DefinitionQueue& definitions_;
  ConcurrentMap map_;  // hash -> Stack*
  std::mutex mutex_;   // serialises definitions
  std::deque<Stack> stacks_;
  std::atomic<std::uint64_t> defined_{0};
  std::atomic<std::uint64_t> not_stored_{0};
};

}  // namespace cudefrag::trace
