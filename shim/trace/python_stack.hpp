// Python frames of the calling thread, when it is running CPython and holds the GIL.
//
// Found at run time, without linking Python: the functions come from dlsym(RTLD_DEFAULT), so in
// a process that is not Python they are absent and capture() returns 0 at the cost of a pointer
// test. Only the stable C API is used (3.9+: PyThreadState_GetFrame, PyFrame_GetBack,
// PyFrame_GetCode, PyFrame_GetLineNumber), whose reference semantics are the same in 3.11, 3.12
// and 3.13: the first three return new references, which we drop.
//
// The GIL test is strict: Py_IsInitialized(), PyGILState_Check(), and the thread state active on
// this thread is this thread's own (PyGILState_Check returns 1 when its check is disabled, and
// before 3.12 the "current" thread state is the GIL holder's, whichever thread that is). A
// thread that released the GIL gets no Python frames: PyTorch's operator bindings release it
// before they allocate, so most tensor allocations are recorded without Python frames.
//
// File and function names are interned once per code object: the cache keeps a reference to
// each code object it has seen, so an address cannot be reused by another code object.
#pragma once

#include <cstddef>
#include <cstdint>
#include <mutex>
#include <span>

#include "shim/trace/concurrent_map.hpp"
#include "shim/trace/format.hpp"
#include "shim/trace/string_table.hpp"

namespace cudefrag::trace {

class PythonStacks {
 public:
  explicit PythonStacks(StringTable& strings);

  // Frames of the calling thread, innermost first (reserved fields 0). 0 when this is not a
  // Python thread holding the GIL. May run Python's allocator and hence its garbage collector,
  // which may free objects and re-enter the recorder on this thread: the caller guards that.
  std::size_t capture(std::span<format::PythonFrame> out);

  // True when the Python C API was found in this process.
  bool available() const;

 private:
  // File and function string ids of a code object, packed as the cache stores them.
  std::uint64_t names_of(void* code);

  StringTable& strings_;
  ConcurrentMap code_names_;  // code object -> names_of(code)
  std::mutex mutex_;          // serialises code_names_ inserts
};

}  // namespace cudefrag::trace
