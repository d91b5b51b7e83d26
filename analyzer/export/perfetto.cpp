#include "analyzer/export/perfetto.hpp"

#include <cinttypes>

#include "analyzer/export/json_line.hpp"
#include "analyzer/report/text_units.hpp"

namespace cudefrag::analyzer {
namespace {

std::string gpu(std::int16_t device) {
  return device >= 0 ? "GPU " + std::to_string(device) : std::string("GPU ?");
}

std::int64_t since_start(const ExportContext& c, std::uint64_t t) {
  return static_cast<std::int64_t>(t - c.start_ns);
}

}  // namespace

void PerfettoSink::event(const std::string& json) {
  const std::string line = (first_ ? "{\"traceEvents\":[\n" : ",\n") + json;
  first_ = false;
  if (std::fwrite(line.data(), 1, line.size(), out_) != line.size()) failed_ = true;
}

void PerfettoSink::begin(const ExportContext& c) {
  if (begun_) return;
  begun_ = true;
  pid_ = c.process.pid;
  std::string name = c.process.program.empty() ? "program" : c.process.program;
  if (!c.process.command_line.empty()) {
    name.clear();
    for (const std::string& arg : c.process.command_line) {
      name += (name.empty() ? "" : " ") + arg;
    }
  }
  event(JsonLine()
            .field("ph", "M")
            .field("name", "process_name")
            .field("pid", std::uint64_t{pid_})
            .field("tid", 0)
            .object("args", JsonLine().field("name", name + " (pid " + std::to_string(pid_) + ")"))
            .text());
}

void PerfettoSink::thread_name(const ExportContext& c, std::uint32_t thread) {
  begin(c);
  if (!threads_.insert(thread).second) return;
  const std::string name =
      thread == pid_ ? "main thread " + std::to_string(thread) : "thread " + std::to_string(thread);
  event(JsonLine()
            .field("ph", "M")
            .field("name", "thread_name")
            .field("pid", std::uint64_t{pid_})
            .field("tid", std::uint64_t{thread})
            .object("args", JsonLine().field("name", name))
            .text());
}

void PerfettoSink::counter(const ExportContext& c, const std::string& name, Series& s,
                           std::uint64_t value, std::uint64_t t) {
  if (s.written && s.value == value) return;
  s.written = true;
  s.value = value;
  begin(c);
  event(JsonLine()
            .field("ph", "C")
            .field("name", name)
            .field("pid", std::uint64_t{pid_})
            .micros("ts", since_start(c, t))
            .object("args", JsonLine().field("bytes", value))
            .text());
}

void PerfettoSink::memory_changed(const ExportContext& c, const DeviceMemory& d, std::uint64_t t) {
  DeviceSeries& s = devices_[d.device];
  const std::string name = gpu(d.device);
  counter(c, name + " live", s.live, d.live, t);
  if (d.has_arena_ranges) counter(c, name + " mapped", s.mapped, d.mapped.bytes(), t);
  if (d.has_physical) counter(c, name + " physical", s.physical, d.physical, t);
  if (d.has_physical || d.has_arena_ranges) {
    const std::uint64_t held = d.has_physical ? d.physical : d.mapped.bytes();
    counter(c, name + " cached", s.cached, held > d.live ? held - d.live : 0, t);
  }
}

void PerfettoSink::oom(const ExportContext& c, const format::OomRecord& r, std::uint64_t t) {
  thread_name(c, r.thread);
  // The call site as `cudefrag report` names it.
  StackTable& stacks = c.stacks;
  const SiteInfo site = stacks.site(stacks.stack_index(r.stack, r.entry));
  const std::string entry = stacks.entry_name(r.entry);
  const auto& s = r.state;
  event(JsonLine()
            .field("ph", "i")
            .field("s", "g")
            .field("name",
                   "OOM: " + entry + " of " + bytes_text(r.requested) + " on " + gpu(r.device))
            .field("cat", "oom")
            .field("pid", std::uint64_t{pid_})
            .field("tid", std::uint64_t{r.thread})
            .micros("ts", since_start(c, t))
            .object("args", JsonLine()
                                .field("device", static_cast<int>(r.device))
                                .field("entry_point", entry)
                                .field("requested", r.requested)
                                .field("result", static_cast<int>(r.result))
                                .field("stream", hex_text(r.stream))
                                .field("site", site.label)
                                .strings("frames", site.frames)
                                .field("live", s.live)
                                .field("mapped", s.mapped)
                                .field("cached", s.cached)
                                .field("physical", s.physical)
                                .field("limit", s.limit)
                                .field("largest_extent", s.largest_extent)
                                .field("driver_free", s.driver_free)
                                .field("driver_total", s.driver_total))
            .text());
}

void PerfettoSink::mark(const ExportContext& c, const Mark& m, std::uint64_t t) {
  thread_name(c, m.thread);
  event(JsonLine()
            .field("ph", "i")
            .field("s", "t")
            .field("name", m.text)
            .field("cat", "mark")
            .field("pid", std::uint64_t{pid_})
            .field("tid", std::uint64_t{m.thread})
            .micros("ts", since_start(c, t))
            .text());
}

bool PerfettoSink::finish(const ExportContext& c, std::uint64_t) {
  begin(c);
  const std::string tail =
      "\n],\n\"displayTimeUnit\":\"ms\",\n\"otherData\":{\"generator\":\"cudefrag export\"}}\n";
  if (std::fwrite(tail.data(), 1, tail.size(), out_) != tail.size()) failed_ = true;
  if (std::fflush(out_) != 0) failed_ = true;
  return !failed_;
}

}  // namespace cudefrag::analyzer
