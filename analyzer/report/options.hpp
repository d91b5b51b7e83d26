// The command line of `cudefrag report`.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>

namespace cudefrag::analyzer {

struct ReportOptions {
  std::string trace;
  std::optional<std::string> json;  // a file, or "-" for stdout (then no text report)
  std::optional<std::string> html;  // a file (the text or JSON on stdout is unchanged)
  std::optional<int> device;        // only this CUDA ordinal
  std::optional<double> from_s;     // seconds since the program started
  std::optional<double> to_s;
  std::optional<std::string> site;  // only allocations whose call site mentions this
  std::size_t top = 10;             // rows per table
  std::size_t buckets = 20;         // rows of the timeline
};

struct ParsedReportArgs {
  std::optional<ReportOptions> options;  // absent on error or --help
  bool help = false;
  std::string error;  // what is wrong with the command line
};

ParsedReportArgs parse_report_args(std::span<char* const> args);

extern const char* const kReportUsage;

}  // namespace cudefrag::analyzer
