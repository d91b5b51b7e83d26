// Native call stacks of the calling thread, as raw return addresses (symbolized later, on the
// writer thread: symbolizer.hpp).
//
// libunwind's unw_backtrace is loaded at run time with dlopen("libunwind.so.8"), from the library
// path or else from the directory of the library holding this code: the GPU machine has no
// libunwind, and a preloaded library with a missing dependency stops the host program from
// starting. Without it, libgcc's _Unwind_Backtrace (always present: libstdc++ needs it) walks
// the same DWARF unwind tables, but interprets them afresh for every frame: measured about 10x
// slower (bench/trace, docs/trace-format.md).
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "shim/trace/recorder.hpp"

namespace cudefrag::trace {

class NativeStacks {
 public:
  explicit NativeStacks(NativeUnwinder choice);

  // Return addresses of the calling thread, innermost first: the first is in the function that
  // called capture(), or `skip` frames further out (to leave out the recorder's own frames).
  // Returns how many were written to `out` (at most 128).
  [[gnu::noinline]] std::size_t capture(std::span<std::uint64_t> out, int skip) const;

  // "libunwind" or "libgcc".
  std::string_view unwinder() const;

 private:
  using Backtrace = int (*)(void**, int);
  Backtrace unw_backtrace_ = nullptr;
};

}  // namespace cudefrag::trace
