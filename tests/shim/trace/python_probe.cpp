// A small library that python3 loads with ctypes in python_stack_test: it records allocations
// through a recorder of its own, as the hooks would inside a Python program.
#include <memory>
#include <string>

#include "shim/trace/recorder.hpp"

namespace {
std::unique_ptr<cudefrag::trace::Recorder> g_recorder;
}

extern "C" [[gnu::visibility("default")]] int probe_start(const char* path, const char* stacks) {
  cudefrag::trace::Options o;
  o.path = path;
  o.stacks = cudefrag::trace::parse_stack_mode(stacks).value_or(cudefrag::trace::StackMode::kNone);
  g_recorder = cudefrag::trace::Recorder::open(o);
  return g_recorder ? 0 : 1;
}

extern "C" [[gnu::visibility("default")]] void probe_alloc(unsigned long address) {
  if (g_recorder) {
    g_recorder->record_alloc({cudefrag::trace::EntryPoint{0},
                              cudefrag::DeviceOrdinal{0},
                              nullptr,
                              cudefrag::DevicePtr{address},
                              cudefrag::Bytes{1},
                              cudefrag::Bytes{1},
                              0,
                              {}});
  }
}

extern "C" [[gnu::visibility("default")]] void probe_stop() {
  g_recorder.reset();
}

// For the process-wide recorder (cudefrag_mark through ctypes.CDLL(None)).
extern "C" [[gnu::visibility("default")]] void probe_configure(const char* path) {
  cudefrag::trace::Options o;
  o.path = path;
  cudefrag::trace::configure(o);
}
