// Python frames of the calling thread (file, qualified function name, line), when it runs CPython.
//
// Found at run time, without linking Python: the interpreter's symbols come from
// dlsym(RTLD_DEFAULT), so in a process that is not Python they are absent and capture() returns 0
// at the cost of a pointer test. The version (Py_Version, else Py_GetVersion()) picks one of two
// ways to read the frames, at the first capture:
//
// - Walk (CPython 3.11, 3.12, 3.13): the thread's frame chain is read in place
//   (python_frames_reader.hpp), for ANY thread with a Python thread state
//   (PyGILState_GetThisThreadState), whether or not it holds the GIL. This is what names the
//   Python caller of an allocation made inside a PyTorch operator, whose binding releases the GIL
//   before it dispatches. No Python call that allocates or touches a reference count is made. The
//   walk is also used with the GIL held: it creates no frame objects (so it never runs Python's
//   garbage collector), costs less, and gives a call site the same frames either way. The first
//   capture made with the GIL held is checked against the C API (same code objects, same lines);
//   a mismatch turns the walk off for good, with one message. 24 frames, warm caches: 0.5-0.8 us
//   walked, with or without the GIL, against 2-4 us through the C API (both on one loaded 2-core
//   Debian machine, Python 3.11). Without the GIL, no walk while the interpreter finalizes
//   (finalization frees the thread states of threads that do not hold it); a walk already under
//   way when finalization starts (it lasts under a microsecond) is not protected.
// - C API (any other version, or a build whose objects are not laid out as expected): only for a
//   thread holding the GIL, through the stable API (PyThreadState_GetFrame, PyFrame_GetBack,
//   PyFrame_GetCode, PyFrame_GetLineNumber). A thread without the GIL then records no Python
//   frames; one message says so.
//
// "Holds the GIL" is tested strictly: PyGILState_Check(), and the thread state active on this
// thread is this thread's own (PyGILState_Check returns 1 when its check is disabled, and before
// 3.12 the "current" thread state is the GIL holder's, whichever thread that is).
//
// Names are read once per code object and cached; so is the line of each instruction a walk
// meets (computing it decodes the line table: most of a walk's cost otherwise). With the GIL held
// the cache also keeps a reference to the code object, so its address cannot be reused by another;
// without the GIL no reference can be taken, and the cache key (python_frames_reader.hpp:
// code_key, RawFrame) also covers the name and line-table objects, the first line and, on 3.12+,
// co_version (a number each new code object takes from a counter), so a reused address reads as
// a new code object. On 3.11, which has no co_version, it does not if the names and line table
// were reused at their old addresses as well. In front of those shared caches, each thread keeps
// the frames it recorded (python_frame_cache.hpp: 64 KiB, direct-mapped, exact compare of the
// same identity), so a repeated call site costs the walk and a compare per frame: no hashing, no
// shared probes.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <span>
#include <string_view>

#include "shim/trace/concurrent_map.hpp"
#include "shim/trace/format.hpp"
#include "shim/trace/native_stack.hpp"
#include "shim/trace/python_frames_layout.hpp"
#include "shim/trace/string_table.hpp"

namespace cudefrag::trace {

namespace pyframes {
struct RawFrame;
}

struct PythonStackOptions {
  // Receives the few once-only notes (the walk is unavailable or was turned off). Same type as
  // the recorder's MessageSink. nullptr: standard error.
  void (*messages)(std::string_view message) = nullptr;
  // Tests: decide as if the interpreter were this version instead of the one detected.
  std::optional<pyframes::Version> assume_version;
};

class PythonStacks {
 public:
  explicit PythonStacks(StringTable& strings, PythonStackOptions options = {});

  // Frames of the calling thread, innermost first (reserved fields 0). 0 when this is not a
  // Python thread, or when it does not hold the GIL and the walk is unavailable. With the C API
  // (only then) this may run Python's allocator and hence its garbage collector, which may free
  // objects and re-enter the recorder on this thread: the caller guards that.
  std::size_t capture(std::span<format::PythonFrame> out);

  // True when the Python C API was found in this process.
  bool available() const;

  // Where CPython's frame evaluation function (_PyEval_EvalFrameDefault) lies; empty when it is
  // not found. Python frames run in calls of it: the native frames of a thread from its innermost
  // call outward are the interpreter running the Python frames capture() reports (and whatever
  // called into Python), which is why the recorder may end the native frames there.
  CodeRange eval_loop() const;

  enum class Method { kUndecided, kWalk, kApi };
  // How frames are read; decided at the first capture on a thread with a Python thread state.
  Method method() const { return method_.load(std::memory_order_acquire); }

 private:
  void decide();
  std::size_t capture_walk(void* tstate, bool holds_gil, std::span<format::PythonFrame> out);
  std::size_t capture_api(void* tstate, std::span<format::PythonFrame> out);
  // File and function string ids of a code object, packed as the cache stores them.
  std::uint64_t names_of(void* code);                                             // C API, GIL held
  std::uint64_t names_read(const void* code, std::uint64_t key, bool holds_gil);  // walk
  // The line of a walked frame, cached by code object and instruction.
  std::int32_t line_for(const pyframes::RawFrame& frame, std::uint64_t code_key);
  // The walk's code objects and lines (at most `limit` frames were asked for) against the C
  // API's (GIL held).
  bool agrees_with_api(void* tstate, std::span<const pyframes::RawFrame> walked,
                       std::span<const format::PythonFrame> lines, std::size_t limit);
  void note(std::string_view message);

  StringTable& strings_;
  const PythonStackOptions options_;
  ConcurrentMap code_names_;  // code key -> names
  ConcurrentMap lines_;       // (code key, instruction) -> line; the walk only
  std::mutex mutex_;          // serialises inserts into both
  std::once_flag decided_;
  std::atomic<Method> method_{Method::kUndecided};
  pyframes::Layout layout_;              // set before method_ becomes kWalk
  std::atomic<bool> checked_{false};     // the one comparison with the C API is claimed
  std::atomic<bool> noted_stop_{false};  // an inconsistent walk was reported
  const std::uint64_t instance_;         // owns the calling thread's frame cache, or not
};

}  // namespace cudefrag::trace
