// The counters the shim keeps for the launcher, as one fixed binary layout.
//
// `cudefrag run` creates and sizes a file with this layout and passes its path in
// CUDEFRAG_STATS_FILE; the shim maps it MAP_SHARED and updates the counters in place with atomic
// operations. The launcher reads them after the program ends, however it ended: nothing depends on
// the program's exit path (PyTorch's can swallow output printed at exit). Several processes (a
// program and the children it forks or execs) may share one file; their counts add up.
//
// Versioned: a reader rejects a file whose magic, version or size it does not know.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>

namespace cudefrag::stats {

inline constexpr std::array<char, 8> kMagic{'C', 'U', 'D', 'F', 'S', 'T', 'A', 'T'};
inline constexpr std::uint32_t kVersion = 4;
inline constexpr std::size_t kMaxEntries = 64;
inline constexpr std::size_t kMaxDevices = 32;
inline constexpr std::size_t kNameSize = 48;
inline constexpr std::size_t kPathSize = 1024;

// config::Mode + 1, so that 0 means "no process reported".
enum class ReportedMode : std::uint32_t { kNone = 0, kArena = 1, kPassthrough = 2 };

struct EntryCounters {
  std::array<char, kNameSize> name;  // NUL-terminated entry point name
  std::uint64_t calls;
  std::uint64_t bytes;  // bytes requested, allocation entry points only
  std::uint64_t failures;
};

struct DeviceCounters {
  std::uint64_t live_bytes;  // allocations seen to succeed and not yet freed
  std::uint64_t peak_bytes;
  // Arena mode: what the device's arena holds. Physical memory, stitches and the slow-path
  // count and time are updated after a slow path changed what the arena maps (one that changed
  // nothing is counted with the next that does); live bytes (granted) with every allocation and
  // free it serves, so that physical - live is what it keeps cached.
  std::uint64_t arena_physical_bytes;
  std::uint64_t arena_peak_physical_bytes;
  std::uint64_t arena_live_bytes;
  std::uint64_t arena_stitches;
  std::uint64_t arena_slow_allocations;  // requests that missed the arena's caches
  std::uint64_t arena_slow_ns;           // time in slow allocations and trims
};

// What recording the trace cost the threads that allocate and free: every 64th traced allocation
// or free of each thread is timed (two clock reads), so the cost per event is timed_ns /
// timed_events, and the run's total that times the traced calls.
// The timed events that captured a stack also say where the capture's time went
// (trace::CaptureCost, added up over `captures`): the Python frame walk, the native unwind (and
// the frames each found: the unwind's cost per frame tells a cached walk from a slow one) and
// the stack table.
struct TraceCost {
  std::uint64_t traced_events;  // allocations and frees handed to the recorder
  std::uint64_t timed_events;
  std::uint64_t timed_ns;
  std::uint64_t captures;  // timed events that captured a stack
  std::uint64_t python_ns;
  std::uint64_t native_ns;
  std::uint64_t intern_ns;
  std::uint64_t python_frames;
  std::uint64_t native_frames;
};

struct StatsBlock {
  std::array<char, 8> magic;
  std::uint32_t version;
  std::uint32_t size;         // sizeof(StatsBlock) of the writer
  std::uint32_t entry_count;  // entries in use, written by the shim
  std::uint32_t attached;     // processes that mapped this file
  ReportedMode mode_requested;
  ReportedMode mode_effective;
  std::uint32_t config_errors;  // bad configuration values seen (each forces passthrough)
  std::uint32_t reserved;
  std::array<char, kPathSize> trace_path;  // empty: no trace
  std::array<EntryCounters, kMaxEntries> entries;
  std::array<DeviceCounters, kMaxDevices> devices;
  TraceCost trace_cost;
};
static_assert(std::is_trivially_copyable_v<StatsBlock> && std::is_standard_layout_v<StatsBlock>);
static_assert(std::atomic_ref<std::uint64_t>::is_always_lock_free &&
                  std::atomic_ref<std::uint32_t>::is_always_lock_free,
              "shared-memory counters must be lock-free to be address-free");
static_assert(alignof(StatsBlock) >= std::atomic_ref<std::uint64_t>::required_alignment);

// Counter updates, safe across threads and across processes sharing the mapping.
inline void add(std::uint64_t& counter, std::uint64_t n) noexcept {
  std::atomic_ref(counter).fetch_add(n, std::memory_order_relaxed);
}
inline void add(std::uint32_t& counter, std::uint32_t n) noexcept {
  std::atomic_ref(counter).fetch_add(n, std::memory_order_relaxed);
}
inline std::uint64_t load(std::uint64_t& counter) noexcept {
  return std::atomic_ref(counter).load(std::memory_order_relaxed);
}
// Adds `n` to live and raises peak to the new live value if that is higher.
void add_live(DeviceCounters& d, std::uint64_t n) noexcept;
void sub_live(DeviceCounters& d, std::uint64_t n) noexcept;

// A zeroed block with magic, version and size set.
void initialize(StatsBlock& block) noexcept;

// Whether `block` has the magic, version and size of this build.
bool valid(const StatsBlock& block) noexcept;

// Launcher side: creates (or truncates) the file at `path`, sized and initialised. False with a
// reason in `error` on failure.
bool create_file(const std::string& path, std::string& error);

// Launcher side: reads the file into `out`. False with a reason on failure or a foreign layout.
bool read_file(const std::string& path, StatsBlock& out, std::string& error);

// Shim side: maps an existing, initialised file read-write and shared. Null with a reason in
// `why` (a static string) when it cannot. Never creates the file. The mapping is never removed.
StatsBlock* map_file(const char* path, const char** why) noexcept;

// The name stored in an entry, as a view.
std::string_view entry_name(const EntryCounters& e) noexcept;

}  // namespace cudefrag::stats
