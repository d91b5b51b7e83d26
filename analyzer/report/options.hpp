// The command line of `cudefrag report`.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
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

// Exit statuses of `cudefrag report` and `cudefrag export` (both usage texts state them).
inline constexpr int kOutputFailed = 1;
inline constexpr int kBadInput = 2;

// How `cudefrag report` and `cudefrag export` answer their parsed command line (`parsed`, a
// ParsedReportArgs or a ParsedExportArgs) before doing anything: for --help, `usage` on `out` and
// exit status 0; for a bad command line, "cudefrag COMMAND: ERROR", a blank line and `usage` on
// `err`, and kBadInput. nullopt when `parsed.options` holds the options and the command goes on.
template <typename Parsed>
std::optional<int> command_line_exit(const Parsed& parsed, const char* command, const char* usage,
                                     std::FILE* out, std::FILE* err) {
  if (parsed.help) {
    std::fputs(usage, out);
    return 0;
  }
  if (!parsed.options) {
    std::fprintf(err, "cudefrag %s: %s\n\n%s", command, parsed.error.c_str(), usage);
    return kBadInput;
  }
  return std::nullopt;
}

}  // namespace cudefrag::analyzer
