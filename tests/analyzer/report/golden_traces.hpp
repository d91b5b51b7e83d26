// The golden traces of examples/traces/: small programs' worth of events with fixed times,
// threads, addresses and stacks, written through TraceBuilder. Regenerating them gives the same
// bytes, which the golden test checks.
#pragma once

#include <string>
#include <vector>

namespace cudefrag::analyzer::testing {

// A training-like run on one GPU with Python and native stacks, arena events, counters, marks
// and an out-of-memory error caused by fragmentation. Threads write out of time order.
void write_oom_trace(const std::string& path);
// Two GPUs, no stacks, no end record, dropped records; device 1 has no arena events.
void write_multi_device_trace(const std::string& path);
// Every golden input (the two above and the damaged files made from them) into `dir`.
// Returns the file names written.
std::vector<std::string> write_golden_traces(const std::string& dir);

}  // namespace cudefrag::analyzer::testing
