// Loaded by python_bench.py with ctypes.PyDLL (the GIL stays held, as in a Python program that
// allocates from C code without releasing it): records `count` allocations from one call site
// and returns the mean ns per record, measured here so ctypes' own cost is left out.
#include <chrono>
#include <cstdio>
#include <string>

#include "shim/trace/recorder.hpp"

extern "C" [[gnu::visibility("default")]] double bench_record(const char* path, const char* stacks,
                                                              long count, double* bytes_per_event) {
  using namespace cudefrag;
  trace::Options o;
  o.path = path;
  o.stacks = trace::parse_stack_mode(stacks).value_or(trace::StackMode::kNone);
  o.thread_buffer_bytes = std::size_t{256} << 20;
  auto r = trace::Recorder::open(o);
  if (!r || count <= 0) return -1;
  const auto start = std::chrono::steady_clock::now();
  for (long i = 0; i < count; ++i) {
    r->record_alloc({trace::EntryPoint{0},
                     DeviceOrdinal{0},
                     nullptr,
                     DevicePtr{static_cast<std::uintptr_t>(i + 1) << 21},
                     MiB(2),
                     MiB(2),
                     0,
                     {}});
  }
  const auto elapsed = std::chrono::steady_clock::now() - start;
  r->close();
  if (bytes_per_event != nullptr) {
    *bytes_per_event = static_cast<double>(r->stats().bytes_written) / static_cast<double>(count);
  }
  std::remove(r->path().c_str());
  return static_cast<double>(
             std::chrono::duration_cast<std::chrono::nanoseconds>(elapsed).count()) /
         static_cast<double>(count);
}
