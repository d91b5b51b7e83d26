// Everything `cudefrag report` prints, as numbers: the replay (replay.hpp) fills it, the text
// and JSON writers only format it, so both always say the same thing.
// Times are ns since the program started (the process record's monotonic time).
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "analyzer/read/reader.hpp"
#include "analyzer/report/options.hpp"

namespace cudefrag::analyzer {

// One row of a table of call sites. Which counters are filled depends on the table.
struct SiteRow {
  std::string site;
  std::vector<std::string> frames;  // SiteInfo::frames of the stack that weighs most in the row
  std::uint64_t bytes = 0;
  std::uint64_t allocations = 0;
  std::uint64_t short_lived = 0;  // freed before any other allocation on their device
  std::uint64_t freed = 0;        // allocations freed within the time range
  std::uint64_t lifetime_ns = 0;  // summed over the freed ones
  std::int64_t oldest_ns = 0;     // time of the oldest live allocation (OOM tables)
};

struct TimeBucket {
  std::int64_t start_ns = 0;
  std::int64_t end_ns = 0;
  std::uint64_t max_live = 0;
  bool has_physical = false;
  std::uint64_t max_physical = 0;
};

struct DeviceReport {
  int device = 0;
  std::string name;                // from the trace's device record, when there is one
  std::uint64_t total_memory = 0;  // likewise
  std::uint64_t allocations = 0;
  std::uint64_t frees = 0;
  std::uint64_t peak_live = 0;
  std::uint64_t peak_live_allocations = 0;
  std::int64_t peak_live_ns = 0;
  bool has_physical = false;  // arena events or counters said how much memory was held
  std::uint64_t peak_physical = 0;
  std::uint64_t live_at_peak_physical = 0;
  std::int64_t peak_physical_ns = 0;
  std::uint64_t end_live = 0;  // live at the end of the time range
  std::uint64_t end_allocations = 0;
  std::array<std::uint64_t, 8> arena_events{};  // by format::ArenaEventKind
  std::vector<TimeBucket> timeline;
  std::vector<SiteRow> peak_consumers;  // at peak_live_ns, by bytes
  std::uint64_t peak_sites = 0;         // call sites holding memory at the peak
};

struct OomReport {
  std::int64_t time_ns = 0;
  int device = 0;
  std::string entry;
  std::uint64_t requested = 0;
  std::int32_t result = 0;
  std::uint32_t thread = 0;
  std::uint64_t stream = 0;
  std::string site;
  std::vector<std::string> frames;
  format::ArenaStateFields state{};
  std::optional<std::uint64_t> outside_arena;  // driver total - free - physical, when known
  std::vector<std::string> reasons;            // the post-mortem, one finding per line
  bool detailed = false;                       // live_by_site filled (the first few OOMs)
  std::uint64_t traced_live = 0;               // what the trace's own bookkeeping held
  std::uint64_t traced_live_allocations = 0;
  std::vector<SiteRow> live_by_site;
  std::uint64_t live_sites = 0;
};

struct EntryUse {
  std::string name;
  std::uint64_t allocations = 0;
  std::uint64_t frees = 0;
  std::uint64_t ooms = 0;
};

struct SizeBucket {
  std::uint64_t from = 0;  // bytes, inclusive
  std::uint64_t to = 0;    // exclusive; 0: no upper bound
  std::uint64_t allocations = 0;
  std::uint64_t bytes = 0;
};

struct EventCounts {
  std::uint64_t records = 0;
  std::uint64_t blocks = 0;
  std::uint64_t allocations = 0;
  std::uint64_t frees = 0;
  // Failed requests, each counted once (a failed alloc record, an OOM record or both: replay.hpp);
  // includes the OOMs.
  std::uint64_t failed_allocations = 0;
  std::uint64_t arena_events = 0;
  std::uint64_t ooms = 0;
  std::uint64_t counters = 0;
  std::uint64_t marks = 0;
  std::uint64_t dropped_records = 0;  // lost by the writer (kDropped)
  std::uint64_t late_records = 0;     // too far out of time order (TimeOrder::late)
  std::uint64_t unknown_frees = 0;    // of an address the trace never saw allocated
  std::uint64_t replaced = 0;         // allocations at an address already live (free lost)
};

struct ReportData {
  ReportOptions options;
  std::uint16_t version_major = 0;
  std::uint16_t version_minor = 0;
  std::string ending;   // "complete", "unfinished" or "truncated"
  std::string warning;  // the reader's warning for a truncated trace

  bool has_process = false;
  ProcessInfo process;
  std::vector<ConfigEntry> config;
  std::vector<DeviceInfo> gpus;
  std::optional<RuntimeInfo> runtime;

  bool has_events = false;
  std::int64_t first_ns = 0;  // first and last event of the whole trace
  std::int64_t last_ns = 0;
  std::optional<std::int64_t> end_record_ns;
  std::int64_t range_from_ns = 0;  // the time range the numbers cover
  std::int64_t range_to_ns = 0;

  EventCounts counts;
  std::vector<EntryUse> entries;  // entry points used, by id
  std::vector<DeviceReport> devices;
  std::vector<OomReport> ooms;          // the first Replay::kMaxOoms of counts.ooms
  std::vector<SiteRow> by_allocations;  // most allocations
  std::vector<SiteRow> short_lived;     // most short-lived allocations
  std::uint64_t sites = 0;              // call sites that allocated
  std::vector<SizeBucket> sizes;        // requested sizes, powers of two, non-empty range
  std::vector<Mark> marks;  // time_ns relative; the first Replay::kMaxMarks of counts.marks
};

}  // namespace cudefrag::analyzer
