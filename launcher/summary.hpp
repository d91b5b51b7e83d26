// The end-of-run summary `cudefrag run` prints to stderr: how the program ended, the mode, calls
// per entry point, peak live bytes per device, and where the trace went. Built from the stats
// file the shim kept, so it does not depend on the program's exit path.
#pragma once

#include <string>

#include "shim/hooks/stats_file.hpp"

namespace cudefrag::launcher {

struct ProgramEnd {
  int exit_code = 0;  // when it exited
  int signal = 0;     // non-zero when a signal ended it
};

// `stats` is null when no counters could be read.
std::string format_summary(const stats::StatsBlock* stats, const ProgramEnd& end,
                           const std::string& trace_path);

// "0 B", "512 B", "1.5 KiB", "3.0 MiB", "24.0 GiB".
std::string format_bytes(std::uint64_t bytes);

}  // namespace cudefrag::launcher
