// The trace recorder: what the hooks and the arena call on every allocation, free and arena
// event. The file it writes is described in docs/trace-format.md (layout: format.hpp).
//
// Contract:
// - record_* are thread-safe, never block on I/O and make no system call and no heap
//   allocation in the common case: they take a time stamp, capture the call stack when the
//   recorder's StackMode asks for one (the unwinding costs what docs/trace-format.md measures;
//   finding the id of a stack seen before is one hash lookup), and append a fixed-size record
//   to a per-thread buffer. A thread's first record allocates its buffer.
// - A background thread writes the buffers out at least every Options::flush_interval.
//   flush_sync() writes everything recorded so far, on the calling thread, before it returns;
//   record_oom() calls it, so the state at an out-of-memory error is on disk even if the program
//   dies right after. Data written is in the kernel's page cache: it survives the process being
//   killed, not a machine crash (no fsync).
// - If a thread's buffer stays full (the writer cannot keep up for several milliseconds), its
//   records are dropped and counted; the trace then holds a kDropped record.
// - Any failure (unwritable path, disk full, bad option) produces one message through
//   Options::messages and turns the recorder off; the program runs on, and record_* return at
//   once from then on.
// - Times: every event carries CLOCK_MONOTONIC ns. For a free, pass the time taken BEFORE the
//   memory went back to the allocator, and for an allocation the time AFTER it was obtained:
//   records of different threads reach the file in buffer order, and the reader orders a
//   free and a reuse of the same address by time.
// - record_* must not be called from a signal handler (request_signal_mark() may).
#pragma once

#include <time.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "shim/common/units.hpp"
#include "shim/trace/format.hpp"

namespace cudefrag::trace {

// Which call stacks each allocation, free and OOM records (CUDEFRAG_STACKS).
enum class StackMode : std::uint8_t { kNone = 0, kNative = 1, kPython = 2, kBoth = 3 };

// "none", "native", "python", "both"; nullopt for anything else.
std::optional<StackMode> parse_stack_mode(std::string_view text);
std::string_view to_string(StackMode mode);

// kAuto: libunwind (dlopen'ed) when it loads, else libgcc's _Unwind_Backtrace.
enum class NativeUnwinder : std::uint8_t { kAuto, kLibgcc };

// A CLOCK_MONOTONIC time in ns; 0 means "take the time now".
struct TimeNs {
  std::uint64_t value = 0;
  constexpr auto operator<=>(const TimeNs&) const = default;
};

// CLOCK_MONOTONIC through the vDSO: about 30 ns, no system call.
inline TimeNs now() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return TimeNs{static_cast<std::uint64_t>(ts.tv_sec) * 1'000'000'000u +
                static_cast<std::uint64_t>(ts.tv_nsec)};
}

// Index into Options::entry_points (the hooks' table of intercepted functions).
struct EntryPoint {
  std::uint16_t value = 0;
  constexpr auto operator<=>(const EntryPoint&) const = default;
};

struct GpuInfo {
  DeviceOrdinal ordinal;
  std::string name;
  std::array<std::uint8_t, 16> uuid{};
  Bytes total_memory;
};

// Receives the recorder's few messages (failures that turn tracing off). Default: stderr.
using MessageSink = void (*)(std::string_view message);

struct Options {
  // Trace file. "%p" is replaced by the process id. If another live process holds the file
  // (e.g. the parent of a forked child, or a second program started with the same setting),
  // this process writes "<path>.<pid>" instead.
  std::string path;
  StackMode stacks = StackMode::kNone;
  // Frees carry a stack too (with `stacks`); otherwise their stack id is 0, "not captured".
  // Allocations and out-of-memory errors always carry one.
  bool free_stacks = false;
  NativeUnwinder unwinder = NativeUnwinder::kAuto;
  int max_native_frames = 64;  // 1..128
  int max_python_frames = 64;  // 1..128

  // Written at the start of the trace.
  std::vector<std::pair<std::string, std::string>> config;  // the shim's configuration
  std::vector<std::string> entry_points;                    // names, indexed by EntryPoint
  std::vector<GpuInfo> gpus;                                // more may follow: record_device()
  int driver_version = 0;                                   // as cuDriverGetVersion
  int runtime_version = 0;                                  // as cudaRuntimeGetVersion

  std::chrono::milliseconds flush_interval{50};  // 1..100
  // Called on the writer thread every counters_interval; it would call record_counters(). For
  // the process-wide recorder it may run until the process exits: it must not use objects that
  // static destructors destroy.
  std::function<void()> poll_counters;
  std::chrono::milliseconds counters_interval{1000};

  std::size_t thread_buffer_bytes = std::size_t{256} << 10;  // per thread, power of two >= 128 KiB
  bool compress = true;   // zstd per block when libzstd.so.1 loads
  bool symbolize = true;  // dladdr + demangle of native frames on the writer thread
  // Process-wide recorder only: SIGUSR2 adds the mark "SIGUSR2" and flushes, when the program
  // has no handler of its own for it at the moment tracing starts.
  bool mark_on_sigusr2 = true;
  MessageSink messages = nullptr;
};

// An empty string when `options` are usable, otherwise what is wrong with them.
std::string validate(const Options& options);

struct AllocEvent {
  EntryPoint entry;
  DeviceOrdinal device;
  const void* stream = nullptr;
  DevicePtr address;
  Bytes requested;
  Bytes granted;
  int result = 0;  // cudaError_t / CUresult the program got
  TimeNs time;     // after the memory was obtained; 0: now
};

