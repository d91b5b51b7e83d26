// The records that open every trace: the process (pid, start times, program, command line),
// the shim's configuration, the entry point names, the GPUs and CUDA versions known at start.
#pragma once

#include <cstddef>
#include <span>
#include <string_view>
#include <vector>

#include "shim/trace/recorder.hpp"

namespace cudefrag::trace {

// Appends the opening records for `options` to `out`, one after another.
void append_header_records(const Options& options, std::vector<std::byte>& out);

// Appends one kDevice / kRuntime record.
void append_device_record(const GpuInfo& gpu, std::vector<std::byte>& out);
void append_runtime_record(int driver_version, int runtime_version, std::vector<std::byte>& out);

// Appends a record of a fixed part followed by text; the text is cut so the record fits.
void append_record(std::span<const std::byte> fixed, std::string_view text,
                   std::vector<std::byte>& out);

}  // namespace cudefrag::trace
