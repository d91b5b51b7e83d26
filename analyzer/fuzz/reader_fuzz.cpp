// libFuzzer target: any bytes, read as a trace file, must give records or a clear error, never
// a crash, a hang or an unbounded allocation (docs/fuzzing.md; run it with scripts/fuzz.sh).
//
// Each input goes through what `cudefrag trace-dump` and `cudefrag report` do with a file: the
// reader to its end, every record through the text printer and the replay, then the text and
// JSON reports. It is read twice: as it is (so that damage is caught by the checksums, as it
// would be in a real file) and with its checksums made right (checksums.hpp), so that
// mutations reach the decoder and the report. The file header's flags (no bit is defined yet and
// readers ignore them) pick one of a few report options, so that the device, time-range and
// call-site filters are fuzzed too.
//
// The reader takes a path: the bytes are written to a memfd and opened as /proc/self/fd/N.
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <span>
#include <string>
#include <vector>

#include "analyzer/fuzz/checksums.hpp"
#include "analyzer/read/reader.hpp"
#include "analyzer/read/text.hpp"
#include "analyzer/report/json_report.hpp"
#include "analyzer/report/replay.hpp"
#include "analyzer/report/text_report.hpp"

namespace cudefrag::analyzer::fuzz {
namespace {

[[noreturn]] void broken(const char* what) {
  std::fprintf(stderr, "reader_fuzz: %s\n", what);
  std::abort();
}

// One memfd for the whole run, rewritten for each input.
class MemFile {
 public:
  MemFile() : fd_(::memfd_create("reader_fuzz.trace", MFD_CLOEXEC)) {
    if (fd_ < 0) broken("memfd_create failed");
    path_ = "/proc/self/fd/" + std::to_string(fd_);
  }

  const std::string& write(std::span<const std::byte> bytes) {
    if (::ftruncate(fd_, 0) != 0) broken("ftruncate failed");
    std::size_t done = 0;
    while (done < bytes.size()) {
      const ssize_t n =
          ::pwrite(fd_, bytes.data() + done, bytes.size() - done, static_cast<off_t>(done));
      if (n <= 0) broken("pwrite failed");
      done += static_cast<std::size_t>(n);
    }
    return path_;
  }

 private:
  int fd_;
  std::string path_;
};

ReportOptions options_for(std::span<const std::byte> file, const std::string& path) {
  std::uint32_t flags = 0;
  if (file.size() >= sizeof(format::FileHeader)) {
    std::memcpy(&flags, file.data() + offsetof(format::FileHeader, flags), sizeof flags);
  }
  ReportOptions o;
  o.trace = path;
  switch (flags % 4) {
    case 1:
      o.device = 0;
      o.top = 3;
      o.buckets = 5;
      break;
    case 2:
      o.from_s = 0.001;
      o.to_s = 2.0;
      break;
    case 3:
      o.site = "main";
      o.buckets = 1;
      break;
    default:
      break;
  }
  return o;
}

// Keeps the optimizer from dropping the text that was built.
volatile std::size_t g_sink = 0;

void read_through(MemFile& file, std::span<const std::byte> bytes) {
  const std::string& path = file.write(bytes);
  TraceReader reader(path);
  RecordPrinter printer;
  Replay replay(options_for(bytes, path));
  Record record;
  while (reader.next(record)) {
    g_sink = g_sink + printer.line(record).size();
    replay.add(record);
  }
  switch (reader.ending()) {
    case Ending::kReading:
      broken("next() returned false but the reader says it is still reading");
    case Ending::kError:
      if (!reader.error() || reader.error()->message.empty()) broken("an error without a message");
      return;  // `cudefrag report` stops here with exit status 2
    case Ending::kTruncated:
      if (!reader.warning()) broken("a truncated trace without a warning");
      break;
    case Ending::kComplete:
    case Ending::kUnfinished:
      break;
  }
  if (reader.records_read() == 0) return;
  const ReportData data = replay.finish(reader);
  g_sink = g_sink + text_report(data).size() + json_report(data).size();
}

}  // namespace
}  // namespace cudefrag::analyzer::fuzz

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace cudefrag::analyzer::fuzz;
  static MemFile file;
  const auto bytes = std::as_bytes(std::span(data, size));
  read_through(file, bytes);

  std::vector<std::byte> fixed(bytes.begin(), bytes.end());
  if (fix_checksums(fixed)) read_through(file, fixed);
  return 0;
}
