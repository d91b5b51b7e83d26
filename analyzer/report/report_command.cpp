#include "analyzer/report/report_command.hpp"

#include <cerrno>
#include <cstring>
#include <string>

#include "analyzer/read/reader.hpp"
#include "analyzer/report/html_report.hpp"
#include "analyzer/report/json_report.hpp"
#include "analyzer/report/options.hpp"
#include "analyzer/report/progress.hpp"
#include "analyzer/report/record_pipe.hpp"
#include "analyzer/report/replay.hpp"
#include "analyzer/report/text_report.hpp"
#include "launcher/commands.hpp"

namespace cudefrag::analyzer {
namespace {

bool write_all(std::FILE* out, const std::string& text) {
  return std::fwrite(text.data(), 1, text.size(), out) == text.size() && std::fflush(out) == 0;
}

// Writes `text` to the file at `path`; false (with a message on `err`) when it cannot.
bool write_file(const std::string& path, const std::string& text, std::FILE* err) {
  std::FILE* file = std::fopen(path.c_str(), "w");
  const bool ok = file != nullptr && write_all(file, text);
  const int error = errno;
  if (file != nullptr && std::fclose(file) != 0) {
    std::fprintf(err, "cudefrag report: cannot write '%s': %s\n", path.c_str(),
                 std::strerror(errno));
    return false;
  }
  if (!ok) {
    std::fprintf(err, "cudefrag report: cannot write '%s': %s\n", path.c_str(),
                 std::strerror(error));
  }
  return ok;
}

}  // namespace

int report_main(std::span<char* const> args, std::FILE* out, std::FILE* err) {
  const ParsedReportArgs parsed = parse_report_args(args);
  if (const auto status = command_line_exit(parsed, "report", kReportUsage, out, err))
    return *status;
  const ReportOptions& options = *parsed.options;

  TraceReader reader(options.trace);
  Replay replay(options);
  {
    Progress progress(err, file_size(options.trace));
    RecordPipe pipe(reader);
    while (RecordPipe::Batch* batch = pipe.next()) {
      batch->for_each([&](Record& r) { replay.add(r); }, [&](const Event& e) { replay.add(e); });
      progress.update(batch->offset);
    }
  }
  if (reader.ending() == Ending::kError) {
    std::fprintf(err, "cudefrag report: error: %s\n",
                 reader.error() ? reader.error()->message.c_str() : "cannot read the trace");
    return kBadInput;
  }
  if (reader.records_read() == 0) {
    std::fprintf(err, "cudefrag report: error: %s; nothing to report\n",
                 reader.warning() ? reader.warning()->message.c_str() : "no records");
    return kBadInput;
  }
  if (reader.warning()) {
    std::fprintf(err, "cudefrag report: warning: %s\n", reader.warning()->message.c_str());
  }
  const ReportData data = replay.finish(reader);

  const bool json_only = options.json && *options.json == "-";
  if (!json_only && !write_all(out, text_report(data))) {
    std::fprintf(err, "cudefrag report: cannot write the report: %s\n", std::strerror(errno));
    return kOutputFailed;
  }
  if (options.json) {
    const std::string json = json_report(data);
    if (json_only) {
      if (!write_all(out, json)) {
        std::fprintf(err, "cudefrag report: cannot write the JSON: %s\n", std::strerror(errno));
        return kOutputFailed;
      }
    } else if (!write_file(*options.json, json, err)) {
      return kOutputFailed;
    }
  }
  if (options.html && !write_file(*options.html, html_report(data), err)) {
    return kOutputFailed;
  }
  return 0;
}

}  // namespace cudefrag::analyzer

namespace cudefrag::launcher {

int report_command(std::span<char* const> args) {
  return analyzer::report_main(args, stdout, stderr);
}

}  // namespace cudefrag::launcher
