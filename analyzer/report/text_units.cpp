#include "analyzer/report/text_units.hpp"

#include <time.h>

#include <cinttypes>
#include <cstdarg>
#include <cstdio>
#include <iterator>
#include <tuple>

#include "analyzer/report/report_data.hpp"

namespace cudefrag::analyzer {

std::string bytes_text(std::uint64_t bytes) {
  char text[32];
  if (bytes < 1024) {
    std::snprintf(text, sizeof text, "%" PRIu64 " B", bytes);
    return text;
  }
  static constexpr const char* kUnits[] = {"KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
  double value = static_cast<double>(bytes) / 1024;
  std::size_t unit = 0;
  while (value >= 1024 && unit + 1 < std::size(kUnits)) {
    value /= 1024;
    ++unit;
  }
  std::snprintf(text, sizeof text, "%.1f %s", value, kUnits[unit]);
  return text;
}

std::string seconds_text(std::int64_t ns) {
  char text[32];
  std::snprintf(text, sizeof text, "%.3f", static_cast<double>(ns) / 1e9);
  return text;
}

std::string percent_text(std::uint64_t part, std::uint64_t whole) {
  if (whole == 0) return "-";
  char text[16];
  std::snprintf(text, sizeof text, "%.0f%%",
                100.0 * static_cast<double>(part) / static_cast<double>(whole));
  return text;
}

std::string wall_clock(std::uint64_t ns) {
  const auto seconds = static_cast<time_t>(ns / 1'000'000'000u);
  tm utc{};
  if (gmtime_r(&seconds, &utc) == nullptr) return "?";
  char text[40];
  strftime(text, sizeof text, "%Y-%m-%d %H:%M:%S UTC", &utc);
  return text;
}

std::string hex_text(std::uint64_t value) {
  char text[24];
  std::snprintf(text, sizeof text, "0x%" PRIx64, value);
  return text;
}

std::string count_of(std::uint64_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

std::string device_name(const DeviceReport& d) {
  std::string name = "device " + std::to_string(d.device);
  if (!d.name.empty()) name += " (" + d.name + ")";
  return name;
}

void append_vformat(std::string& text, const char* format, std::va_list args) {
  std::va_list again;
  va_copy(again, args);
  char buffer[1024];
  const int n = std::vsnprintf(buffer, sizeof buffer, format, args);
  if (n >= 0 && static_cast<std::size_t>(n) < sizeof buffer) {
    text.append(buffer, static_cast<std::size_t>(n));
  } else if (n >= 0) {
    const std::size_t at = text.size();
    text.resize(at + static_cast<std::size_t>(n) + 1);
    std::vsnprintf(text.data() + at, static_cast<std::size_t>(n) + 1, format, again);
    text.pop_back();
  }
  va_end(again);
}

std::vector<std::string> report_warnings(const ReportData& d) {
  const EventCounts& c = d.counts;
  std::vector<std::string> notes;
  if (d.ending == "truncated") {
    notes.push_back("the trace is cut short; reported up to its last whole block (" + d.warning +
                    ")");
  } else if (d.ending == "unfinished") {
    notes.push_back("no end record: the program was killed, or is still running");
  }
  if (c.dropped_records != 0) {
    notes.push_back(count_of(c.dropped_records, "record was", "records were") +
                    " lost while tracing (the writer could not keep up): figures may be off");
  }
  if (c.late_records != 0) {
    notes.push_back(count_of(c.late_records, "record", "records") +
                    " arrived too far out of time order to be put in place; counted when read");
  }
  if (c.unknown_frees != 0) {
    notes.push_back(count_of(c.unknown_frees, "free", "frees") +
                    " of addresses never seen allocated (made before tracing started)");
  }
  if (c.replaced != 0) {
    notes.push_back(count_of(c.replaced, "allocation", "allocations") +
                    " at an address still live (its free was not recorded)");
  }
  return notes;
}

std::string arena_events_text(const DeviceReport& d) {
  // By format::ArenaEventKind.
  static constexpr const char* kKinds[] = {"?",
                                           "map",
                                           "unmap",
                                           "stitch",
                                           "cache release",
                                           "trim",
                                           "physical create",
                                           "physical release"};
  static_assert(std::size(kKinds) == std::tuple_size_v<decltype(d.arena_events)>);
  std::string text;
  for (std::size_t k = 1; k < d.arena_events.size(); ++k) {
    if (d.arena_events[k] == 0) continue;
    text += (text.empty() ? "" : ", ") + std::to_string(d.arena_events[k]) + " " + kKinds[k];
  }
  return text;
}

std::vector<SizeBucket> size_rows(const std::vector<SizeBucket>& buckets) {
  std::vector<SizeBucket> rows;
  for (std::size_t i = 0; i < buckets.size();) {
    std::size_t end = i;
    while (end < buckets.size() && buckets[end].allocations == 0) ++end;
    if (end - i >= 2) {
      rows.push_back(SizeBucket{buckets[i].from, buckets[end - 1].to, 0, 0});
      i = end;
    } else {
      rows.push_back(buckets[i]);
      ++i;
    }
  }
  return rows;
}

std::string size_range_text(const SizeBucket& b) {
  return "[" + bytes_text(b.from) + ", " + (b.to == 0 ? std::string("...") : bytes_text(b.to)) +
         ")";
}

}  // namespace cudefrag::analyzer
