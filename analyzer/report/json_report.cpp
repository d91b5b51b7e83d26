#include "analyzer/report/json_report.hpp"

#include "analyzer/report/json_writer.hpp"

namespace cudefrag::analyzer {
namespace {

// `items` as an array of strings under the key `name`.
void string_array(JsonWriter& j, std::string_view name, const std::vector<std::string>& items) {
  j.key(name).begin_array();
  for (const std::string& item : items) j.value(item);
  j.end_array();
}

// `items` as an array of objects, where the writer stands (after a key, or in an array): each
// object's fields are what `fields(item)` writes into `j`.
template <typename Items, typename Fields>
void object_array(JsonWriter& j, const Items& items, Fields fields) {
  j.begin_array();
  for (const auto& item : items) {
    j.begin_object();
    fields(item);
    j.end_object();
  }
  j.end_array();
}

void site_rows(JsonWriter& j, const std::vector<SiteRow>& rows, bool oldest, bool lifetimes) {
  object_array(j, rows, [&](const SiteRow& row) {
    j.field("site", row.site);
    string_array(j, "frames", row.frames);
    j.field("bytes", row.bytes);
    j.field("allocations", row.allocations);
    if (oldest) j.key("oldest_s").seconds(row.oldest_ns);
    if (lifetimes) {
      j.field("short_lived", row.short_lived);
      j.field("freed", row.freed);
      j.key("mean_lifetime_s")
          .seconds(row.freed != 0 ? static_cast<std::int64_t>(row.lifetime_ns / row.freed) : 0);
    }
  });
}

void state(JsonWriter& j, const format::ArenaStateFields& s) {
  j.begin_object();
  j.field("live", s.live);
  j.field("mapped", s.mapped);
  j.field("cached", s.cached);
  j.field("physical", s.physical);
  j.field("limit", s.limit);
  j.field("largest_extent", s.largest_extent);
  j.field("driver_free", s.driver_free);
  j.field("driver_total", s.driver_total);
  j.end_object();
}

void run(JsonWriter& j, const ReportData& d) {
  j.key("run").begin_object();
  j.field("program", d.process.program);
  string_array(j, "command_line", d.process.command_line);
  j.field("pid", d.process.pid);
  j.field("start_wall_ns", d.process.start_wall_ns);
  static constexpr const char* kStackModes[] = {"none", "native", "python", "both"};
  j.field("stacks", d.process.stack_mode < 4 ? kStackModes[d.process.stack_mode] : "?");
  j.key("config").begin_object();
  for (const ConfigEntry& c : d.config) j.field(c.key, c.value);
  j.end_object();
  object_array(j.key("gpus"), d.gpus, [&](const DeviceInfo& g) {
    j.field("device", g.ordinal);
    j.field("name", g.name);
    j.field("total_bytes", g.total_memory);
    std::string uuid;
    for (const auto b : g.uuid) {
      static constexpr char kHex[] = "0123456789abcdef";
      uuid += kHex[b >> 4];
      uuid += kHex[b & 15];
    }
    j.field("uuid", uuid);
  });
  if (d.runtime) {
    j.field("driver_version", d.runtime->driver_version);
    j.field("runtime_version", d.runtime->runtime_version);
  }
  j.key("first_event_s").seconds(d.first_ns);
  j.key("last_event_s").seconds(d.last_ns);
  j.key("end_s");
  if (d.end_record_ns) {
    j.seconds(*d.end_record_ns);
  } else {
    j.null();
  }
  j.end_object();
}

void devices(JsonWriter& j, const ReportData& data) {
  object_array(j.key("devices"), data.devices, [&](const DeviceReport& d) {
    j.field("device", d.device);
    j.field("name", d.name);
    j.field("total_bytes", d.total_memory);
    j.field("allocations", d.allocations);
    j.field("frees", d.frees);
    j.key("peak_live").begin_object();
    j.field("bytes", d.peak_live);
    j.field("allocations", d.peak_live_allocations);
    j.key("time_s").seconds(d.peak_live_ns);
    j.end_object();
    j.key("peak_physical");
    if (d.has_physical) {
      j.begin_object();
      j.field("bytes", d.peak_physical);
      j.field("live_bytes", d.live_at_peak_physical);
      j.key("time_s").seconds(d.peak_physical_ns);
      j.end_object();
    } else {
      j.null();
    }
    j.key("at_end").begin_object();
    j.field("live_bytes", d.end_live);
    j.field("allocations", d.end_allocations);
    j.end_object();
    static constexpr const char* kArenaKinds[] = {
        "unknown",       "map",  "unmap",           "stitch",
        "cache_release", "trim", "physical_create", "physical_release"};
    j.key("arena_events").begin_object();
    for (std::size_t k = 1; k < d.arena_events.size(); ++k) {
      j.field(kArenaKinds[k], d.arena_events[k]);
    }
    j.end_object();
    object_array(j.key("timeline"), d.timeline, [&](const TimeBucket& b) {
      j.key("start_s").seconds(b.start_ns);
      j.key("end_s").seconds(b.end_ns);
      j.field("max_live", b.max_live);
      j.field("max_physical", b.has_physical ? std::optional(b.max_physical) : std::nullopt);
    });
    j.field("peak_sites", d.peak_sites);
    j.key("peak_consumers");
    site_rows(j, d.peak_consumers, false, false);
  });
}

void ooms(JsonWriter& j, const ReportData& data) {
  object_array(j.key("ooms"), data.ooms, [&](const OomReport& o) {
    j.key("time_s").seconds(o.time_ns);
    j.field("device", o.device);
    j.field("entry_point", o.entry);
    j.field("requested", o.requested);
    j.field("result", o.result);
    j.field("thread", o.thread);
    j.field("stream", o.stream);
    j.field("site", o.site);
    string_array(j, "frames", o.frames);
    j.key("state");
    state(j, o.state);
    j.field("outside_arena", o.outside_arena);
    string_array(j, "findings", o.reasons);
    j.field("traced_live_bytes", o.traced_live);
    j.field("traced_live_allocations", o.traced_live_allocations);
    j.key("live_by_site");
    if (o.detailed) {
      j.begin_object();
      j.field("sites", o.live_sites);
      j.key("top");
      site_rows(j, o.live_by_site, true, false);
      j.end_object();
    } else {
      j.null();
    }
  });
}

}  // namespace

std::string json_report(const ReportData& d) {
  JsonWriter j;
  j.begin_object();
  j.field("schema", "cudefrag-report/1");
  j.key("trace").begin_object();
  j.field("path", d.options.trace);
  j.field("format", std::to_string(d.version_major) + "." + std::to_string(d.version_minor));
  j.field("ending", d.ending);
  j.key("warning");
  if (d.warning.empty()) {
    j.null();
  } else {
    j.value(d.warning);
  }
  j.field("records", d.counts.records);
  j.field("blocks", d.counts.blocks);
  j.end_object();

  j.key("filters").begin_object();
  j.field("device", d.options.device);
  j.key("from_s").seconds(d.range_from_ns);
  j.key("to_s").seconds(d.range_to_ns);
  j.field("site", d.options.site);
  j.field("top", static_cast<std::uint64_t>(d.options.top));
  j.end_object();

  run(j, d);

  const EventCounts& c = d.counts;
  j.key("events").begin_object();
  j.field("allocations", c.allocations);
  j.field("frees", c.frees);
  j.field("failed_allocations", c.failed_allocations);
  j.field("arena_events", c.arena_events);
  j.field("ooms", c.ooms);
  j.field("counters", c.counters);
  j.field("marks", c.marks);
  j.field("dropped_records", c.dropped_records);
  j.field("late_records", c.late_records);
  j.field("unknown_frees", c.unknown_frees);
  j.field("replaced_allocations", c.replaced);
  j.end_object();

  object_array(j.key("entry_points"), d.entries, [&](const EntryUse& e) {
    j.field("name", e.name);
    j.field("allocations", e.allocations);
    j.field("frees", e.frees);
    j.field("ooms", e.ooms);
  });

  devices(j, d);
  ooms(j, d);

  j.field("sites", d.sites);
  j.key("most_allocations");
  site_rows(j, d.by_allocations, false, true);
  j.key("most_short_lived");
  site_rows(j, d.short_lived, false, true);

  object_array(j.key("sizes"), d.sizes, [&](const SizeBucket& b) {
    j.field("from_bytes", b.from);
    j.key("to_bytes");
    if (b.to == 0) {
      j.null();
    } else {
      j.value(b.to);
    }
    j.field("allocations", b.allocations);
    j.field("bytes", b.bytes);
  });

  object_array(j.key("marks"), d.marks, [&](const Mark& m) {
    j.key("time_s").seconds(static_cast<std::int64_t>(m.time_ns));
    j.field("thread", m.thread);
    j.field("text", m.text);
  });
  j.end_object();
  return j.take();
}

}  // namespace cudefrag::analyzer
