// Native call stacks of the calling thread, as raw return addresses (symbolized later, on the
// writer thread: symbolizer.hpp).
//
// libunwind's unw_backtrace is loaded at run time with dlopen("libunwind.so.8"), from the library
// path or else from the directory of the library holding this code: the GPU machine has no
// libunwind, and a preloaded library with a missing dependency stops the host program from
// starting. Without it, libgcc's _Unwind_Backtrace (always present: libstdc++ needs it) walks
// the same DWARF unwind tables, but interprets them afresh for every frame: measured about 10x
// slower (bench/trace, docs/trace-format.md).
//
// unw_backtrace is libunwind's fast path (tdep_trace): it classifies each return address once
// per thread and then steps a known frame in ~10 ns, so a walk costs in proportion to the
// frames it covers. It cannot be told where to stop, only how many frames to take; a walk that
// should end at a given function (capture's `stop`) therefore asks first for as many frames as
// that function was found at on this thread before, plus a margin, and walks again in full only
// when that was not enough. Either way the frames returned are exactly those of a full walk cut
// after the stop frame: the remembered depth decides the cost, never the result.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "shim/trace/recorder.hpp"

namespace cudefrag::trace {

// Code addresses [begin, end); empty when begin == end.
struct CodeRange {
  std::uint64_t begin = 0;
  std::uint64_t end = 0;
  bool empty() const { return begin >= end; }
  bool contains(std::uint64_t address) const { return address >= begin && address < end; }
};

// The extent of the function containing `code`, from its dynamic symbol (dladdr1); empty when
// `code` is null or the function is not in a dynamic symbol table with a size.
CodeRange function_range(const void* code);

class NativeStacks {
 public:
  explicit NativeStacks(NativeUnwinder choice);

  // Return addresses of the calling thread, innermost first: the first is in the function that
  // called capture(), or `skip` frames further out (to leave out the recorder's own frames).
  // Returns how many were written to `out` (at most 128).
  // With a non-empty `stop`, the frames end with the first one running in `stop` (its return
  // address - 1 lies in it): the frames further out are not walked, which is where the cost
  // goes. Without such a frame, the whole stack as without `stop`.
  [[gnu::noinline]] std::size_t capture(std::span<std::uint64_t> out, int skip,
                                        CodeRange stop = {}) const;

  // "libunwind" or "libgcc".
  std::string_view unwinder() const;

 private:
  // unw_backtrace into `out` (at most kMaxFrames), leaving out `skip` + 2 frames (this and
  // capture()). Out of line, called only from capture(), for that count to hold.
  [[gnu::noinline]] std::size_t walk_libunwind(std::span<std::uint64_t> out, int skip) const;

  using Backtrace = int (*)(void**, int);
  Backtrace unw_backtrace_ = nullptr;
};

}  // namespace cudefrag::trace
