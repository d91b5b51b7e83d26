// The command line of `cudefrag export`. The trace and the filters (--device, --from, --to) are
// parsed by `cudefrag report`'s parser (report/options.hpp), so both commands read them alike.
#pragma once

#include <optional>
#include <span>
#include <string>

#include "analyzer/export/export_pass.hpp"

namespace cudefrag::analyzer {

struct ExportOptions {
  std::string trace;
  ExportFilter filter;
  std::optional<std::string> perfetto;  // a file, or "-" for stdout
  std::optional<std::string> memory_viz;
  std::optional<std::string> rmm_csv;
};

struct ParsedExportArgs {
  std::optional<ExportOptions> options;  // absent on error or --help
  bool help = false;
  std::string error;
};

ParsedExportArgs parse_export_args(std::span<char* const> args);

extern const char* const kExportUsage;

}  // namespace cudefrag::analyzer
