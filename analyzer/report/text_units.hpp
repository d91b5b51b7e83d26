// Numbers as the report prints them.
#pragma once

#include <cstdarg>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace cudefrag::analyzer {

struct DeviceReport;
struct ReportData;
struct SizeBucket;

// "0 B", "512 B", "1.5 KiB", "3.0 MiB", "24.0 GiB", "1.2 TiB".
std::string bytes_text(std::uint64_t bytes);

// Seconds with millisecond precision: "12.345".
std::string seconds_text(std::int64_t ns);

// "42%" (rounded); "-" when the whole is 0.
std::string percent_text(std::uint64_t part, std::uint64_t whole);

// A wall-clock time in ns since the epoch: "2026-11-28 13:47:05 UTC" ("?" when out of range).
std::string wall_clock(std::uint64_t ns);

// "0x7f2a00000000": an address or handle as the report and the exports show it.
std::string hex_text(std::uint64_t value);

// "1 allocation", "3 allocations".
std::string count_of(std::uint64_t n, const char* one, const char* many);

// "device 0 (NVIDIA H200)", or "device 0" when the trace did not name it.
std::string device_name(const DeviceReport& d);

// "2 map, 2 physical create": the device's arena events by kind, in the format's order; empty
// when there were none.
std::string arena_events_text(const DeviceReport& d);

// The size histogram as the text and HTML reports show it: a run of two or more empty buckets
// becomes one row covering their whole range, so that sizes from 2 B to 1 GiB do not take twenty
// rows of zeros. (The JSON report keeps every bucket.)
std::vector<SizeBucket> size_rows(const std::vector<SizeBucket>& buckets);

// "[1.0 MiB, 2.0 MiB)", "[1.0 GiB, ...)" for the last, unbounded bucket.
std::string size_range_text(const SizeBucket& b);

// The report's warnings about the trace itself (cut short, records lost or out of order, frees
// of unknown addresses), one sentence each; empty when there are none.
std::vector<std::string> report_warnings(const ReportData& d);

// vprintf into the end of `text`, whatever the length (for printf-like members of writers).
[[gnu::format(printf, 2, 0)]] void append_vformat(std::string& text, const char* format,
                                                  std::va_list args);

// A report being written: text appended piece by piece, taken whole at the end. The text, HTML
// and SVG writers build on it.
class TextBuffer {
 public:
  [[gnu::format(printf, 2, 3)]] void f(const char* format, ...) {
    va_list args;
    va_start(args, format);
    append_vformat(text_, format, args);
    va_end(args);
  }
  void s(std::string_view text) { text_ += text; }
  std::string take() { return std::move(text_); }

 protected:
  std::string text_;
};

}  // namespace cudefrag::analyzer
