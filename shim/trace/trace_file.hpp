// Opening the trace file: "%p" expansion, and never writing over a trace that another live
// process is writing. Each recorder holds an exclusive flock on its file for as long as it is
// open (the kernel drops it when the process dies); a process that finds the configured path
// locked (a forked child, or a second program started with the same setting) writes
// "<path>.<pid>" instead.
#pragma once

#include <string>
#include <string_view>

namespace cudefrag::trace {

struct OpenedFile {
  int fd = -1;        // -1 on failure
  std::string path;   // the file opened
  std::string error;  // on failure: what went wrong, naming the path
};

// "%p" -> process id, "%%" -> "%".
std::string expand_trace_path(std::string_view pattern);

// Opens (creates, truncates) the trace file for writing, close-on-exec.
OpenedFile open_trace_file(std::string_view pattern);

}  // namespace cudefrag::trace
