// Every environment variable cudefrag reads, in one table, parsed in one place.
//
// The table (kOptions) is the single source for: the shim's parsing at start-up, the launcher's
// `run` options (each option names its flag) and their validation, and the configuration table in
// the documentation (`cudefrag config --markdown`). Adding a variable means adding one row here
// and one case in options.cpp.
//
// Parsing needs no heap and no C++ runtime beyond what a constructor of a preloaded library can
// count on: values land in fixed-size buffers, error messages too.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "shim/common/units.hpp"

namespace cudefrag::config {

enum class Mode : std::uint8_t { kArena, kPassthrough };
enum class LogLevel : std::uint8_t { kTrace, kDebug, kInfo, kWarn, kError, kOff };
enum class Stacks : std::uint8_t { kNone, kNative, kPython, kBoth };

std::string_view to_string(Mode m);
std::string_view to_string(LogLevel l);
std::string_view to_string(Stacks s);

// A path or other text value, held without allocating. Values that do not fit are rejected as
// invalid rather than truncated.
template <std::size_t N>
class FixedString {
 public:
  constexpr bool assign(std::string_view s) noexcept {
    if (s.size() >= N) return false;
    for (std::size_t i = 0; i < s.size(); ++i) data_[i] = s[i];
    data_[s.size()] = '\0';
    size_ = s.size();
    return true;
  }
  constexpr std::string_view view() const noexcept { return {data_.data(), size_}; }
  constexpr const char* c_str() const noexcept { return data_.data(); }
  constexpr bool empty() const noexcept { return size_ == 0; }

