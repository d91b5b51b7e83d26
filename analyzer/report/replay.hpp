// Replays a trace in time order and gathers what `cudefrag report` prints (report_data.hpp).
//
// Contract: add() every record in file order, then finish() once. Definitions and the opening
// records are taken at once; events go through a TimeOrder and are replayed in time order.
// Memory is bounded by the live allocations, the distinct stacks and the reorder window,
// never by the number of events.
//
// Filters (ReportOptions): the replay always follows the whole trace, so the live set at the
// start of a time range is right; the numbers count only events inside the range, of the
// selected device, and (for allocations) of matching call sites. Physical memory belongs to the
// arena, so the site filter does not apply to it, nor to failed requests (they hold no memory;
// the out-of-memory list is not filtered by site either).
//
// A failed allocation is one failed request, counted once whichever records carry it: an alloc
// record with a non-zero result, an OOM record, or both (the OOM record and then the failed
// alloc record of the same call, or the other way round: same thread, entry point and device,
// one right after the other among that thread's failures). So failed allocations >= OOMs.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

#include "analyzer/read/reader.hpp"
#include "analyzer/report/event.hpp"
#include "analyzer/report/live_table.hpp"
#include "analyzer/report/report_data.hpp"
#include "analyzer/report/stack_table.hpp"
#include "analyzer/report/time_order.hpp"
#include "analyzer/report/timeline.hpp"

namespace cudefrag::analyzer {

class Replay {
 public:
  static constexpr std::size_t kMaxOoms = 100;      // kept; later ones are only counted
  static constexpr std::size_t kDetailedOoms = 10;  // with the live set by call site
  static constexpr std::size_t kMaxMarks = 1000;

  explicit Replay(ReportOptions options);
  ~Replay();
  Replay(const Replay&) = delete;
  Replay& operator=(const Replay&) = delete;

  // The record may be moved from.
  void add(Record& record);
  // An alloc, free or arena record already made into an Event (simple_event()), in file order
  // with the other records.
  void add(const Event& event) { push(event); }
  // Replays what is still waiting and builds the report; `reader` tells how the trace ended.
  ReportData finish(const TraceReader& reader);

 private:
  struct DeviceState;
  struct StackStats {
    std::uint64_t allocations = 0;
    std::uint64_t bytes = 0;
    std::uint64_t short_lived = 0;
    std::uint64_t freed = 0;
    std::uint64_t lifetime_ns = 0;
  };
  struct StackAmount {
    std::uint32_t stack = 0;
    std::uint64_t bytes = 0;
    std::uint64_t allocations = 0;
    std::uint64_t oldest_ns = 0;  // absolute
  };
  struct PendingOom {
    OomReport report;
    std::uint32_t stack = 0;  // dense index of the failed request's stack
    std::vector<StackAmount> live;
  };

  void push(const Event& event);
  void replay(const Event& e);
  void alloc(const Event& e, std::uint64_t t);
  void free(const Event& e, std::uint64_t t);
  void arena(const Event& e, std::uint64_t t);
  void oom(const format::OomRecord& r, std::uint64_t t);
  // False when this failure is the second record of a request already seen (see the top).
  bool new_failure(std::uint32_t thread, EventKind kind, std::uint16_t entry, std::int16_t device);
  void counters(const format::CountersRecord& r, std::uint64_t t);
  void physical_changed(DeviceState& d, std::uint64_t t);
  void live_changed(DeviceState& d, std::uint64_t t);
  void enter_range();
  void leave_range();

  DeviceState& device(std::int16_t ordinal);
  bool device_selected(std::int16_t ordinal) const;
  bool in_range(std::uint64_t t) const { return t >= from_ns_ && t <= to_ns_; }
  EntryUse& entry(std::uint16_t id);
  std::int64_t relative(std::uint64_t t) const;

  std::vector<SiteRow> group(const std::vector<StackAmount>& amounts);
  std::vector<SiteRow> group(const std::vector<StackStats>& stats);
  const SiteInfo& site(std::uint32_t stack);

  ReportOptions options_;
  ReportData data_;
  std::uint64_t start_ns_ = 0;  // the program's start (process record)
  std::uint64_t from_ns_ = 0;
  std::uint64_t to_ns_ = UINT64_MAX;
  bool entered_range_ = false;
  bool left_range_ = false;
  std::uint64_t origin_ns_ = 0;  // of the timelines
  std::uint64_t clock_ns_ = 0;   // the replay's time: never goes back
  bool started_ = false;
  std::uint64_t first_event_ns_ = 0;
  std::uint64_t last_event_ns_ = 0;

  StackTable stacks_;
  TimeOrder order_;
  PayloadStore payloads_;
  LiveTable live_;
  std::vector<std::unique_ptr<DeviceState>> devices_;
  std::int16_t last_device_ = INT16_MIN;
  DeviceState* last_device_state_ = nullptr;
  std::vector<StackStats> stack_stats_;
  std::vector<EntryUse> entries_;
  std::array<SizeBucket, 65> sizes_{};
  std::vector<PendingOom> ooms_;
  struct LastFailure {
    EventKind kind = EventKind::kAlloc;
    std::uint16_t entry = 0;
    std::int16_t device = 0;
  };
  // By thread: its last failed request not yet paired with a record of the other kind.
  std::unordered_map<std::uint32_t, LastFailure> last_failure_;
  std::vector<std::unique_ptr<SiteInfo>> sites_;  // by dense stack index, filled by finish()
};

}  // namespace cudefrag::analyzer