struct FreeEvent {
  EntryPoint entry;
  DeviceOrdinal device;
  const void* stream = nullptr;
  DevicePtr address;
  Bytes size;  // when known, else 0
  int result = 0;
  TimeNs time;  // before the memory was released; 0: now
};

using ArenaEventKind = format::ArenaEventKind;

// Field meanings per kind: format.hpp, ArenaEventKind.
struct ArenaEvent {
  ArenaEventKind kind = ArenaEventKind::kMap;
  DeviceOrdinal device;
  DevicePtr address;
  Bytes bytes;
  Bytes bytes2;
  std::uint32_t count = 0;
};

struct ArenaState {
  Bytes live;
  Bytes mapped;
  Bytes cached;
  Bytes physical;
  Bytes limit;
  Bytes largest_extent;
  Bytes driver_free;
  Bytes driver_total;
};

struct OomEvent {
  EntryPoint entry;
  DeviceOrdinal device;
  const void* stream = nullptr;
  Bytes requested;
  int result = 0;
  ArenaState state;
};

struct CountersEvent {
  DeviceOrdinal device;
  std::uint64_t live_allocations = 0;
  ArenaState state;
};

struct RecorderStats {
  std::uint64_t records_written = 0;
  std::uint64_t blocks_written = 0;
  std::uint64_t bytes_written = 0;  // file size, header included
  std::uint64_t records_dropped = 0;
  std::uint64_t stacks = 0;             // distinct stacks defined
  std::uint64_t stacks_not_stored = 0;  // captured but not stored: the stack table was full
};

// Where one stack capture spent its time: the Python frame walk, the native unwind and finding
// (or defining) the stack's id, with the frames each found. Measured only on request, for the
// calling thread's next capture (measure_next_capture()), so that a sampled event can say where
// a traced allocation's cost goes (the launcher's summary prints it) while every other capture
// pays nothing for it.
struct CaptureCost {
  bool measured = false;
  std::uint64_t python_ns = 0;
  std::uint64_t native_ns = 0;
  std::uint64_t intern_ns = 0;
  std::uint32_t python_frames = 0;
  std::uint32_t native_frames = 0;
};

// Asks for the calling thread's next stack capture (of any recorder) to be measured.
void measure_next_capture() noexcept;
// The measurement of the calling thread's last capture since measure_next_capture(), then
// forgets it; `measured` is false when no capture happened (stacks off, a free without a stack).
CaptureCost take_capture_cost() noexcept;

class Recorder {
 public:
  // Opens the file, writes the header block and starts the writer thread. On failure: one
  // message through options.messages and nullptr.
  static std::unique_ptr<Recorder> open(Options options);

  // close(), then frees everything.
  ~Recorder();
  Recorder(const Recorder&) = delete;
  Recorder& operator=(const Recorder&) = delete;

  // False once closed or after a failure.
  bool enabled() const;

  // These three capture the caller's stack: they stay out of line so that the number of the
  // recorder's own frames, left out of every stack, is fixed.
  [[gnu::noinline]] void record_alloc(const AllocEvent& event);
  [[gnu::noinline]] void record_free(const FreeEvent& event);
  // Records the failed request and the arena's state, then flush_sync().
  [[gnu::noinline]] void record_oom(const OomEvent& event);
  void record_arena_event(const ArenaEvent& event);
  void record_counters(const CountersEvent& event);
  // Text is cut at 4000 bytes.
  void record_mark(std::string_view text);
  void record_device(const GpuInfo& gpu);
  void record_runtime(int driver_version, int runtime_version);

  void flush_sync();
  // Writes what is buffered and an end record, stops the writer thread and closes the file.
  // Later record_* calls do nothing. Idempotent.
  void close();
  // Like close() but waits at most `patience` in all for the writer thread to finish and for a
  // write in progress: for process exit, when other threads may still run. A writer thread that
  // has not finished by then is detached and left running; the recorder must then never be
  // destroyed.
  void close_at_exit(std::chrono::milliseconds patience);

  // Async-signal-safe: asks the writer thread to add the mark "SIGUSR2" and to flush.
  void request_signal_mark();
  // In a forked child, for the parent's recorder: closes this copy's descriptors without
  // writing anything and turns it off. Only while the child has a single thread; the recorder
  // must then never be destroyed (its writer thread does not exist in the child).
  void abandon_after_fork();

  RecorderStats stats() const;
  // The file actually written (after %p expansion and the held-file fallback).
  const std::string& path() const;

 private:
  struct Impl;
  explicit Recorder(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// The process-wide recorder, the one the hooks and the arena use.
//
// configure() stores the options; nothing starts until the first call of recorder() (the first
// traced event), which opens the file and starts the writer thread. Until then, and when tracing
// is off or failed, recorder() returns nullptr, in one atomic load once settled.
// configure() with an empty path means "no tracing". configure() after the recorder started (or
// failed to) changes nothing and returns false.
// After fork(), the child starts its own recorder on its first event (a new file: see
// Options::path); records buffered in the parent stay the parent's. At process exit the
// recorder writes what is buffered and an end record (if the exit path runs library
// destructors at all: never rely on it, the writer flushes every flush_interval anyway).
// SIGUSR2, when the program has not set its own handler, adds a mark and flushes.
bool configure(Options options);
Recorder* recorder();

}  // namespace cudefrag::trace
