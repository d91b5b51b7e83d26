// cudefrag_trace_dump TRACE: prints every record of a trace, one per line, then a summary line
// on stderr. Exit status: 0 for a complete or unfinished trace, 3 for a truncated one (all whole
// records printed), 1 for an error (records before it printed), 2 for bad usage.
#include <cstdio>
#include <string>

#include "analyzer/read/reader.hpp"
#include "analyzer/read/text.hpp"

int main(int argc, char** argv) {
  using namespace cudefrag::analyzer;
  if (argc != 2 || std::string(argv[1]) == "--help") {
    std::fprintf(stderr, "usage: %s TRACE\n", argv[0]);
    return 2;
  }
  TraceReader reader(argv[1]);
  RecordPrinter printer;
  Record record;
  while (reader.next(record)) std::printf("%s\n", printer.line(record).c_str());
  std::fflush(stdout);
  switch (reader.ending()) {
    case Ending::kComplete:
    case Ending::kUnfinished:
      std::fprintf(stderr, "%llu records in %llu blocks, %s\n",
                   static_cast<unsigned long long>(reader.records_read()),
                   static_cast<unsigned long long>(reader.blocks_read()),
                   reader.ending() == Ending::kComplete
                       ? "closed cleanly"
                       : "no end record (the program was killed or is still running)");
      return 0;
    case Ending::kTruncated:
      std::fprintf(stderr, "warning: %s\n", reader.warning()->message.c_str());
      return 3;
    case Ending::kError:
    case Ending::kReading:
      break;
  }
  std::fprintf(stderr, "error: %s\n", reader.error() ? reader.error()->message.c_str() : "?");
  return 1;
}
