#include "analyzer/report/text_report.hpp"

#include <time.h>

#include <algorithm>
#include <cinttypes>
#include <cstdarg>
#include <cstdio>

#include "analyzer/read/text.hpp"
#include "analyzer/report/text_units.hpp"

namespace cudefrag::analyzer {
namespace {

constexpr std::size_t kFramesShown = 4;  // the call site and the three frames that called it
constexpr std::size_t kBarWidth = 30;
constexpr std::size_t kMarksShown = 20;

using Out = TextBuffer;

// Words of `text` in lines of at most `width` columns, every line after the first indented by
// `indent` spaces; a newline ends the last line.
std::string wrapped(const std::string& text, std::size_t indent, std::size_t width) {
  std::string out;
  std::size_t column = indent;
  std::size_t at = 0;
  while (at < text.size()) {
    std::size_t end = text.find(' ', at);
    if (end == std::string::npos) end = text.size();
    const std::size_t word = end - at;
    if (column > indent && column + 1 + word > width) {
      out += "\n" + std::string(indent, ' ');
      column = indent;
    } else if (column > indent) {
      out += ' ';
      ++column;
    }
    out.append(text, at, word);
    column += word;
    at = end + 1;
  }
  return out + "\n";
}

// The rows of a site table end with the call site and the frames that called it, indented
// under it.
void site_lines(Out& out, const SiteRow& row, std::size_t indent) {
  out.s(row.site + "\n");
  for (std::size_t i = 1; i < row.frames.size() && i < kFramesShown; ++i) {
    out.f("%*s  at %s\n", static_cast<int>(indent), "", row.frames[i].c_str());
  }
}

std::string spark(std::uint64_t value, std::uint64_t max) {
  static constexpr const char* kLevels[] = {"▁", "▂", "▃", "▄", "▅", "▆", "▇", "█"};
  if (value == 0 || max == 0) return " ";
  // Clamped before the cast: with --site the scale is the filtered live peak, and the physical
  // line can exceed it by any factor (a float-to-integer overflow, found by the fuzzer).
  const double ratio = std::min(static_cast<double>(value) / static_cast<double>(max), 1.0);
  return kLevels[std::min<std::size_t>(static_cast<std::size_t>(ratio * 7.999), 7)];
}

void run_section(Out& out, const ReportData& d) {
  const ProcessInfo& p = d.process;
  out.s("Run\n");
  out.f("  program       %s\n", p.program.empty() ? "?" : p.program.c_str());
  std::string args;
  for (const std::string& a : p.command_line) args += (args.empty() ? "" : " ") + a;
  if (!args.empty()) out.f("  command line  %s\n", args.c_str());
  static constexpr const char* kStackModes[] = {"none", "native", "python", "native+python"};
  std::string unwinder;
  for (const ConfigEntry& c : d.config) {
    if (c.key == "unwinder") unwinder = " (native frames by " + c.value + ")";
  }
  out.f("  pid           %" PRIu32 ", started %s, call stacks: %s%s\n", p.pid,
        wall_clock(p.start_wall_ns).c_str(), p.stack_mode < 4 ? kStackModes[p.stack_mode] : "?",
        unwinder.c_str());
  for (std::size_t i = 0; i < d.gpus.size(); ++i) {
    const DeviceInfo& g = d.gpus[i];
    out.f("  %-13s %d: %s, %s\n", i == 0 ? "GPUs" : "", g.ordinal, g.name.c_str(),
          bytes_text(g.total_memory).c_str());
  }
  if (d.runtime) {
    out.f("  CUDA          driver %d, runtime %d\n", d.runtime->driver_version,
          d.runtime->runtime_version);
  }
  if (d.has_events) {
    out.f("  duration      %s s (program start to last event; events from %s s)\n",
          seconds_text(d.last_ns).c_str(), seconds_text(d.first_ns).c_str());
  }
  const EventCounts& c = d.counts;
  out.f("  events        %s, %s, %s\n",
        count_of(c.allocations, "allocation", "allocations").c_str(),
        count_of(c.frees, "free", "frees").c_str(),
        count_of(c.failed_allocations, "failed allocation", "failed allocations").c_str());
  out.f("                %s, %s, %s, %s\n",
        count_of(c.ooms, "out-of-memory error", "out-of-memory errors").c_str(),
        count_of(c.arena_events, "arena event", "arena events").c_str(),
        count_of(c.counters, "counter sample", "counter samples").c_str(),
        count_of(c.marks, "mark", "marks").c_str());
  for (std::size_t i = 0; i < d.entries.size(); ++i) {
    const EntryUse& e = d.entries[i];
    out.f("  %-13s %-18s %s, %s", i == 0 ? "entry points" : "", e.name.c_str(),
          count_of(e.allocations, "allocation", "allocations").c_str(),
          count_of(e.frees, "free", "frees").c_str());
    if (e.ooms != 0)
      out.f(", %s", count_of(e.ooms, "out-of-memory error", "out-of-memory errors").c_str());
    out.s("\n");
  }
  const ReportOptions& o = d.options;
  if (o.device || o.from_s || o.to_s || o.site) {
    std::string filters;
    if (o.device) filters += "device " + std::to_string(*o.device) + ", ";
    filters +=
        "from " + seconds_text(d.range_from_ns) + " s to " + seconds_text(d.range_to_ns) + " s";
    if (o.site) filters += ", call sites mentioning " + quoted(*o.site);
    out.f("  filters       %s\n", filters.c_str());
  }
  const std::vector<std::string> notes = report_warnings(d);
  for (std::size_t i = 0; i < notes.size(); ++i) {
    out.f("  %-13s %s", i == 0 ? "warnings" : "", wrapped(notes[i], 16, 100).c_str());
  }
}

void peaks_section(Out& out, const ReportData& data) {
  out.s("\nPeaks\n");
  if (data.devices.empty()) out.s("  no device memory was allocated in the range\n");
  for (const DeviceReport& d : data.devices) {
    out.f("  %s%s\n", device_name(d).c_str(),
          d.total_memory != 0 ? (", " + bytes_text(d.total_memory)).c_str() : "");
    out.f("    peak live      %s in %s at %s s\n", bytes_text(d.peak_live).c_str(),
          count_of(d.peak_live_allocations, "allocation", "allocations").c_str(),
          seconds_text(d.peak_live_ns).c_str());
    if (d.has_physical && data.options.site) {
      out.f("    peak physical  %s at %s s (the whole arena's, whatever the call site)\n",
            bytes_text(d.peak_physical).c_str(), seconds_text(d.peak_physical_ns).c_str());
    } else if (d.has_physical) {
      out.f("    peak physical  %s at %s s (live then %s, %s held but not live)\n",
            bytes_text(d.peak_physical).c_str(), seconds_text(d.peak_physical_ns).c_str(),
            bytes_text(d.live_at_peak_physical).c_str(),
            percent_text(d.peak_physical - std::min(d.peak_physical, d.live_at_peak_physical),
                         d.peak_physical)
                .c_str());
    } else {
      out.s(
          "    peak physical  not in the trace (no physical create events, counters or OOM "
          "states)\n");
    }
    out.f("    at the end     %s live in %s\n", bytes_text(d.end_live).c_str(),
          count_of(d.end_allocations, "allocation", "allocations").c_str());
    const std::string arena = arena_events_text(d);
    if (!arena.empty()) out.f("    arena events   %s\n", arena.c_str());
  }
}

void timeline_section(Out& out, const DeviceReport& d, bool site_filter) {
  if (d.timeline.empty()) return;
  const std::int64_t width = d.timeline.front().end_ns - d.timeline.front().start_ns;
  out.f("\nFragmentation over time, %s: %zu buckets of %s s\n", device_name(d).c_str(),
        d.timeline.size(), seconds_text(width).c_str());
  bool physical = false;
  std::uint64_t max = 1;
  for (const TimeBucket& b : d.timeline) {
    physical = physical || (b.has_physical && !site_filter);
    max = std::max({max, b.max_live, b.has_physical && !site_filter ? b.max_physical : 0});
  }
  std::string live_line;
  std::string physical_line;
  for (const TimeBucket& b : d.timeline) {
    live_line += spark(b.max_live, max);
    physical_line += spark(b.has_physical ? b.max_physical : 0, max);
  }
  out.f("  live      |%s|\n", live_line.c_str());
  if (physical) {
    out.f("  physical  |%s|\n", physical_line.c_str());
    out.s("  bucket start    peak live  peak physical  unused   # live  . physical beyond\n");
  } else {
    out.s(site_filter ? "  (physical memory is the whole arena's: not shown with --site)\n"
                      : "  (no physical memory in the trace: no physical create events, counters "
                        "or OOM states)\n");
    out.s("  bucket start    peak live   # live\n");
  }
  for (const TimeBucket& b : d.timeline) {
    const auto scale = [&](std::uint64_t v) {
      return static_cast<std::size_t>(
          static_cast<double>(v) / static_cast<double>(max) * static_cast<double>(kBarWidth) + 0.5);
    };
    const std::size_t live_cols = scale(b.max_live);
    const std::size_t held_cols = b.has_physical && physical ? scale(b.max_physical) : 0;
    const std::string bar =
        std::string(live_cols, '#') + std::string(held_cols - std::min(held_cols, live_cols), '.');
    if (physical) {
      const std::string unused =
          b.has_physical
              ? percent_text(b.max_physical - std::min(b.max_physical, b.max_live), b.max_physical)
              : "-";
      out.f("  %10s s %12s %14s %7s   %s\n", seconds_text(b.start_ns).c_str(),
            bytes_text(b.max_live).c_str(),
            b.has_physical ? bytes_text(b.max_physical).c_str() : "-", unused.c_str(), bar.c_str());
    } else {
      out.f("  %10s s %12s   %s\n", seconds_text(b.start_ns).c_str(),
            bytes_text(b.max_live).c_str(), bar.c_str());
    }
  }
  if (physical) {
    out.s(
        "  (unused: share of the bucket's physical peak above its live peak: held by the\n"
        "   arena but not used by the program even at its busiest moment of the bucket)\n");
  }
}

void oom_section(Out& out, const ReportData& data) {
  if (data.counts.ooms == 0) return;
  out.f("\nOut of memory (%" PRIu64 ")\n", data.counts.ooms);
  for (std::size_t i = 0; i < data.ooms.size(); ++i) {
    const OomReport& o = data.ooms[i];
    out.f("  #%zu at %s s, device %d: %s of %s failed (result %d), thread %" PRIu32
          ", stream 0x%" PRIx64 "\n",
          i + 1, seconds_text(o.time_ns).c_str(), o.device, o.entry.c_str(),
          bytes_text(o.requested).c_str(), o.result, o.thread, o.stream);
    out.s("     requested at ");
    site_lines(out, SiteRow{o.site, o.frames}, 15);
    const format::ArenaStateFields& s = o.state;
    out.f("     arena state  live %s, cached %s, mapped %s, physical %s, limit %s\n",
          bytes_text(s.live).c_str(), bytes_text(s.cached).c_str(), bytes_text(s.mapped).c_str(),
          bytes_text(s.physical).c_str(), s.limit == 0 ? "none" : bytes_text(s.limit).c_str());
    out.f("                  largest extent %s, driver free %s%s\n",
          bytes_text(s.largest_extent).c_str(), bytes_text(s.driver_free).c_str(),
          s.driver_total != 0 ? (" of " + bytes_text(s.driver_total)).c_str() : "");
    for (std::size_t r = 0; r < o.reasons.size(); ++r) {
      out.f("     %-12s %s", r == 0 ? "findings" : "",
            wrapped("- " + o.reasons[r], 20, 100).c_str());
    }
    if (!o.detailed) continue;
    out.f("     live at the OOM by call site (%s in %s, %s):\n", bytes_text(o.traced_live).c_str(),
          count_of(o.traced_live_allocations, "allocation", "allocations").c_str(),
          count_of(o.live_sites, "call site", "call sites").c_str());
    if (o.live_by_site.empty()) continue;
    out.s("            bytes  share   allocs  oldest (s)  call site\n");
    for (const SiteRow& row : o.live_by_site) {
      out.f("     %12s %6s %8" PRIu64 " %11s  ", bytes_text(row.bytes).c_str(),
            percent_text(row.bytes, o.traced_live).c_str(), row.allocations,
            seconds_text(row.oldest_ns).c_str());
      site_lines(out, row, 45);
    }
  }
  if (data.ooms.size() < data.counts.ooms) {
    out.f("  ... %zu more (the first %zu are listed)\n",
          static_cast<std::size_t>(data.counts.ooms - data.ooms.size()), data.ooms.size());
  }
}

void consumers_section(Out& out, const DeviceReport& d) {
  out.f("\nPeak consumers (%s, at %s s: %s in %s, %s)\n", device_name(d).c_str(),
        seconds_text(d.peak_live_ns).c_str(), bytes_text(d.peak_live).c_str(),
        count_of(d.peak_live_allocations, "allocation", "allocations").c_str(),
        count_of(d.peak_sites, "call site", "call sites").c_str());
  if (d.peak_consumers.empty()) {
    out.s("  nothing was live at the peak\n");
    return;
  }
  out.s("         bytes  share   allocs  call site\n");
  for (const SiteRow& row : d.peak_consumers) {
    out.f("  %12s %6s %8" PRIu64 "  ", bytes_text(row.bytes).c_str(),
          percent_text(row.bytes, d.peak_live).c_str(), row.allocations);
    site_lines(out, row, 30);
  }
}

void frequency_section(Out& out, const ReportData& d) {
  out.f("\nMost allocations (%s from %s)\n",
        count_of(d.counts.allocations, "allocation", "allocations").c_str(),
        count_of(d.sites, "call site", "call sites").c_str());
  if (d.by_allocations.empty()) {
    out.s("  none\n");
  } else {
    out.s("    allocs        bytes    mean size  call site\n");
    for (const SiteRow& row : d.by_allocations) {
      out.f("  %8" PRIu64 " %12s %12s  ", row.allocations, bytes_text(row.bytes).c_str(),
            bytes_text(row.allocations != 0 ? row.bytes / row.allocations : 0).c_str());
      site_lines(out, row, 36);
    }
  }
  out.s("\nMost short-lived allocations (freed before any other allocation on their device)\n");
  if (d.short_lived.empty()) {
    out.s("  none\n");
    return;
  }
  out.s("  short-lived  of allocs  mean lifetime (s)  call site\n");
  for (const SiteRow& row : d.short_lived) {
    out.f("  %11" PRIu64 " %10s %18s  ", row.short_lived,
          percent_text(row.short_lived, row.allocations).c_str(),
          seconds_text(row.freed != 0 ? static_cast<std::int64_t>(row.lifetime_ns / row.freed) : 0)
              .c_str());
    site_lines(out, row, 45);
  }
}

void sizes_section(Out& out, const ReportData& d) {
  out.s("\nAllocation sizes (requested)\n");
  if (d.sizes.empty()) {
    out.s("  none\n");
    return;
  }
  std::uint64_t max = 1;
  for (const SizeBucket& b : d.sizes) max = std::max(max, b.allocations);
  out.s("               size range     allocs        bytes\n");
  for (const SizeBucket& b : size_rows(d.sizes)) {
    const std::string range = size_range_text(b);
    const auto cols = static_cast<std::size_t>(
        static_cast<double>(b.allocations) / static_cast<double>(max) * kBarWidth + 0.5);
    out.f("  %23s %10" PRIu64 " %12s  %s\n", range.c_str(), b.allocations,
          bytes_text(b.bytes).c_str(), std::string(cols, '#').c_str());
  }
}

void marks_section(Out& out, const ReportData& d) {
  if (d.marks.empty()) return;
  out.f("\nMarks (%" PRIu64 ")\n", d.counts.marks);
  for (std::size_t i = 0; i < d.marks.size() && i < kMarksShown; ++i) {
    out.f("  %10s s  %s\n", seconds_text(static_cast<std::int64_t>(d.marks[i].time_ns)).c_str(),
          quoted(d.marks[i].text).c_str());
  }
  if (d.counts.marks > kMarksShown) {
    out.f("  ... %" PRIu64 " more\n", d.counts.marks - kMarksShown);
  }
}

}  // namespace

std::string text_report(const ReportData& data) {
  Out out;
  out.f("cudefrag report: %s (trace format %u.%u, %s, %" PRIu64 " records in %" PRIu64
        " blocks)\n\n",
        data.options.trace.c_str(), data.version_major, data.version_minor, data.ending.c_str(),
        data.counts.records, data.counts.blocks);
  run_section(out, data);
  peaks_section(out, data);
  for (const DeviceReport& d : data.devices)
    timeline_section(out, d, data.options.site.has_value());
  oom_section(out, data);
  for (const DeviceReport& d : data.devices) consumers_section(out, d);
  frequency_section(out, data);
  sizes_section(out, data);
  marks_section(out, data);
  return out.take();
}

}  // namespace cudefrag::analyzer
