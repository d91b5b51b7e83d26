#include "analyzer/report/options.hpp"

#include <charconv>
#include <cmath>
#include <string_view>

namespace cudefrag::analyzer {
namespace {

template <typename T>
bool parse_number(std::string_view text, T& out) {
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, out);
  return ec == std::errc() && ptr == end;
}

bool parse_seconds(std::string_view text, double& out) {
  return parse_number(text, out) && std::isfinite(out) && out >= 0;
}

}  // namespace

const char* const kReportUsage =
    "usage: cudefrag report [options] TRACE\n"
    "\n"
    "Prints what a traced program did with GPU memory: peaks, fragmentation over time, every\n"
    "out-of-memory error with what held the memory, the call sites that held the most at the\n"
    "peak, the most frequent and the most short-lived allocations, and a size histogram.\n"
    "\n"
    "options:\n"
    "  --json FILE       also write the same numbers as JSON to FILE ('-': JSON on stdout only)\n"
    "  --html FILE       also write the report as one self-contained HTML page with charts\n"
    "  --device N        only CUDA device N\n"
    "  --from S          only events from S seconds after the program started\n"
    "  --to S            only events up to S seconds after the program started\n"
    "  --site TEXT       only allocations whose call site mentions TEXT (a function, file,\n"
    "                    module or entry point name; case-sensitive)\n"
    "  --top N           rows per table (default 10)\n"
    "  --buckets N       rows of the fragmentation timeline (default 20)\n"
    "\n"
    "Exit status: 0 when the report was printed (also for a truncated trace: a warning says\n"
    "where it ends), 2 for a bad command line or a trace that cannot be read, 1 when the\n"
    "output cannot be written.\n";

ParsedReportArgs parse_report_args(std::span<char* const> args) {
  ParsedReportArgs parsed;
  ReportOptions o;
  bool have_trace = false;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string_view a = args[i];
    if (a == "--help" || a == "-h") {
      parsed.help = true;
      return parsed;
    }
    const bool takes_value = a == "--json" || a == "--html" || a == "--device" || a == "--from" ||
                             a == "--to" || a == "--site" || a == "--top" || a == "--buckets";
    if (takes_value) {
      if (i + 1 >= args.size()) {
        parsed.error = std::string(a) + " needs a value";
        return parsed;
      }
      const std::string_view v = args[++i];
      bool ok = true;
      if (a == "--json") {
        ok = !v.empty();
        o.json = std::string(v);
      } else if (a == "--html") {
        if (v == "-") {
          parsed.error = "--html writes to a file: give its name ('-' is not supported)";
          return parsed;
        }
        ok = !v.empty();
        o.html = std::string(v);
      } else if (a == "--device") {
        int device = 0;
        ok = parse_number(v, device) && device >= -1 && device <= 32767;
        o.device = device;
      } else if (a == "--from") {
        double s = 0;
        ok = parse_seconds(v, s);
        o.from_s = s;
      } else if (a == "--to") {
        double s = 0;
        ok = parse_seconds(v, s);
        o.to_s = s;
      } else if (a == "--site") {
        ok = !v.empty();
        o.site = std::string(v);
      } else if (a == "--top") {
        ok = parse_number(v, o.top) && o.top >= 1 && o.top <= 10000;
      } else {
        ok = parse_number(v, o.buckets) && o.buckets >= 1 && o.buckets <= 1000;
      }
      if (!ok) {
        parsed.error = "invalid value '" + std::string(v) + "' for " + std::string(a);
        return parsed;
      }
    } else if (a.starts_with("-") && a != "-") {
      parsed.error = "unknown option '" + std::string(a) + "'";
      return parsed;
    } else if (have_trace) {
      parsed.error = "more than one trace given ('" + o.trace + "', '" + std::string(a) + "')";
      return parsed;
    } else {
      o.trace = std::string(a);
      have_trace = true;
    }
  }
  if (!have_trace) {
    parsed.error = "no trace given";
    return parsed;
  }
  if (o.html && o.json && *o.html == *o.json) {
    parsed.error = "--html and --json name the same file";
    return parsed;
  }
  if (o.from_s && o.to_s && *o.to_s < *o.from_s) {
    parsed.error = "--to must not be before --from";
    return parsed;
  }
  parsed.options = std::move(o);
  return parsed;
}

}  // namespace cudefrag::analyzer
