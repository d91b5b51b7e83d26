#include "analyzer/export/export_options.hpp"

#include <string_view>
#include <vector>

#include "analyzer/report/options.hpp"

namespace cudefrag::analyzer {

const char* const kExportUsage =
    "usage: cudefrag export TRACE [--perfetto FILE] [--memory-viz FILE] [--rmm-csv FILE]\n"
    "                             [--device N] [--from S] [--to S] [--until-oom]\n"
    "\n"
    "Writes a trace in the formats of other tools, all in one pass ('-': stdout, for one):\n"
    "  --perfetto FILE     Chrome trace-event JSON for ui.perfetto.dev and chrome://tracing:\n"
    "                      memory per device over time, OOMs and marks as instants\n"
    "  --memory-viz FILE   a PyTorch memory snapshot (pickle) for pytorch.org/memory_viz and\n"
    "                      torch.cuda._memory_viz: every allocation, and the segments at the end\n"
    "  --rmm-csv FILE      an RMM logging_resource_adaptor log, for RMM's replay benchmark\n"
    "\n"
    "filters (as for cudefrag report):\n"
    "  --device N          only CUDA device N\n"
    "  --from S            only events from S seconds after the program started\n"
    "  --to S              only events up to S seconds after the program started (the\n"
    "                      memory-viz segments show the memory at that time)\n"
    "  --until-oom         end at the first out-of-memory error: the memory when it failed\n"
    "\n"
    "Exit status: 0 when the outputs were written (also for a truncated trace: a warning says\n"
    "where it ends), 2 for a bad command line or a trace that cannot be read, 1 when an output\n"
    "cannot be written.\n";

ParsedExportArgs parse_export_args(std::span<char* const> args) {
  ParsedExportArgs parsed;
  ExportOptions o;
  // The export's own options are taken here; the rest goes to the report's parser.
  std::vector<char*> rest;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string_view a = args[i];
    if (a == "--help" || a == "-h") {
      parsed.help = true;
      return parsed;
    }
    std::optional<std::string>* output = a == "--perfetto"     ? &o.perfetto
                                         : a == "--memory-viz" ? &o.memory_viz
                                         : a == "--rmm-csv"    ? &o.rmm_csv
                                                               : nullptr;
    if (output != nullptr) {
      if (i + 1 >= args.size()) {
        parsed.error = std::string(a) + " needs a value";
        return parsed;
      }
      const std::string_view v = args[++i];
      if (v.empty()) {
        parsed.error = "invalid value '' for " + std::string(a);
        return parsed;
      }
      *output = std::string(v);
      continue;
    }
    if (a == "--until-oom") {
      o.filter.until_oom = true;
      continue;
    }
    // Only the trace and the filters go on: the report's other options mean nothing here.
    if (a == "--device" || a == "--from" || a == "--to") {
      rest.push_back(args[i]);
      if (i + 1 < args.size()) rest.push_back(args[++i]);
      continue;
    }
    if (a.starts_with("-") && a != "-") {
      parsed.error = "unknown option '" + std::string(a) + "'";
      return parsed;
    }
    rest.push_back(args[i]);
  }
  const ParsedReportArgs report = parse_report_args(rest);
  if (!report.options) {
    parsed.error = report.error;
    return parsed;
  }
  o.trace = report.options->trace;
  o.filter.device = report.options->device;
  o.filter.from_s = report.options->from_s;
  o.filter.to_s = report.options->to_s;
  if (!o.perfetto && !o.memory_viz && !o.rmm_csv) {
    parsed.error = "no output given (--perfetto, --memory-viz or --rmm-csv)";
    return parsed;
  }
  int to_stdout = 0;
  for (const auto* output : {&o.perfetto, &o.memory_viz, &o.rmm_csv}) {
    if (*output && **output == "-") ++to_stdout;
  }
  if (to_stdout > 1) {
    parsed.error = "only one output can go to stdout ('-')";
    return parsed;
  }
  parsed.options = std::move(o);
  return parsed;
}

}  // namespace cudefrag::analyzer
