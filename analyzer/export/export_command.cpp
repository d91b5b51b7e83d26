#include "analyzer/export/export_command.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "analyzer/export/export_options.hpp"
#include "analyzer/export/memory_viz.hpp"
#include "analyzer/export/perfetto.hpp"
#include "analyzer/export/rmm_csv.hpp"
#include "analyzer/read/reader.hpp"
#include "analyzer/report/options.hpp"
#include "analyzer/report/progress.hpp"

namespace cudefrag::analyzer {
namespace {

struct Output {
  std::string path;
  std::FILE* file = nullptr;
  bool is_stdout = false;
  bool regular = false;  // a regular file, which an error may remove (never /dev/null and kin)
};

// Closes the files; false (and a message) for the first that fails.
bool close_all(std::vector<Output>& outputs, std::FILE* err) {
  bool ok = true;
  for (Output& o : outputs) {
    if (o.is_stdout || o.file == nullptr) continue;
    if (std::fclose(o.file) != 0 && ok) {
      std::fprintf(err, "cudefrag export: cannot write '%s': %s\n", o.path.c_str(),
                   std::strerror(errno));
      ok = false;
    }
    o.file = nullptr;
  }
  return ok;
}

void remove_all(std::vector<Output>& outputs) {
  for (const Output& o : outputs) {
    if (o.regular) std::remove(o.path.c_str());
  }
}

}  // namespace

int export_main(std::span<char* const> args, std::FILE* out, std::FILE* err) {
  const ParsedExportArgs parsed = parse_export_args(args);
  if (const auto status = command_line_exit(parsed, "export", kExportUsage, out, err))
    return *status;
  const ExportOptions& options = *parsed.options;

  TraceReader reader(options.trace);
  if (reader.error()) {
    std::fprintf(err, "cudefrag export: error: %s\n", reader.error()->message.c_str());
    return kBadInput;
  }

  std::vector<Output> outputs;
  std::vector<std::unique_ptr<ExportSink>> sinks;
  const auto open = [&](const std::optional<std::string>& path) -> std::FILE* {
    if (!path) return nullptr;
    Output o;
    o.path = *path;
    o.is_stdout = *path == "-";
    o.file = o.is_stdout ? out : std::fopen(path->c_str(), "wb");
    if (o.file == nullptr) {
      std::fprintf(err, "cudefrag export: cannot write '%s': %s\n", path->c_str(),
                   std::strerror(errno));
      return nullptr;
    }
    struct stat st {};
    o.regular = !o.is_stdout && ::fstat(::fileno(o.file), &st) == 0 && S_ISREG(st.st_mode);
    outputs.push_back(o);
    return o.file;
  };
  bool opened = true;
  if (options.perfetto) {
    std::FILE* f = open(options.perfetto);
    opened = opened && f != nullptr;
    if (f != nullptr) sinks.push_back(std::make_unique<PerfettoSink>(f));
  }
  if (options.memory_viz) {
    std::FILE* f = open(options.memory_viz);
    opened = opened && f != nullptr;
    if (f != nullptr) sinks.push_back(std::make_unique<MemoryVizSink>(f));
  }
  if (options.rmm_csv) {
    std::FILE* f = open(options.rmm_csv);
    opened = opened && f != nullptr;
    if (f != nullptr) sinks.push_back(std::make_unique<RmmCsvSink>(f));
  }
  if (!opened) {
    close_all(outputs, err);
    remove_all(outputs);
    return kOutputFailed;
  }

  std::vector<ExportSink*> raw;
  for (const auto& s : sinks) raw.push_back(s.get());
  ExportPass pass(options.filter, raw);
  {
    Progress progress(err, file_size(options.trace));
    Record record;
    std::uint64_t offset = 0;
    while (reader.next(record, &offset)) {
      pass.add(record);
      progress.update(offset);
    }
  }
  if (reader.ending() == Ending::kError || reader.records_read() == 0) {
    if (reader.ending() == Ending::kError) {
      std::fprintf(err, "cudefrag export: error: %s\n",
                   reader.error() ? reader.error()->message.c_str() : "cannot read the trace");
    } else {
      std::fprintf(err, "cudefrag export: error: %s; nothing to export\n",
                   reader.warning() ? reader.warning()->message.c_str() : "no records");
    }
    sinks.clear();
    close_all(outputs, err);
    remove_all(outputs);
    return kBadInput;
  }
  if (reader.warning()) {
    std::fprintf(err, "cudefrag export: warning: %s; exported up to there\n",
                 reader.warning()->message.c_str());
  }
  const bool written = pass.finish();
  const int error = errno;
  if (!written) {
    bool named = false;
    for (const Output& o : outputs) {
      if (std::ferror(o.file) == 0) continue;
      std::fprintf(err, "cudefrag export: cannot write '%s': %s\n", o.path.c_str(),
                   std::strerror(error));
      named = true;
    }
    if (!named) {
      std::fprintf(err, "cudefrag export: cannot write a temporary file: %s\n",
                   std::strerror(error));
    }
  }
  sinks.clear();  // closes the memory-viz temporary files
  if (!close_all(outputs, err) || !written) return kOutputFailed;
  return 0;
}

}  // namespace cudefrag::analyzer
