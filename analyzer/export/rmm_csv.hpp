// --rmm-csv: the log RMM's logging_resource_adaptor writes, which RMM's replay benchmark
// (REPLAY_BENCHMARK, benchmarks/replay/replay.cpp) reads:
//
//   Thread,Time,Action,Pointer,Size,Stream
//   4242,00:00:01.100000,allocate,0x700108000000,268431360,0
//   4242,00:00:01.800000,free,0x700108000000,268431360,0
//
// Thread: the OS thread id. Time: wall clock, UTC, HH:MM:SS.microseconds (the replay ignores
// it). Action: allocate or free. Pointer: hex. Size: the bytes the program asked for; a free
// repeats its allocation's size, as RMM's deallocate receives it. Stream: as RMM prints a
// stream handle (0 for the default stream, else hex).
//
// Every free row has its allocate row before it: frees of memory allocated before the range
// (or before the trace) and failed requests are left out, which RMM's log parser would reject
// or the replay could not serve. An allocation whose free record was lost is freed just before
// its address is handed out again.
#pragma once

#include <cstdio>

#include "analyzer/export/sink.hpp"

namespace cudefrag::analyzer {

class RmmCsvSink : public ExportSink {
 public:
  explicit RmmCsvSink(std::FILE* out);

  void allocated(const ExportContext& c, const Block& b, std::uint64_t t) override;
  void freed(const ExportContext& c, const Block& b, bool replaced, std::uint64_t t) override;
  bool finish(const ExportContext& c, std::uint64_t t) override;

 private:
  void row(const ExportContext& c, const Block& b, const char* action, std::uint64_t t);

  std::FILE* out_;
  bool failed_ = false;
};

}  // namespace cudefrag::analyzer
