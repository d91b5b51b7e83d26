#include "launcher/summary.hpp"

#include <algorithm>
#include <array>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <filesystem>

namespace cudefrag::launcher {
namespace {

constexpr const char* kPrefix = "cudefrag: ";

__attribute__((format(printf, 1, 2))) std::string line(const char* format, ...) {
  std::array<char, 512> buf{};
  va_list args;
  va_start(args, format);
  std::vsnprintf(buf.data(), buf.size(), format, args);
  va_end(args);
  return std::string(kPrefix) + buf.data() + "\n";
}

const char* mode_name(stats::ReportedMode m) {
  switch (m) {
    case stats::ReportedMode::kArena:
      return "arena";
    case stats::ReportedMode::kPassthrough:
      return "passthrough";
    case stats::ReportedMode::kNone:
      break;
  }
  return "unknown";
}

}  // namespace

std::string format_bytes(std::uint64_t bytes) {
  constexpr std::array<const char*, 5> kUnits{"B", "KiB", "MiB", "GiB", "TiB"};
  if (bytes < 1024) return std::to_string(bytes) + " B";
  double value = static_cast<double>(bytes);
  std::size_t unit = 0;
  while (value >= 1024.0 && unit + 1 < kUnits.size()) {
    value /= 1024.0;
    ++unit;
  }
  std::array<char, 32> buf{};
  std::snprintf(buf.data(), buf.size(), "%.1f %s", value, kUnits[unit]);
  return buf.data();
}

std::string format_summary(const stats::StatsBlock* stats, const ProgramEnd& end,
                           const std::string& trace_path) {
  std::string s;
  if (end.signal != 0) {
    s += line("the program was killed by signal %d (%s)", end.signal, strsignal(end.signal));
  } else {
    s += line("the program exited with code %d", end.exit_code);
  }
  if (stats == nullptr) {
    s += line("no counters: the stats file could not be read");
    return s;
  }
  if (stats->attached == 0) {
    s += line("libcudefrag.so was never loaded (a static or setuid program?): nothing was counted");
    return s;
  }
  const stats::ReportedMode requested = stats->mode_requested;
  const stats::ReportedMode effective = stats->mode_effective;
  if (requested == effective) {
    s += line("mode: %s", mode_name(effective));
  } else if (stats->config_errors > 0) {
    s += line("mode: %s (a configuration value was not valid; see the messages above)",
              mode_name(effective));
  } else {
    s += line("mode: %s (%s was asked for)", mode_name(effective), mode_name(requested));
  }
  if (stats->attached > 1) s += line("processes counted: %u", stats->attached);

  bool any = false;
  const std::size_t entries = std::min<std::size_t>(stats->entry_count, stats::kMaxEntries);
  for (std::size_t i = 0; i < entries; ++i) {
    const stats::EntryCounters& e = stats->entries[i];
    if (e.calls == 0) continue;
    if (!any) {
      s += line("%-40s %10s %12s %8s", "entry point", "calls", "requested", "failed");
      any = true;
    }
    const std::string name(stats::entry_name(e));
    const std::string bytes = e.bytes > 0 ? format_bytes(e.bytes) : "";
    s += line("  %-38s %10llu %12s %8llu", name.c_str(), static_cast<unsigned long long>(e.calls),
              bytes.c_str(), static_cast<unsigned long long>(e.failures));
  }
  if (!any) s += line("no CUDA memory calls were made");

  for (std::size_t d = 0; d < stats::kMaxDevices; ++d) {
    const stats::DeviceCounters& c = stats->devices[d];
    if (c.peak_bytes == 0 && c.live_bytes == 0) continue;
    s += line("device %zu: peak live %s, still live at exit %s", d,
              format_bytes(c.peak_bytes).c_str(), format_bytes(c.live_bytes).c_str());
  }
  for (std::size_t d = 0; d < stats::kMaxDevices; ++d) {
    const stats::DeviceCounters& c = stats->devices[d];
    if (c.arena_peak_physical_bytes == 0) continue;
    // Physical memory is published after the arena's slow path; live bytes with every call.
    const std::uint64_t cached = c.arena_physical_bytes > c.arena_live_bytes
                                     ? c.arena_physical_bytes - c.arena_live_bytes
                                     : 0;
    s += line("device %zu arena: peak physical %s, held at exit %s (cached %s), stitches %llu", d,
              format_bytes(c.arena_peak_physical_bytes).c_str(),
              format_bytes(c.arena_physical_bytes).c_str(), format_bytes(cached).c_str(),
              static_cast<unsigned long long>(c.arena_stitches));
    if (c.arena_slow_allocations > 0) {
      // What growing and reshaping the arena cost the program's threads (creating, mapping,
      // waiting for streams): the part of its speed the caches do not hide.
      s += line("device %zu arena: %llu requests missed the caches, %.1f ms in slow paths", d,
                static_cast<unsigned long long>(c.arena_slow_allocations),
                static_cast<double>(c.arena_slow_ns) / 1e6);
    }
  }

  if (trace_path.empty()) {
    s += line("trace: off (--trace PATH records one)");
  } else if (std::error_code ec; !std::filesystem::exists(trace_path, ec)) {
    s += line("trace: %s was not written (see the shim's messages above)", trace_path.c_str());
  } else {
    s += line("trace: %s", trace_path.c_str());
    const stats::TraceCost& cost = stats->trace_cost;
    if (cost.timed_events > 0) {
      // Sampled by the shim (stats::TraceCost): the threads' time inside the recorder, not what
      // the run lost in all (the writer thread and caches are not in it).
      const double per_event_ns =
          static_cast<double>(cost.timed_ns) / static_cast<double>(cost.timed_events);
      s += line(
          "trace cost: %.2f us per traced allocation or free (%llu of about %llu timed), "
          "about %.3f s on the allocating threads",
          per_event_ns / 1000.0, static_cast<unsigned long long>(cost.timed_events),
          static_cast<unsigned long long>(cost.traced_events),
          per_event_ns * static_cast<double>(cost.traced_events) / 1e9);
      if (cost.captures > 0) {
        // Per capture: where the stack's time went. ns per native frame tells libunwind's
        // cached walk (about 10 ns a frame, docs/trace-format.md) from a slow one.
        const auto per = [&](std::uint64_t v) {
          return static_cast<double>(v) / static_cast<double>(cost.captures);
        };
        const double native_per_frame =
            cost.native_frames > 0
                ? static_cast<double>(cost.native_ns) / static_cast<double>(cost.native_frames)
                : 0.0;
        s += line(
            "  of a call stack: Python frames %.2f us (%.1f frames), native frames %.2f us "
            "(%.1f frames, %.0f ns a frame), stack table %.2f us",
            per(cost.python_ns) / 1000.0, per(cost.python_frames), per(cost.native_ns) / 1000.0,
            per(cost.native_frames), native_per_frame, per(cost.intern_ns) / 1000.0);
      }
    }
    s += line("analyze it with: cudefrag report %s", trace_path.c_str());
  }
  return s;
}

}  // namespace cudefrag::launcher
