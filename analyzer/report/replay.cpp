#include "analyzer/report/replay.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <map>

#include "analyzer/report/oom_explain.hpp"

namespace cudefrag::analyzer {
namespace {

std::uint64_t minus(std::uint64_t a, std::uint64_t b) {
  return a > b ? a - b : 0;
}

std::uint64_t seconds_to_ns(double s) {
  const double ns = std::round(s * 1e9);
  return ns >= 1.8e19 ? UINT64_MAX : static_cast<std::uint64_t>(ns);
}

std::uint64_t saturating_add(std::uint64_t a, std::uint64_t b) {
  return a > UINT64_MAX - b ? UINT64_MAX : a + b;
}

constexpr std::size_t kMaxConfig = 1000;
constexpr std::size_t kMaxGpus = 1024;

}  // namespace

// One device's memory as the replay goes. Bytes live per stack are kept twice: now (cur_*) and
// at the peak (snap_*). Copying every stack at every new peak would cost O(stacks) per event
// while memory grows, so only the stacks changed since the last peak (dirty) are copied.
struct Replay::DeviceState {
  DeviceState(std::int16_t ordinal, std::uint64_t origin) : device(ordinal), timeline(origin) {}

  void ensure(std::uint32_t stack) {
    if (stack < cur_bytes.size()) return;
    const std::size_t n = std::max<std::size_t>(stack + std::size_t{1}, cur_bytes.size() * 2);
    cur_bytes.resize(n);
    cur_count.resize(n);
    snap_bytes.resize(n);
    snap_count.resize(n);
    is_dirty.resize(n);
  }
  void touch(std::uint32_t stack) {
    if (is_dirty[stack] == 0) {
      is_dirty[stack] = 1;
      dirty.push_back(stack);
    }
  }
  void add(std::uint32_t stack, std::uint64_t bytes) {
    ensure(stack);
    cur_bytes[stack] += bytes;
    ++cur_count[stack];
    touch(stack);
    live += bytes;
    ++count;
  }
  void remove(std::uint32_t stack, std::uint64_t bytes) {
    ensure(stack);
    cur_bytes[stack] = minus(cur_bytes[stack], bytes);
    if (cur_count[stack] != 0) --cur_count[stack];
    touch(stack);
    live = minus(live, bytes);
    if (count != 0) --count;
  }
  void snapshot() {
    for (const std::uint32_t s : dirty) {
      snap_bytes[s] = cur_bytes[s];
      snap_count[s] = cur_count[s];
      is_dirty[s] = 0;
    }
    dirty.clear();
  }