 private:
  std::array<char, N> data_{};
  std::size_t size_ = 0;
};

inline constexpr std::size_t kMaxPath = 4096;
using PathString = FixedString<kMaxPath>;

// Requests up to this size are packed into slabs of size classes (waste < 1/9 of the slot);
// larger ones get whole 2 MiB-granular handles, which wastes up to half of a 2.1 MiB request.
// 8 MiB keeps the rounding of the tensors PyTorch's cudaMallocAsync backend asks for most
// (weights and activations of 1-8 MiB) under 1/9; the arena supports up to 16 MiB.
inline constexpr Bytes kDefaultSmallMax = MiB(8);
inline constexpr Bytes kMaxSmallMax = MiB(16);

// Native frames a call stack keeps, innermost first. 64 hold a PyTorch allocation's frames from
// the allocator to the interpreter's loop, where native frames end when Python frames are
// recorded too; fewer cost less to unwind (about 10 ns a frame with libunwind's cache).
inline constexpr int kDefaultNativeFrames = 64;
inline constexpr int kMaxNativeFrames = 128;  // the recorder's capture buffer

// How far the arena grows with room to spare (arena::ArenaOptions::grow_percent): 200 held the
// shipped H200 traces, replayed 8 times over, at about twice their peak live bytes, where
// growing while the limit allowed reached 3.7-3.8 times on two of them and kept growing
// (docs/arena.md).
inline constexpr std::uint32_t kDefaultGrowPercent = 200;
inline constexpr std::uint32_t kMinGrowPercent = 100;  // below: more than is live, never less
inline constexpr std::uint32_t kMaxGrowPercent = 10000;

// What the shim runs with. Defaults here are the documented defaults in kOptions.
struct Config {
  Mode mode = Mode::kArena;
  LogLevel log_level = LogLevel::kWarn;
  PathString log_file;  // empty: stderr
  PathString trace;     // empty: no trace
  Bytes limit{0};       // 0: no limit
  bool hook_dlsym = true;
  PathString stats_file;  // set by the launcher; empty: none
  Stacks stacks = Stacks::kBoth;
  Bytes small_max = kDefaultSmallMax;                // requests up to this size share slab pages
  bool free_stacks = false;                          // frees carry call stacks too
  int native_frames = kDefaultNativeFrames;          // 1..kMaxNativeFrames
  std::uint32_t grow_percent = kDefaultGrowPercent;  // 0, or kMinGrowPercent..kMaxGrowPercent
};

enum class Option : std::uint8_t {
  kMode,
  kLogLevel,
  kLogFile,
  kTrace,
  kLimit,
  kHookDlsym,
  kStatsFile,
  kStacks,
  kSmallMax,
  kFreeStacks,
  kNativeFrames,
  kGrow,
};
inline constexpr std::size_t kOptionCount = 12;

enum class Kind : std::uint8_t { kChoice, kBool, kBytes, kText, kCount };

struct OptionSpec {
  Option id;
  std::string_view env;   // environment variable
  std::string_view flag;  // `cudefrag run` option taking a value; empty if none
  Kind kind;
  std::string_view default_text;              // as documented
  std::span<const std::string_view> choices;  // kChoice only
  std::string_view accepted;                  // accepted values, for messages and docs
  std::string_view help;
};

inline constexpr std::array<std::string_view, 2> kModeChoices{"arena", "passthrough"};
inline constexpr std::array<std::string_view, 6> kLogLevelChoices{"trace", "debug", "info",
                                                                  "warn",  "error", "off"};
inline constexpr std::array<std::string_view, 4> kStacksChoices{"none", "native", "python", "both"};

inline constexpr std::array<OptionSpec, kOptionCount> kOptions{{
    {Option::kMode, "CUDEFRAG_MODE", "--mode", Kind::kChoice, "arena", kModeChoices,
     "arena, passthrough",
     "arena: serve device allocations from the defragmenting arena (a device whose arena cannot "
     "start runs as passthrough and says so once). passthrough: forward every call to CUDA "
     "unchanged and only count it."},
    {Option::kLogLevel, "CUDEFRAG_LOG_LEVEL", "--log-level", Kind::kChoice, "warn",
     kLogLevelChoices, "trace, debug, info, warn, error, off",
     "Least severe message the shim writes."},
    {Option::kLogFile,
     "CUDEFRAG_LOG_FILE",
     "--log-file",
     Kind::kText,
     "stderr",
     {},
     "a file path (appended to)",
     "Where the shim's messages go. If the file cannot be opened, messages go to stderr and one "
     "message says why."},
    {Option::kTrace,
     "CUDEFRAG_TRACE",
     "--trace",
     Kind::kText,
     "empty (off)",
     {},
     "a file path; empty turns tracing off",
     "Write a trace of every allocation to this file, for `cudefrag report`."},
    {Option::kLimit,
     "CUDEFRAG_LIMIT",
     "--limit",
     Kind::kBytes,
     "0 (none)",
     {},
     "a size: 24GiB, 512MiB, 1.5GiB, 64K, or a byte count; KiB/MiB/GiB/TiB and K/M/G/T are "
     "powers of 1024, KB/MB/GB/TB powers of 1000; 0 or empty for no limit",
     "Most device memory the arena may hold per device."},
    {Option::kHookDlsym,
     "CUDEFRAG_HOOK_DLSYM",
     "",
     Kind::kBool,
     "1",
     {},
     "1, 0, true, false, yes, no, on, off",
     "Intercept dlsym() on a hand-opened libcuda.so.1 so that programs which look driver "
     "functions up themselves (the CUDA runtime, JAX) reach the shim. `cudefrag run "
     "--no-hook-dlsym` sets 0."},
    {Option::kStatsFile,
     "CUDEFRAG_STATS_FILE",
     "",
     Kind::kText,
     "empty (none)",
     {},
     "a file path",
     "Set by `cudefrag run`: the file the shim keeps its counters in."},
    {Option::kStacks, "CUDEFRAG_STACKS", "--stacks", Kind::kChoice, "both", kStacksChoices,
     "none, native, python, both",
     "Call stacks recorded with each traced allocation: native frames, Python frames (when the "
     "caller is Python), both, or none (cheapest). With both, native frames end where the Python "
     "interpreter runs the Python frames (native keeps them all)."},
    {Option::kSmallMax,
     "CUDEFRAG_SMALL_MAX",
     "--small-max",
     Kind::kBytes,
     "8MiB",
     {},
     "a size up to 16MiB (units as for --limit); 0: every request gets whole pages of its own",
     "Requests up to this size share 2-16 MiB slab pages in size classes (rounding waste under "
     "1/9 of the slot); larger ones get whole 2 MiB pages of their own."},
    {Option::kFreeStacks,
     "CUDEFRAG_FREE_STACKS",
     "--free-stacks",
     Kind::kBool,
     "0",
     {},
     "1, 0, true, false, yes, no, on, off",
     "Record call stacks with frees too, not only with allocations and out-of-memory errors. "
     "Off by default: no report uses them, and they doubled the trace's cost on a PyTorch "
     "program (docs/trace-format.md)."},
    {Option::kNativeFrames,
     "CUDEFRAG_NATIVE_FRAMES",
     "--native-frames",
     Kind::kCount,
     "64",
     {},
     "a whole number from 1 to 128",
     "Most native frames a call stack keeps, innermost (the allocator's side) first. Fewer cost "
     "less: unwinding is most of a native stack's cost, and the launcher's \"trace cost\" line "
     "says what a frame costs in the run."},
    {Option::kGrow,
     "CUDEFRAG_GROW",
     "--grow",
     Kind::kCount,
     "200",
     {},
     "0, or a whole number of percent from 100 to 10000",
     "How far the arena grows while the limit leaves room: it creates new memory only while what "
     "it holds stays within this percentage of the most that was live (or of what is live plus "
     "the request); past that, a request is first rebuilt from cached memory the GPU is done "
     "with or that was freed on the request's own stream (remapped, never waiting for the GPU). "
     "0: grow while the limit allows (fewest remaps, most memory held)."},
}};

constexpr const OptionSpec& spec(Option o) {
  return kOptions[static_cast<std::size_t>(o)];
}

// Parses `text` as the value of option `o` into `out`. False (and `out` unchanged for that
// option) when the value is not valid. Empty text means "the default".
bool parse_option(Option o, std::string_view text, Config& out) noexcept;

// Parses a size with units ("1.5GiB", "512MiB", "24G", "1000"). False on anything else,
// including values that do not fit in 64 bits.
bool parse_bytes(std::string_view text, Bytes& out) noexcept;

// Parses a boolean ("1", "0", "true", "false", "yes", "no", "on", "off"; any case).
bool parse_bool(std::string_view text, bool& out) noexcept;

// One message per bad value: names the variable (or flag) as `subject`, the value and the
// accepted values. Written into `buf` (always NUL-terminated); returns the message.
std::string_view format_invalid(const OptionSpec& o, std::string_view subject,
                                std::string_view value, std::span<char> buf) noexcept;

// The result of reading the whole table from an environment.
struct LoadResult {
  Config config;
  // Messages for bad values, one per bad variable. Any bad value means the shim runs in
  // passthrough mode (config.mode is then kPassthrough).
  std::array<std::array<char, 512>, kOptionCount> errors{};
  std::size_t error_count = 0;

  std::string_view error(std::size_t i) const noexcept { return errors[i].data(); }
};

// Where values come from: getenv for the shim, a map in the tests.
using EnvLookup = const char* (*)(const char* name, void* context);

LoadResult load(EnvLookup lookup, void* context) noexcept;
LoadResult load_from_environment() noexcept;

// The configuration table as Markdown, for the README.
std::string markdown_table();

}  // namespace cudefrag::config
