#include "analyzer/export/rmm_csv.hpp"

#include <cinttypes>

namespace cudefrag::analyzer {

RmmCsvSink::RmmCsvSink(std::FILE* out) : out_(out) {
  if (std::fputs("Thread,Time,Action,Pointer,Size,Stream\n", out_) < 0) failed_ = true;
}

void RmmCsvSink::row(const ExportContext& c, const Block& b, const char* action, std::uint64_t t) {
  const std::int64_t us = c.wall_us(t);
  const std::int64_t in_day = ((us % 86'400'000'000) + 86'400'000'000) % 86'400'000'000;
  const std::int64_t seconds = in_day / 1'000'000;
  char stream[24] = "0";
  if (b.stream != 0) std::snprintf(stream, sizeof stream, "0x%" PRIx64, b.stream);
  if (std::fprintf(out_,
                   "%" PRIu32 ",%02" PRId64 ":%02" PRId64 ":%02" PRId64 ".%06" PRId64
                   ",%s,0x%" PRIx64 ",%" PRIu64 ",%s\n",
                   b.thread, seconds / 3600, seconds / 60 % 60, seconds % 60, in_day % 1'000'000,
                   action, b.address, b.requested, stream) < 0) {
    failed_ = true;
  }
}

void RmmCsvSink::allocated(const ExportContext& c, const Block& b, std::uint64_t t) {
  row(c, b, "allocate", t);
}

void RmmCsvSink::freed(const ExportContext& c, const Block& b, bool, std::uint64_t t) {
  if (b.exported) row(c, b, "free", t);
}

bool RmmCsvSink::finish(const ExportContext&, std::uint64_t) {
  if (std::fflush(out_) != 0) failed_ = true;
  return !failed_;
}

}  // namespace cudefrag::analyzer
