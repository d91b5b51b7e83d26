// Live and physical memory of one device over time, in a fixed number of buckets whatever the
// length of the run: the replay does not know the end in advance, so it keeps kFineBuckets
// buckets and halves the resolution (merging neighbours) whenever time runs past them. At the
// end the fine buckets are grouped into the few the report shows.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace cudefrag::analyzer {

struct TimelineRow {
  std::uint64_t start_ns = 0;  // absolute, as the events
  std::uint64_t end_ns = 0;
  std::uint64_t max_live = 0;
  std::uint64_t max_physical = 0;  // when has_physical
  bool has_physical = false;
};

class Timeline {
 public:
  static constexpr std::size_t kFineBuckets = 512;

  explicit Timeline(std::uint64_t origin_ns) : origin_ns_(origin_ns) {}

  // The state after an event at `time_ns` (not before the previous one's time; earlier times
  // count at the origin). `physical` is meaningful only when `has_physical`.
  void record(std::uint64_t time_ns, std::uint64_t live, std::uint64_t physical, bool has_physical);

  // `count` equal buckets from the origin to `end_ns`.
  std::vector<TimelineRow> rows(std::uint64_t end_ns, std::size_t count) const;

 private:
  struct Fine {
    bool touched = false;
    bool has_physical = false;
    std::uint64_t max_live = 0;
    std::uint64_t max_physical = 0;
    std::uint64_t end_live = 0;
    std::uint64_t end_physical = 0;
  };

  static Fine combine(const Fine& a, const Fine& b);
  static Fine carried(std::uint64_t live, std::uint64_t physical, bool has_physical);
  static void add(Fine& f, std::uint64_t live, std::uint64_t physical, bool has_physical);

  std::uint64_t origin_ns_;
  unsigned shift_ = 10;  // a fine bucket spans 2^shift_ ns
  std::vector<Fine> fine_;
  std::uint64_t level_live_ = 0;
  std::uint64_t level_physical_ = 0;
  bool level_has_physical_ = false;
};

}  // namespace cudefrag::analyzer
