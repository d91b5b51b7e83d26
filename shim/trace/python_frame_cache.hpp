// One thread's cache of the frames its Python stacks were made of: walked frame (code object
// identity and instruction) -> the recorded frame (file and function string ids, line).
//
// Why per thread: a repeated call site is the common case, and looking its 20-odd frames up in
// the shared maps cost two hashed probes a frame (names, then line) after hashing the code
// identity (bench/trace/python_bench.py, docs/trace-format.md). Here a hit is one multiply for
// the slot and a compare of the fields walk_frames read anyway: no lock, no atomics, no sharing,
// since only the owning thread touches it.
//
// Why it is exact: an entry is used only when every field of the walked frame equals the one it
// was filled from (RawFrame::same_code and the instruction), never on a hash alone. What it
// cannot tell apart is what the shared caches cannot either (python_stack.hpp): a code object
// freed and replaced at the same address by one whose name, qualified name and line table also
// reuse the old ones' addresses, with the same first line and (3.12+) the same co_version.
//
// Bounded: direct-mapped, kEntries slots of one cache line each (64 KiB); a newer frame simply
// replaces the slot's older one.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

#include "shim/trace/format.hpp"
#include "shim/trace/python_frames_reader.hpp"

namespace cudefrag::trace {

class PythonFrameCache {
 public:
  static constexpr std::size_t kEntries = 1024;

  // The frame recorded for `raw` before, or nullptr.
  const format::PythonFrame* find(const pyframes::RawFrame& raw) const {
    const Entry& e = entries_[slot(raw)];
    return e.raw.unit == raw.unit && e.raw.same_code(raw) ? &e.frame : nullptr;
  }

  void insert(const pyframes::RawFrame& raw, const format::PythonFrame& frame) {
    entries_[slot(raw)] = {raw, frame};
  }

  // Forgets every frame (its string ids belong to another string table, for instance).
  void clear() { entries_.fill(Entry{}); }

 private:
  struct alignas(64) Entry {
    pyframes::RawFrame raw{};  // code nullptr: empty (no walked frame has it)
    format::PythonFrame frame{};
  };
  static_assert(sizeof(Entry) == 64);

  static std::size_t slot(const pyframes::RawFrame& raw) {
    // Fibonacci hashing of the address and instruction: one multiply, the high bits spread.
    const std::uint64_t h = (reinterpret_cast<std::uintptr_t>(raw.code) ^
                             std::uint64_t{static_cast<std::uint32_t>(raw.unit)} << 48) *
                            0x9E3779B97F4A7C15u;
    return static_cast<std::size_t>(h >> 54);  // 10 bits: kEntries
  }
  static_assert(kEntries == std::size_t{1} << 10);

  std::array<Entry, kEntries> entries_{};
};

}  // namespace cudefrag::trace
