#include "analyzer/report/timeline.hpp"

#include <algorithm>

namespace cudefrag::analyzer {

Timeline::Fine Timeline::carried(std::uint64_t live, std::uint64_t physical, bool has_physical) {
  Fine f;
  f.touched = true;
  f.has_physical = has_physical;
  f.max_live = f.end_live = live;
  f.max_physical = f.end_physical = physical;
  return f;
}

void Timeline::add(Fine& f, std::uint64_t live, std::uint64_t physical, bool has_physical) {
  f.max_live = std::max(f.max_live, live);
  if (has_physical && (!f.has_physical || physical > f.max_physical)) f.max_physical = physical;
  f.has_physical = f.has_physical || has_physical;
  f.end_live = live;
  f.end_physical = physical;
}

Timeline::Fine Timeline::combine(const Fine& a, const Fine& b) {
  if (!b.touched) return a;
  if (!a.touched) return b;
  Fine f = a;
  f.max_live = std::max(a.max_live, b.max_live);
  if (b.has_physical && (!a.has_physical || b.max_physical > a.max_physical)) {
    f.max_physical = b.max_physical;
  }
  f.has_physical = a.has_physical || b.has_physical;
  f.end_live = b.end_live;
  f.end_physical = b.end_physical;
  return f;
}

void Timeline::record(std::uint64_t time_ns, std::uint64_t live, std::uint64_t physical,
                      bool has_physical) {
  std::uint64_t index = time_ns > origin_ns_ ? (time_ns - origin_ns_) >> shift_ : 0;
  while (index >= kFineBuckets) {
    std::vector<Fine> halved((fine_.size() + 1) / 2);
    for (std::size_t i = 0; i < fine_.size(); ++i) {
      halved[i / 2] = i % 2 == 0 ? fine_[i] : combine(halved[i / 2], fine_[i]);
    }
    fine_.swap(halved);
    ++shift_;
    index >>= 1;
  }
  if (index >= fine_.size()) fine_.resize(static_cast<std::size_t>(index) + 1);
  Fine& f = fine_[static_cast<std::size_t>(index)];
  // A bucket starts at the level the previous event left, so that merging an untouched bucket
  // into its neighbour loses nothing.
  if (!f.touched) f = carried(level_live_, level_physical_, level_has_physical_);
  add(f, live, physical, has_physical);
  level_live_ = live;
  level_physical_ = physical;
  level_has_physical_ = has_physical;
}

std::vector<TimelineRow> Timeline::rows(std::uint64_t end_ns, std::size_t count) const {
  count = std::max<std::size_t>(count, 1);
  const std::uint64_t span =
      std::max<std::uint64_t>(end_ns > origin_ns_ ? end_ns - origin_ns_ : 0, 1);
  std::vector<Fine> grouped(count);
  for (std::size_t i = 0; i < fine_.size(); ++i) {
    const double start = static_cast<double>(std::uint64_t{i} << shift_);
    const auto j = std::min(count - 1, static_cast<std::size_t>(start / static_cast<double>(span) *
                                                                static_cast<double>(count)));
    grouped[j] = combine(grouped[j], fine_[i]);
  }
  std::vector<TimelineRow> rows(count);
  Fine level;
  for (std::size_t j = 0; j < count; ++j) {
    if (grouped[j].touched) {
      level = grouped[j];
    } else {
      level = carried(level.end_live, level.end_physical, level.has_physical);
    }
    TimelineRow& r = rows[j];
    r.start_ns =
        origin_ns_ + static_cast<std::uint64_t>(static_cast<double>(span) * static_cast<double>(j) /
                                                static_cast<double>(count));
    r.end_ns = origin_ns_ +
               static_cast<std::uint64_t>(static_cast<double>(span) * static_cast<double>(j + 1) /
                                          static_cast<double>(count));
    r.max_live = level.max_live;
    r.has_physical = level.has_physical;
    r.max_physical = level.max_physical;
  }
  return rows;
}

}  // namespace cudefrag::analyzer