  std::int16_t device;
  std::uint64_t live = 0;
  std::uint64_t count = 0;
  bool peak_set = false;
  std::uint64_t peak_live = 0;
  std::uint64_t peak_count = 0;
  std::uint64_t peak_ns = 0;
  bool has_physical = false;
  std::uint64_t physical = 0;
  bool physical_peak_set = false;
  std::uint64_t peak_physical = 0;
  std::uint64_t live_at_peak_physical = 0;
  std::uint64_t peak_physical_ns = 0;
  std::uint64_t allocations = 0;
  std::uint64_t frees = 0;
  std::uint64_t serial = 0;  // allocations made on the device, filtered or not
  std::uint64_t end_live = 0;
  std::uint64_t end_count = 0;
  std::array<std::uint64_t, 8> arena_events{};
  std::vector<std::uint64_t> cur_bytes;
  std::vector<std::uint64_t> cur_count;
  std::vector<std::uint64_t> snap_bytes;
  std::vector<std::uint64_t> snap_count;
  std::vector<std::uint32_t> dirty;
  std::vector<std::uint8_t> is_dirty;
  Timeline timeline;
};

Replay::Replay(ReportOptions options) : options_(std::move(options)) {
  data_.options = options_;
  if (options_.site) stacks_.set_filter(*options_.site);
}

Replay::~Replay() = default;

std::int64_t Replay::relative(std::uint64_t t) const {
  return static_cast<std::int64_t>(t - start_ns_);
}

bool Replay::device_selected(std::int16_t ordinal) const {
  return !options_.device || *options_.device == ordinal;
}

Replay::DeviceState& Replay::device(std::int16_t ordinal) {
  if (ordinal == last_device_ && last_device_state_ != nullptr) return *last_device_state_;
  auto it = std::find_if(devices_.begin(), devices_.end(),
                         [&](const auto& d) { return d->device == ordinal; });
  if (it == devices_.end()) {
    devices_.push_back(std::make_unique<DeviceState>(ordinal, origin_ns_));
    it = devices_.end() - 1;
  }
  last_device_ = ordinal;
  last_device_state_ = it->get();
  return **it;
}

EntryUse& Replay::entry(std::uint16_t id) {
  if (id >= entries_.size()) entries_.resize(id + std::size_t{1});
  return entries_[id];
}

void Replay::add(Record& record) {
  if (Event simple; simple_event(record, simple)) {
    push(simple);
  } else if (Event e; payload_event(record, payloads_, e)) {
    push(e);
  } else if (auto* stack = std::get_if<StackDef>(&record)) {
    stacks_.add_stack(std::move(*stack));
  } else if (auto* string = std::get_if<StringDef>(&record)) {
    stacks_.add_string(std::move(*string));
  } else if (const auto* symbol = std::get_if<format::SymbolRecord>(&record)) {
    stacks_.add_symbol(*symbol);
  } else if (const auto* name = std::get_if<EntryPointName>(&record)) {
    stacks_.add_entry_point(*name);
  } else if (auto* process = std::get_if<ProcessInfo>(&record)) {
    if (data_.has_process) return;
    data_.has_process = true;
    data_.process = std::move(*process);
    start_ns_ = data_.process.start_mono_ns;
    if (options_.from_s) from_ns_ = saturating_add(start_ns_, seconds_to_ns(*options_.from_s));
    if (options_.to_s) to_ns_ = saturating_add(start_ns_, seconds_to_ns(*options_.to_s));
  } else if (auto* config = std::get_if<ConfigEntry>(&record)) {
    if (data_.config.size() < kMaxConfig) data_.config.push_back(std::move(*config));
  } else if (auto* gpu = std::get_if<DeviceInfo>(&record)) {
    auto it = std::find_if(data_.gpus.begin(), data_.gpus.end(),
                           [&](const DeviceInfo& g) { return g.ordinal == gpu->ordinal; });
    if (it != data_.gpus.end()) {
      *it = std::move(*gpu);
    } else if (data_.gpus.size() < kMaxGpus) {
      data_.gpus.push_back(std::move(*gpu));
    }
  } else if (const auto* runtime = std::get_if<RuntimeInfo>(&record)) {
    data_.runtime = *runtime;
  } else if (const auto* dropped = std::get_if<format::DroppedRecord>(&record)) {
    data_.counts.dropped_records += dropped->count;
  } else if (const auto* end = std::get_if<format::EndRecord>(&record)) {
    data_.end_record_ns = relative(end->time_ns);
  }
}

void Replay::push(const Event& event) {
  order_.push(event);
  Event ready;
  while (order_.pop_ready(ready)) replay(ready);
}

void Replay::replay(const Event& e) {
  // Time never goes back in the replay: an event released late counts at the current time.
  const std::uint64_t t = std::max(e.time_ns, clock_ns_);
  clock_ns_ = t;
  if (!started_) {
    started_ = true;
    first_event_ns_ = t;
    origin_ns_ = options_.from_s ? from_ns_ : t;
  }
  last_event_ns_ = t;
  const bool has_payload =
      e.kind == EventKind::kOom || e.kind == EventKind::kCounters || e.kind == EventKind::kMark;
  if (t > to_ns_) {
    if (!left_range_) leave_range();
    if (has_payload) payloads_.take(e.payload);
    return;
  }
  if (!entered_range_ && t >= from_ns_) enter_range();
  switch (e.kind) {
    case EventKind::kAlloc:
      alloc(e, t);
      break;
    case EventKind::kFree:
      free(e, t);
      break;
    case EventKind::kArena:
      arena(e, t);
      break;
    case EventKind::kOom:
      oom(std::get<format::OomRecord>(payloads_.take(e.payload)), t);
      break;
    case EventKind::kCounters:
      counters(std::get<format::CountersRecord>(payloads_.take(e.payload)), t);
      break;
    case EventKind::kMark: {
      Mark mark = std::get<Mark>(payloads_.take(e.payload));
      if (!in_range(t)) break;
      ++data_.counts.marks;
      if (data_.marks.size() < kMaxMarks) {
        mark.time_ns = static_cast<std::uint64_t>(relative(t));
        data_.marks.push_back(std::move(mark));
      }
      break;
    }
  }
}

void Replay::enter_range() {
  entered_range_ = true;
  // The level at the start of the range counts: it may be the peak. origin_ns_ is --from, or
  // this first event's time.
  for (const auto& d : devices_) {
    live_changed(*d, origin_ns_);
    physical_changed(*d, origin_ns_);
  }
}

void Replay::leave_range() {
  left_range_ = true;
  for (const auto& d : devices_) {
    d->end_live = d->live;
    d->end_count = d->count;
  }
}

void Replay::live_changed(DeviceState& d, std::uint64_t t) {
  if (!d.peak_set || d.live > d.peak_live) {
    d.snapshot();
    d.peak_set = true;
    d.peak_live = d.live;
    d.peak_count = d.count;
    d.peak_ns = t;
  }
  d.timeline.record(t, d.live, d.physical, d.has_physical);
}

void Replay::physical_changed(DeviceState& d, std::uint64_t t) {
  if (!d.has_physical) return;
  if (!d.physical_peak_set || d.physical > d.peak_physical) {
    d.physical_peak_set = true;
    d.peak_physical = d.physical;
    d.live_at_peak_physical = d.live;
    d.peak_physical_ns = t;
  }
  d.timeline.record(t, d.live, d.physical, d.has_physical);
}

void Replay::alloc(const Event& e, std::uint64_t t) {
  const bool selected = device_selected(e.device);
  const bool counting = in_range(t) && selected;
  if (e.address == 0 && e.result == 0) return;  // a zero-size allocation holds nothing
  const std::uint32_t stack = stacks_.stack_index(e.stack, e.entry);
  const bool counted = selected && (!options_.site || stacks_.matches(stack));
  if (e.result != 0) {
    if (new_failure(e.thread, EventKind::kAlloc, e.entry, e.device) && counting) {
      ++data_.counts.failed_allocations;
    }
    return;
  }
  // A success ends the thread's failed request, if one is waiting for its other record.
  if (!last_failure_.empty()) last_failure_.erase(e.thread);
  bool existed = false;
  LiveAllocation& a = live_.insert(e.address, existed);
  if (existed) {
    // The free of the earlier allocation at this address was lost (dropped records).
    if (a.counted) {
      DeviceState& old = device(a.device);
      old.remove(a.stack, a.bytes);
      if (in_range(t)) live_changed(old, t);
    }
    if (counting) ++data_.counts.replaced;
  }
  DeviceState& d = device(e.device);
  a.bytes = e.bytes;
  a.time_ns = t;
  a.serial = ++d.serial;
  a.stack = stack;
  a.device = e.device;
  a.counted = counted;
  if (!counted) return;
  d.add(stack, e.bytes);
  if (!in_range(t)) return;
  live_changed(d, t);
  ++data_.counts.allocations;
  ++d.allocations;
  ++entry(e.entry).allocations;
  if (stack >= stack_stats_.size()) {
    stack_stats_.resize(std::max<std::size_t>(stack + std::size_t{1}, stack_stats_.size() * 2));
  }
  StackStats& s = stack_stats_[stack];
  ++s.allocations;
  s.bytes += e.bytes;
  const std::uint64_t size = e.bytes2 != 0 ? e.bytes2 : e.bytes;
  SizeBucket& b = sizes_[static_cast<std::size_t>(std::bit_width(size))];
  ++b.allocations;
  b.bytes += size;
}

void Replay::free(const Event& e, std::uint64_t t) {
  if (e.address == 0) return;  // freeing NULL is allowed and does nothing
  const std::optional<LiveAllocation> a = live_.take(e.address);
  if (!a) {
    if (in_range(t) && device_selected(e.device) && !options_.site) ++data_.counts.unknown_frees;
    return;
  }
  if (!a->counted) return;
  DeviceState& d = device(a->device);
  d.remove(a->stack, a->bytes);
  if (!in_range(t)) return;
  live_changed(d, t);
  ++data_.counts.frees;
  ++d.frees;
  ++entry(e.entry).frees;
  if (a->time_ns < from_ns_ || a->stack >= stack_stats_.size()) return;
  StackStats& s = stack_stats_[a->stack];
  ++s.freed;
  s.lifetime_ns += t - a->time_ns;
  if (d.serial == a->serial) ++s.short_lived;
}

void Replay::arena(const Event& e, std::uint64_t t) {
  DeviceState& d = device(e.device);
  const auto kind = static_cast<format::ArenaEventKind>(e.entry);
  // The arena starts with nothing, so creations alone tell what it holds; a release counts
  // only once the amount is known (a creation or a state sample came before it).
  bool changed = false;
  if (kind == format::ArenaEventKind::kPhysicalCreate) {
    d.physical = saturating_add(d.physical, e.bytes);
    d.has_physical = changed = true;
  } else if (kind == format::ArenaEventKind::kPhysicalRelease && d.has_physical) {
    d.physical = minus(d.physical, e.bytes);
    changed = true;
  }
  if (!in_range(t) || !device_selected(e.device)) return;
  ++data_.counts.arena_events;
  if (e.entry < d.arena_events.size()) ++d.arena_events[e.entry];
  if (changed) physical_changed(d, t);
}

void Replay::counters(const format::CountersRecord& r, std::uint64_t t) {
  DeviceState& d = device(r.device);
  // The arena's own figure: exact, and it corrects the sum of physical events after a loss.
  d.physical = r.state.physical;
  d.has_physical = true;
  if (!in_range(t) || !device_selected(r.device)) return;
  ++data_.counts.counters;
  physical_changed(d, t);
}

bool Replay::new_failure(std::uint32_t thread, EventKind kind, std::uint16_t entry,
                         std::int16_t device) {
  const auto [it, inserted] = last_failure_.try_emplace(thread, LastFailure{kind, entry, device});
  if (inserted) return true;
  LastFailure& last = it->second;
  if (last.kind != kind && last.entry == entry && last.device == device) {
    last_failure_.erase(it);
    return false;
  }
  last = LastFailure{kind, entry, device};
  return true;
}

void Replay::oom(const format::OomRecord& r, std::uint64_t t) {
  DeviceState& d = device(r.device);
  d.physical = r.state.physical;
  d.has_physical = true;
  const bool request = new_failure(r.thread, EventKind::kOom, r.entry, r.device);
  if (!in_range(t) || !device_selected(r.device)) return;
  if (request) ++data_.counts.failed_allocations;
  physical_changed(d, t);
  ++data_.counts.ooms;
  ++entry(r.entry).ooms;
  if (ooms_.size() >= kMaxOoms) return;
  PendingOom p;
  OomReport& o = p.report;
  o.time_ns = relative(t);
  o.device = r.device;
  o.entry = stacks_.entry_name(r.entry);
  o.requested = r.requested;
  o.result = r.result;
  o.thread = r.thread;
  o.stream = r.stream;
  o.state = r.state;
  o.traced_live = d.live;
  o.traced_live_allocations = d.count;
  p.stack = stacks_.stack_index(r.stack, r.entry);
  if (ooms_.size() < kDetailedOoms) {
    o.detailed = true;
    std::vector<std::uint32_t> position(d.cur_bytes.size(), UINT32_MAX);
    for (std::uint32_t s = 0; s < d.cur_bytes.size(); ++s) {
      if (d.cur_count[s] == 0) continue;
      position[s] = static_cast<std::uint32_t>(p.live.size());
      p.live.push_back({s, d.cur_bytes[s], d.cur_count[s], UINT64_MAX});
    }
    live_.for_each([&](const LiveAllocation& a) {
      if (!a.counted || a.device != d.device || a.stack >= position.size()) return;
      const std::uint32_t at = position[a.stack];
      if (at != UINT32_MAX) p.live[at].oldest_ns = std::min(p.live[at].oldest_ns, a.time_ns);
    });
  }
  ooms_.push_back(std::move(p));
}

const SiteInfo& Replay::site(std::uint32_t stack) {
  if (sites_.size() < stacks_.size()) sites_.resize(stacks_.size());
  if (!sites_[stack]) sites_[stack] = std::make_unique<SiteInfo>(stacks_.site(stack));
  return *sites_[stack];
}

std::vector<SiteRow> Replay::group(const std::vector<StackAmount>& amounts) {
  std::map<std::string, std::size_t> index;
  std::vector<SiteRow> rows;
  std::vector<std::uint64_t> heaviest;
  for (const StackAmount& a : amounts) {
    const SiteInfo& info = site(a.stack);
    const auto [it, added] = index.try_emplace(info.label, rows.size());
    if (added) {
      rows.push_back(SiteRow{info.label, info.frames});
      rows.back().oldest_ns = INT64_MAX;
      heaviest.push_back(a.bytes);
    }
    SiteRow& row = rows[it->second];
    if (a.bytes > heaviest[it->second]) {
      heaviest[it->second] = a.bytes;
      row.frames = info.frames;
    }
    row.bytes += a.bytes;
    row.allocations += a.allocations;
    if (a.oldest_ns != UINT64_MAX) row.oldest_ns = std::min(row.oldest_ns, relative(a.oldest_ns));
  }
  for (SiteRow& row : rows) {
    if (row.oldest_ns == INT64_MAX) row.oldest_ns = 0;
  }
  return rows;
}

std::vector<SiteRow> Replay::group(const std::vector<StackStats>& stats) {
  std::map<std::string, std::size_t> index;
  std::vector<SiteRow> rows;
  std::vector<std::uint64_t> heaviest;
  for (std::uint32_t s = 0; s < stats.size(); ++s) {
    const StackStats& st = stats[s];
    if (st.allocations == 0 && st.freed == 0) continue;
    const SiteInfo& info = site(s);
    const auto [it, added] = index.try_emplace(info.label, rows.size());
    if (added) {
      rows.push_back(SiteRow{info.label, info.frames});
      heaviest.push_back(st.allocations);
    }
    SiteRow& row = rows[it->second];
    if (st.allocations > heaviest[it->second]) {
      heaviest[it->second] = st.allocations;
      row.frames = info.frames;
    }
    row.allocations += st.allocations;
    row.bytes += st.bytes;
    row.short_lived += st.short_lived;
    row.freed += st.freed;
    row.lifetime_ns += st.lifetime_ns;
  }
  return rows;
}

namespace {

// Largest first by `key`, then by name, so that the order never depends on hashing.
template <typename Key>
void sort_rows(std::vector<SiteRow>& rows, Key key, std::size_t keep) {
  std::sort(rows.begin(), rows.end(), [&](const SiteRow& a, const SiteRow& b) {
    return key(a) != key(b) ? key(a) > key(b) : a.site < b.site;
  });
  if (rows.size() > keep) rows.resize(keep);
}

}  // namespace

ReportData Replay::finish(const TraceReader& reader) {
  Event e;
  while (order_.pop_any(e)) replay(e);
  if (!left_range_) leave_range();

  ReportData& r = data_;
  r.version_major = reader.version_major();
  r.version_minor = reader.version_minor();
  switch (reader.ending()) {
    case Ending::kComplete:
      r.ending = "complete";
      break;
    case Ending::kTruncated:
      r.ending = "truncated";
      break;
    default:
      r.ending = "unfinished";
      break;
  }
  if (reader.warning()) r.warning = reader.warning()->message;
  r.counts.records = reader.records_read();
  r.counts.blocks = reader.blocks_read();
  r.counts.late_records = order_.late();

  r.has_events = started_;
  if (started_) {
    r.first_ns = relative(first_event_ns_);
    r.last_ns = relative(last_event_ns_);
    r.range_from_ns = relative(origin_ns_);
    r.range_to_ns = relative(std::max(origin_ns_, std::min(to_ns_, last_event_ns_)));
  }
  const std::uint64_t range_end = start_ns_ + static_cast<std::uint64_t>(r.range_to_ns);

  for (std::size_t id = 0; id < entries_.size(); ++id) {
    EntryUse u = entries_[id];
    if (u.allocations + u.frees + u.ooms == 0) continue;
    u.name = stacks_.entry_name(static_cast<std::uint16_t>(id));
    r.entries.push_back(std::move(u));
  }

  std::vector<DeviceState*> devices;
  for (const auto& d : devices_) {
    if (device_selected(d->device)) devices.push_back(d.get());
  }
  std::sort(devices.begin(), devices.end(),
            [](const DeviceState* a, const DeviceState* b) { return a->device < b->device; });
  for (DeviceState* d : devices) {
    DeviceReport out;
    out.device = d->device;
    for (const DeviceInfo& g : r.gpus) {
      if (g.ordinal == d->device) {
        out.name = g.name;
        out.total_memory = g.total_memory;
      }
    }
    out.allocations = d->allocations;
    out.frees = d->frees;
    out.peak_live = d->peak_live;
    out.peak_live_allocations = d->peak_count;
    out.peak_live_ns = relative(d->peak_ns);
    out.has_physical = d->physical_peak_set;
    out.peak_physical = d->peak_physical;
    out.live_at_peak_physical = d->live_at_peak_physical;
    out.peak_physical_ns = relative(d->peak_physical_ns);
    out.end_live = d->end_live;
    out.end_allocations = d->end_count;
    out.arena_events = d->arena_events;
    for (const TimelineRow& row : d->timeline.rows(range_end, options_.buckets)) {
      out.timeline.push_back({relative(row.start_ns), relative(row.end_ns), row.max_live,
                              row.has_physical, row.max_physical});
    }
    std::vector<StackAmount> at_peak;
    for (std::uint32_t s = 0; s < d->snap_bytes.size(); ++s) {
      if (d->snap_count[s] != 0) at_peak.push_back({s, d->snap_bytes[s], d->snap_count[s], 0});
    }
    out.peak_consumers = group(at_peak);
    out.peak_sites = out.peak_consumers.size();
    sort_rows(
        out.peak_consumers, [](const SiteRow& row) { return row.bytes; }, options_.top);
    for (SiteRow& row : out.peak_consumers) row.oldest_ns = 0;
    r.devices.push_back(std::move(out));
  }

  for (PendingOom& p : ooms_) {
    OomReport& o = p.report;
    const SiteInfo& info = site(p.stack);
    o.site = info.label;
    o.frames = info.frames;
    explain_oom(o);
    if (o.detailed) {
      o.live_by_site = group(p.live);
      o.live_sites = o.live_by_site.size();
      sort_rows(
          o.live_by_site, [](const SiteRow& row) { return row.bytes; }, options_.top);
    }
    r.ooms.push_back(std::move(o));
  }

  r.by_allocations = group(stack_stats_);
  r.sites = r.by_allocations.size();
  r.short_lived = r.by_allocations;
  std::erase_if(r.short_lived, [](const SiteRow& row) { return row.short_lived == 0; });
  sort_rows(
      r.by_allocations, [](const SiteRow& row) { return row.allocations; }, options_.top);
  sort_rows(
      r.short_lived, [](const SiteRow& row) { return row.short_lived; }, options_.top);

  std::size_t lo = sizes_.size();
  std::size_t hi = 0;
  for (std::size_t b = 0; b < sizes_.size(); ++b) {
    if (sizes_[b].allocations == 0) continue;
    lo = std::min(lo, b);
    hi = b;
  }
  for (std::size_t b = lo; b <= hi && lo < sizes_.size(); ++b) {
    SizeBucket bucket = sizes_[b];
    bucket.from = b == 0 ? 0 : std::uint64_t{1} << (b - 1);
    bucket.to = b == 0 ? 1 : b == 64 ? 0 : std::uint64_t{1} << b;
    r.sizes.push_back(bucket);
  }
  return std::move(data_);
}

}  // namespace cudefrag::analyzer
