// --perfetto: Chrome trace-event JSON, which ui.perfetto.dev and chrome://tracing open
// ({"traceEvents": [...]}, times in µs since the program started).
//
// - counters ("C"), per device: "GPU N live" (bytes handed to the program), and when the trace
//   says so, "GPU N mapped" (the arena's virtual ranges), "GPU N physical" (memory held from
//   the driver: arena events, samples, OOM records) and "GPU N cached" (physical, or else
//   mapped, minus live). One series each, so that Chrome does not stack them into a sum.
//   A value is written only when it changes.
// - instants ("i", global scope) for each out-of-memory error, with the request, its call site
//   and frames and the arena's state; marks as instants on their thread.
// - metadata ("M"): the process's and threads' names.
// One event per line, written as they come: memory does not grow with the trace.
#pragma once

#include <cstdio>
#include <map>
#include <set>
#include <string>

#include "analyzer/export/sink.hpp"

namespace cudefrag::analyzer {

class PerfettoSink : public ExportSink {
 public:
  explicit PerfettoSink(std::FILE* out) : out_(out) {}

  void memory_changed(const ExportContext& c, const DeviceMemory& d, std::uint64_t t) override;
  void oom(const ExportContext& c, const format::OomRecord& r, std::uint64_t t) override;
  void mark(const ExportContext& c, const Mark& m, std::uint64_t t) override;
  bool finish(const ExportContext& c, std::uint64_t t) override;

 private:
  struct Series {
    bool written = false;
    std::uint64_t value = 0;
  };
  struct DeviceSeries {
    Series live, mapped, physical, cached;
  };

  void event(const std::string& json);
  void begin(const ExportContext& c);
  void thread_name(const ExportContext& c, std::uint32_t thread);
  void counter(const ExportContext& c, const std::string& name, Series& s, std::uint64_t value,
               std::uint64_t t);

  std::FILE* out_;
  bool begun_ = false;
  bool first_ = true;
  bool failed_ = false;
  std::uint32_t pid_ = 0;
  std::map<std::int16_t, DeviceSeries> devices_;
  std::set<std::uint32_t> threads_;
};

}  // namespace cudefrag::analyzer
