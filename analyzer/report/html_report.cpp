#include "analyzer/report/html_report.hpp"

#include <time.h>

#include <algorithm>
#include <cinttypes>
#include <cstdio>

#include "analyzer/read/text.hpp"
#include "analyzer/report/html_escape.hpp"
#include "analyzer/report/svg_chart.hpp"
#include "analyzer/report/text_units.hpp"

namespace cudefrag::analyzer {
namespace {

constexpr std::size_t kFramesShown = 4;  // as the text report: the site and three callers
constexpr std::size_t kTooltipFrames = 12;

// The page's whole style sheet. Chart classes are those svg_chart.cpp draws.
constexpr const char* kStyle = R"(
:root { color-scheme: light; }
body { margin: 0; background: #f4f5f7; color: #1d2330;
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "DejaVu Sans",
    "Liberation Sans", Arial, sans-serif; }
main { max-width: 1180px; margin: 0 auto; padding: 20px 28px 48px; }
h1 { font-size: 22px; margin: 0 0 2px; }
h2 { font-size: 18px; margin: 0 0 12px; }
h3 { font-size: 15px; margin: 18px 0 8px; }
.subtitle { color: #5b6475; margin: 0 0 10px; word-break: break-all; }
nav a { color: #2c5a8c; margin-right: 14px; text-decoration: none; }
nav a:hover { text-decoration: underline; }
section { background: #fff; border: 1px solid #dde1e7; border-radius: 8px; padding: 16px 20px;
  margin: 16px 0; }
table { border-collapse: collapse; width: 100%; margin: 4px 0 8px; }
th, td { text-align: left; padding: 4px 10px; border-bottom: 1px solid #eceef2;
  vertical-align: top; }
thead th { font-size: 12px; font-weight: 600; color: #5b6475; border-bottom: 1px solid #cfd4dc; }
.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
table.kv th { width: 160px; font-weight: 500; color: #5b6475; }
table.inner { width: auto; margin: 0; }
table.inner td { border: 0; padding: 0 18px 0 0; }
.site { font-family: ui-monospace, "DejaVu Sans Mono", "Liberation Mono", monospace;
  font-size: 12.5px; overflow-wrap: anywhere; }
.site .caller { color: #6b7385; padding-left: 1.5em; }
.note { color: #5b6475; }
.warnings { background: #fff6e0; border-left: 4px solid #e6a700; padding: 6px 12px 6px 28px;
  margin: 10px 0 0; }
.oom-card { border-left: 4px solid #a81e1e; padding: 2px 0 2px 14px; margin: 12px 0 20px; }
.oom-card h3 { margin-top: 4px; color: #9c1c1c; }
.findings li { margin: 3px 0; }
.bar-cell { width: 32%; }
.hbar { display: inline-block; height: 11px; background: #4c78a8; border-radius: 2px; }
details summary { cursor: pointer; color: #2c5a8c; margin: 6px 0; }
svg.chart { display: block; width: 100%; height: auto; margin: 6px 0 10px; }
svg.chart text { font-family: inherit; font-size: 12px; fill: #1d2330; }
svg.chart .chart-title { font-size: 15px; font-weight: 600; }
.grid line { stroke: #e6e8ec; }
.axis line { stroke: #7b8494; }
svg.chart .tick { fill: #5b6475; }
svg.chart .axis-label { fill: #3a4150; font-size: 13px; }
.live-area { fill: #d5e3f4; }
.live-line { fill: none; stroke: #2c72c2; stroke-width: 2; }
.physical-area { fill: #fbe3cc; }
.physical-line { fill: none; stroke: #e6862a; stroke-width: 2; stroke-dasharray: 7 3; }
.hits rect { fill: transparent; }
.hits rect:hover { fill: #000; fill-opacity: 0.04; }
.oom line { stroke: #d62728; stroke-width: 2; }
svg.chart .oom text { fill: #b01d1d; font-weight: 600; paint-order: stroke; stroke: #fff;
  stroke-width: 4px; }
.mark line { stroke: #7a7a7a; stroke-dasharray: 4 3; }
svg.chart .mark text { fill: #555; font-size: 11px; paint-order: stroke; stroke: #fff;
  stroke-width: 3px; }
svg.chart line.hit { stroke: transparent; stroke-width: 10; stroke-dasharray: none; }
.legend-item line { stroke-width: 3; }
.legend-item.live line { stroke: #2c72c2; }
.legend-item.physical line { stroke: #e6862a; stroke-dasharray: 7 3; }
.legend-item.unused rect { fill: #fbe3cc; stroke: #e6862a; stroke-width: 0.5; }
.legend-item.oom line { stroke: #d62728; }
.legend-item.mark line { stroke: #7a7a7a; stroke-width: 1.5; stroke-dasharray: 4 3; }
.bar rect { fill: #4c78a8; }
.bar:hover rect { fill: #2c5a8c; }
svg.chart .bar-label { font-family: ui-monospace, "DejaVu Sans Mono", "Liberation Mono",
  monospace; }
svg.chart .bar-value { fill: #3a4150; }
)";

// Text from the trace (or anything not written here) goes through e(): escaped.
using Page = HtmlBuffer;

std::string mean_lifetime(const SiteRow& row) {
  return seconds_text(row.freed != 0 ? static_cast<std::int64_t>(row.lifetime_ns / row.freed) : 0);
}

// A call site and the frames that called it, one per line, as a table cell.
void site_cell(Page& p, const std::string& site, const std::vector<std::string>& frames) {
  p.s("<td class=\"site\"><div>");
  p.e(site);
  p.s("</div>");
  for (std::size_t i = 1; i < frames.size() && i < kFramesShown; ++i) {
    p.s("<div class=\"caller\">at ");
    p.e(frames[i]);
    p.s("</div>");
  }
  p.s("</td>");
}

std::string site_tooltip(const std::string& site, const std::vector<std::string>& frames) {
  std::string tip = site;
  for (std::size_t i = 1; i < frames.size() && i < kTooltipFrames; ++i) {
    tip += "\n  at " + frames[i];
  }
  return tip;
}

void num_cell(Page& p, const std::string& text) {
  p.s("<td class=\"num\">");
  p.e(text);
  p.s("</td>");
}

void head_row(Page& p, std::initializer_list<const char*> numeric, const char* last) {
  p.s("<thead><tr>");
  for (const char* h : numeric) {
    p.s("<th class=\"num\">");
    p.s(h);
    p.s("</th>");
  }
  p.s("<th>");
  p.s(last);
  p.s("</th></tr></thead>");
}

// A row of a key-value table; `value` is already HTML.
void kv_row(Page& p, const char* key, const std::string& value) {
  p.s("<tr><th>");
  p.s(key);
  p.s("</th><td>");
  p.s(value);
  p.s("</td></tr>");
}

void header(Page& p, const ReportData& d) {
  p.s("<header><h1>cudefrag report</h1><p class=\"subtitle\">");
  p.e(d.options.trace);
  p.e(" · trace format " + std::to_string(d.version_major) + "." + std::to_string(d.version_minor) +
      ", " + d.ending + ", " + std::to_string(d.counts.records) + " records in " +
      std::to_string(d.counts.blocks) + " blocks");
  p.s("</p><nav><a href=\"#run\">Run</a><a href=\"#memory\">Memory over time</a>");
  if (d.counts.ooms != 0) p.s("<a href=\"#oom\">Out of memory</a>");
  p.s("<a href=\"#consumers\">Peak consumers</a><a href=\"#allocations\">Most allocations</a>"
      "<a href=\"#short-lived\">Short-lived</a><a href=\"#sizes\">Sizes</a>");
  if (!d.marks.empty()) p.s("<a href=\"#marks\">Marks</a>");
  p.s("</nav></header>\n");
}

void run_section(Page& p, const ReportData& d) {
  const ProcessInfo& pr = d.process;
  p.s("<section id=\"run\"><h2>Run</h2><table class=\"kv\">");
  kv_row(p, "program", html_escaped(pr.program.empty() ? "?" : pr.program));
  std::string args;
  for (const std::string& a : pr.command_line) args += (args.empty() ? "" : " ") + a;
  if (!args.empty())
    kv_row(p, "command line", "<span class=\"site\">" + html_escaped(args) + "</span>");
  static constexpr const char* kStackModes[] = {"none", "native", "python", "native+python"};
  kv_row(p, "pid",
         std::to_string(pr.pid) + ", started " + wall_clock(pr.start_wall_ns) +
             ", call stacks: " + (pr.stack_mode < 4 ? kStackModes[pr.stack_mode] : "?"));
  if (!d.gpus.empty()) {
    std::string gpus;
    for (const DeviceInfo& g : d.gpus) {
      gpus += "<div>" + std::to_string(g.ordinal) + ": " + html_escaped(g.name) + ", " +
              bytes_text(g.total_memory) + "</div>";
    }
    kv_row(p, "GPUs", gpus);
  }
  if (d.runtime) {
    kv_row(p, "CUDA",
           "driver " + std::to_string(d.runtime->driver_version) + ", runtime " +
               std::to_string(d.runtime->runtime_version));
  }
  if (!d.config.empty()) {
    std::string config;
    for (const ConfigEntry& c : d.config) {
      config += (config.empty() ? "" : ", ") + html_escaped(c.key) + " = " + html_escaped(c.value);
    }
    kv_row(p, "configuration", config);
  }
  if (d.has_events) {
    kv_row(p, "duration",
           seconds_text(d.last_ns) + " s (program start to last event; events from " +
               seconds_text(d.first_ns) + " s)");
  }
  const EventCounts& c = d.counts;
  kv_row(p, "events",
         count_of(c.allocations, "allocation", "allocations") + ", " +
             count_of(c.frees, "free", "frees") + ", " +
             count_of(c.failed_allocations, "failed allocation", "failed allocations") + "<br>" +
             count_of(c.ooms, "out-of-memory error", "out-of-memory errors") + ", " +
             count_of(c.arena_events, "arena event", "arena events") + ", " +
             count_of(c.counters, "counter sample", "counter samples") + ", " +
             count_of(c.marks, "mark", "marks"));
  if (!d.entries.empty()) {
    std::string entries = "<table class=\"inner\">";
    for (const EntryUse& e : d.entries) {
      entries += "<tr><td class=\"site\">" + html_escaped(e.name) + "</td><td>" +
                 count_of(e.allocations, "allocation", "allocations") + ", " +
                 count_of(e.frees, "free", "frees");
      if (e.ooms != 0) {
        entries += ", " + count_of(e.ooms, "out-of-memory error", "out-of-memory errors");
      }
      entries += "</td></tr>";
    }
    kv_row(p, "entry points", entries + "</table>");
  }
  const ReportOptions& o = d.options;
  if (o.device || o.from_s || o.to_s || o.site) {
    std::string filters;
    if (o.device) filters += "device " + std::to_string(*o.device) + ", ";
    filters +=
        "from " + seconds_text(d.range_from_ns) + " s to " + seconds_text(d.range_to_ns) + " s";
    if (o.site) filters += ", call sites mentioning " + quoted(*o.site);
    kv_row(p, "filters", html_escaped(filters));
  }
  p.s("</table>");
  const std::vector<std::string> notes = report_warnings(d);
  if (!notes.empty()) {
    p.s("<ul class=\"warnings\">");
    for (const std::string& n : notes) {
      p.s("<li>");
      p.e(n);
      p.s("</li>");
    }
    p.s("</ul>");
  }
  p.s("</section>\n");
}

void peaks_table(Page& p, const DeviceReport& d, bool site_filter) {
  p.s("<table class=\"kv\">");
  if (d.total_memory != 0) kv_row(p, "memory", bytes_text(d.total_memory));
  kv_row(p, "peak live",
         bytes_text(d.peak_live) + " in " +
             count_of(d.peak_live_allocations, "allocation", "allocations") + " at " +
             seconds_text(d.peak_live_ns) + " s");
  if (d.has_physical && site_filter) {
    kv_row(p, "peak physical",
           bytes_text(d.peak_physical) + " at " + seconds_text(d.peak_physical_ns) +
               " s (the whole arena's, whatever the call site)");
  } else if (d.has_physical) {
    kv_row(p, "peak physical",
           bytes_text(d.peak_physical) + " at " + seconds_text(d.peak_physical_ns) +
               " s (live then " + bytes_text(d.live_at_peak_physical) + ", " +
               percent_text(d.peak_physical - std::min(d.peak_physical, d.live_at_peak_physical),
                            d.peak_physical) +
               " held but not live)");
  } else {
    kv_row(p, "peak physical",
           "not in the trace (no physical create events, counters or OOM states)");
  }
  kv_row(p, "at the end",
         bytes_text(d.end_live) + " live in " +
             count_of(d.end_allocations, "allocation", "allocations"));
  const std::string arena = arena_events_text(d);
  if (!arena.empty()) kv_row(p, "arena events", arena);
  p.s("</table>");
}

MemoryChart memory_chart(const ReportData& data, const DeviceReport& d, bool physical) {
  MemoryChart chart;
  chart.title = "Memory over time, " + device_name(d);
  const std::int64_t width = d.timeline.front().end_ns - d.timeline.front().start_ns;
  chart.live_legend = "live memory (peak of each " + seconds_text(width) + " s)";
  for (const TimeBucket& b : d.timeline) {
    MemoryStep step{b.start_ns, b.end_ns, b.max_live, std::nullopt};
    if (physical && b.has_physical) step.physical = b.max_physical;
    chart.steps.push_back(step);
  }
  for (std::size_t i = 0; i < data.ooms.size(); ++i) {
    const OomReport& o = data.ooms[i];
    if (o.device != d.device) continue;
    std::string tip = "Out of memory #" + std::to_string(i + 1) + " at " + seconds_text(o.time_ns) +
                      " s: " + o.entry + " of " + bytes_text(o.requested) + " failed (result " +
                      std::to_string(o.result) + ")\nrequested at " +
                      site_tooltip(o.site, o.frames);
    chart.ooms.push_back({o.time_ns,
                          "OOM #" + std::to_string(i + 1) + ": " + bytes_text(o.requested),
                          std::move(tip)});
  }
  for (const Mark& m : data.marks) {
    const auto t = static_cast<std::int64_t>(m.time_ns);
    chart.marks.push_back({t, m.text, "mark at " + seconds_text(t) + " s: " + quoted(m.text)});
  }
  return chart;
}

void timeline_table(Page& p, const DeviceReport& d, bool physical) {
  p.s("<details><summary>The timeline as a table (");
  p.s(std::to_string(d.timeline.size()));
  p.s(" buckets)</summary><table>");
  if (physical) {
    head_row(p, {"bucket start (s)", "peak live", "peak physical"}, "unused");
  } else {
    head_row(p, {"bucket start (s)"}, "peak live");
  }
  p.s("<tbody>");
  for (const TimeBucket& b : d.timeline) {
    p.s("<tr>");
    num_cell(p, seconds_text(b.start_ns));
    if (physical) {
      num_cell(p, bytes_text(b.max_live));
      num_cell(p, b.has_physical ? bytes_text(b.max_physical) : "-");
      p.s("<td>");
      p.s(b.has_physical
              ? percent_text(b.max_physical - std::min(b.max_physical, b.max_live), b.max_physical)
              : "-");
      p.s("</td>");
    } else {
      p.s("<td>");
      p.s(bytes_text(b.max_live));
      p.s("</td>");
    }
    p.s("</tr>");
  }
  p.s("</tbody></table>");
  if (physical) {
    p.s("<p class=\"note\">unused: share of the bucket's physical peak above its live peak: held "
        "by the arena but not used by the program even at its busiest moment of the "
        "bucket.</p>");
  }
  p.s("</details>");
}

void memory_section(Page& p, const ReportData& data) {
  p.s("<section id=\"memory\"><h2>Peaks and memory over time</h2>");
  if (data.devices.empty()) p.s("<p>No device memory was allocated in the range.</p>");
  const bool site_filter = data.options.site.has_value();
  for (const DeviceReport& d : data.devices) {
    p.s("<h3>");
    p.e(device_name(d));
    p.s("</h3>");
    peaks_table(p, d, site_filter);
    if (d.timeline.empty()) continue;
    bool physical = false;
    for (const TimeBucket& b : d.timeline) physical = physical || (b.has_physical && !site_filter);
    p.s(memory_chart_svg(memory_chart(data, d, physical)));
    if (!physical) {
      p.s(site_filter
              ? "<p class=\"note\">Physical memory is the whole arena's: not shown with "
                "--site.</p>"
              : "<p class=\"note\">No physical memory in the trace: no physical create events, "
                "counters or OOM states.</p>");
    }
    timeline_table(p, d, physical);
  }
  p.s("</section>\n");
}

void oom_section(Page& p, const ReportData& data) {
  if (data.counts.ooms == 0) return;
  p.s("<section id=\"oom\"><h2>Out of memory (");
  p.s(std::to_string(data.counts.ooms));
  p.s(")</h2>");
  for (std::size_t i = 0; i < data.ooms.size(); ++i) {
    const OomReport& o = data.ooms[i];
    p.s("<div class=\"oom-card\"><h3>#");
    p.s(std::to_string(i + 1));
    p.s(" at ");
    p.s(seconds_text(o.time_ns));
    p.s(" s, device ");
    p.s(std::to_string(o.device));
    p.s(": ");
    p.e(o.entry);
    p.s(" of ");
    p.s(bytes_text(o.requested));
    p.s(" failed (result ");
    p.s(std::to_string(o.result));
    p.s(")</h3><table class=\"kv\"><tr><th>requested at</th>");
    site_cell(p, o.site, o.frames);
    p.s("</tr>");
    kv_row(p, "thread, stream", std::to_string(o.thread) + ", " + hex_text(o.stream));
    const format::ArenaStateFields& s = o.state;
    kv_row(p, "arena state",
           "live " + bytes_text(s.live) + ", cached " + bytes_text(s.cached) + ", mapped " +
               bytes_text(s.mapped) + ", physical " + bytes_text(s.physical) + ", limit " +
               (s.limit == 0 ? std::string("none") : bytes_text(s.limit)) + "<br>largest extent " +
               bytes_text(s.largest_extent) + ", driver free " + bytes_text(s.driver_free) +
               (s.driver_total != 0 ? " of " + bytes_text(s.driver_total) : ""));
    if (!o.reasons.empty()) {
      std::string findings = "<ul class=\"findings\">";
      for (const std::string& r : o.reasons) findings += "<li>" + html_escaped(r) + "</li>";
      kv_row(p, "findings", findings + "</ul>");
    }
    p.s("</table>");
    if (o.detailed) {
      p.s("<p>Live at the OOM by call site: ");
      p.s(bytes_text(o.traced_live));
      p.s(" in ");
      p.s(count_of(o.traced_live_allocations, "allocation", "allocations"));
      p.s(", ");
      p.s(count_of(o.live_sites, "call site", "call sites"));
      p.s("</p>");
      if (!o.live_by_site.empty()) {
        p.s("<table>");
        head_row(p, {"bytes", "share", "allocs", "oldest (s)"}, "call site");
        p.s("<tbody>");
        for (const SiteRow& row : o.live_by_site) {
          p.s("<tr>");
          num_cell(p, bytes_text(row.bytes));
          num_cell(p, percent_text(row.bytes, o.traced_live));
          num_cell(p, std::to_string(row.allocations));
          num_cell(p, seconds_text(row.oldest_ns));
          site_cell(p, row.site, row.frames);
          p.s("</tr>");
        }
        p.s("</tbody></table>");
      }
    }
    p.s("</div>");
  }
  if (data.ooms.size() < data.counts.ooms) {
    p.s("<p class=\"note\">... ");
    p.s(std::to_string(data.counts.ooms - data.ooms.size()));
    p.s(" more (the first ");
    p.s(std::to_string(data.ooms.size()));
    p.s(" are listed)</p>");
  }
  p.s("</section>\n");
}

BarChart consumers_chart(const DeviceReport& d) {
  BarChart chart;
  chart.title = "Live at the peak (" + seconds_text(d.peak_live_ns) + " s) by call site";
  for (const SiteRow& row : d.peak_consumers) {
    const std::string value = bytes_text(row.bytes) + " · " + percent_text(row.bytes, d.peak_live) +
                              " · " + count_of(row.allocations, "allocation", "allocations");
    chart.bars.push_back(
        {row.site, site_tooltip(row.site, row.frames) + "\n" + value, row.bytes, value});
  }
  return chart;
}

void consumers_section(Page& p, const ReportData& data) {
  p.s("<section id=\"consumers\"><h2>Peak consumers</h2>");
  if (data.devices.empty()) p.s("<p>No device memory was allocated in the range.</p>");
  for (const DeviceReport& d : data.devices) {
    p.s("<h3>");
    p.e(device_name(d) + ", at " + seconds_text(d.peak_live_ns) + " s: " + bytes_text(d.peak_live) +
        " in " + count_of(d.peak_live_allocations, "allocation", "allocations") + ", " +
        count_of(d.peak_sites, "call site", "call sites"));
    p.s("</h3>");
    if (d.peak_consumers.empty()) {
      p.s("<p>Nothing was live at the peak.</p>");
      continue;
    }
    p.s(bar_chart_svg(consumers_chart(d)));
    p.s("<table>");
    head_row(p, {"bytes", "share", "allocs"}, "call site");
    p.s("<tbody>");
    for (const SiteRow& row : d.peak_consumers) {
      p.s("<tr>");
      num_cell(p, bytes_text(row.bytes));
      num_cell(p, percent_text(row.bytes, d.peak_live));
      num_cell(p, std::to_string(row.allocations));
      site_cell(p, row.site, row.frames);
      p.s("</tr>");
    }
    p.s("</tbody></table>");
  }
  p.s("</section>\n");
}

void frequency_sections(Page& p, const ReportData& d) {
  p.s("<section id=\"allocations\"><h2>Most allocations</h2><p>");
  p.s(count_of(d.counts.allocations, "allocation", "allocations"));
  p.s(" from ");
  p.s(count_of(d.sites, "call site", "call sites"));
  p.s("</p>");
  if (d.by_allocations.empty()) {
    p.s("<p>None.</p>");
  } else {
    p.s("<table>");
    head_row(p, {"allocs", "bytes", "mean size"}, "call site");
    p.s("<tbody>");
    for (const SiteRow& row : d.by_allocations) {
      p.s("<tr>");
      num_cell(p, std::to_string(row.allocations));
      num_cell(p, bytes_text(row.bytes));
      num_cell(p, bytes_text(row.allocations != 0 ? row.bytes / row.allocations : 0));
      site_cell(p, row.site, row.frames);
      p.s("</tr>");
    }
    p.s("</tbody></table>");
  }
  p.s("</section>\n");

  p.s("<section id=\"short-lived\"><h2>Most short-lived allocations</h2><p>Freed before any "
      "other allocation on their device.</p>");
  if (d.short_lived.empty()) {
    p.s("<p>None.</p>");
  } else {
    p.s("<table>");
    head_row(p, {"short-lived", "of allocs", "mean lifetime (s)"}, "call site");
    p.s("<tbody>");
    for (const SiteRow& row : d.short_lived) {
      p.s("<tr>");
      num_cell(p, std::to_string(row.short_lived));
      num_cell(p, percent_text(row.short_lived, row.allocations));
      num_cell(p, mean_lifetime(row));
      site_cell(p, row.site, row.frames);
      p.s("</tr>");
    }
    p.s("</tbody></table>");
  }
  p.s("</section>\n");
}

void sizes_section(Page& p, const ReportData& d) {
  p.s("<section id=\"sizes\"><h2>Allocation sizes (requested)</h2>");
  if (d.sizes.empty()) {
    p.s("<p>None.</p></section>\n");
    return;
  }
  std::uint64_t max = 1;
  for (const SizeBucket& b : d.sizes) max = std::max(max, b.allocations);
  p.s("<table>");
  head_row(p, {"size range", "allocs", "bytes"}, "");
  p.s("<tbody>");
  for (const SizeBucket& b : size_rows(d.sizes)) {
    p.s("<tr>");
    num_cell(p, size_range_text(b));
    num_cell(p, std::to_string(b.allocations));
    num_cell(p, bytes_text(b.bytes));
    char width[16];
    std::snprintf(width, sizeof width, "%.1f",
                  100.0 * static_cast<double>(b.allocations) / static_cast<double>(max));
    p.s("<td class=\"bar-cell\"><span class=\"hbar\" style=\"width: ");
    p.s(width);
    p.s("%\"></span></td></tr>");
  }
  p.s("</tbody></table></section>\n");
}

void marks_section(Page& p, const ReportData& d) {
  if (d.marks.empty()) return;
  p.s("<section id=\"marks\"><h2>Marks (");
  p.s(std::to_string(d.counts.marks));
  p.s(")</h2><table>");
  head_row(p, {"time (s)"}, "text");
  p.s("<tbody>");
  for (const Mark& m : d.marks) {
    p.s("<tr>");
    num_cell(p, seconds_text(static_cast<std::int64_t>(m.time_ns)));
    p.s("<td class=\"site\">");
    p.e(m.text);
    p.s("</td></tr>");
  }
  p.s("</tbody></table>");
  if (d.counts.marks > d.marks.size()) {
    p.s("<p class=\"note\">... ");
    p.s(std::to_string(d.counts.marks - d.marks.size()));
    p.s(" more (not kept)</p>");
  }
  p.s("</section>\n");
}

}  // namespace

std::string html_report(const ReportData& data) {
  Page p;
  p.s("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n");
  p.s("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>");
  p.e("cudefrag report: " + data.options.trace);
  p.s("</title>\n<style>");
  p.s(kStyle);
  p.s("</style></head>\n<body><main>\n");
  header(p, data);
  run_section(p, data);
  memory_section(p, data);
  oom_section(p, data);
  consumers_section(p, data);
  frequency_sections(p, data);
  sizes_section(p, data);
  marks_section(p, data);
  p.s("</main></body></html>\n");
  return p.take();
}

}  // namespace cudefrag::analyzer
