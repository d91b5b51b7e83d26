#include "analyzer/report/oom_explain.hpp"

#include <algorithm>

#include "analyzer/report/text_units.hpp"

namespace cudefrag::analyzer {
namespace {

// Below this much to spare, a failed request on a device the driver reports as nearly full is
// put down to the driver's own margin rather than to the arena (see explain_oom).
constexpr std::uint64_t kDriverMargin = std::uint64_t{32} << 20;

std::uint64_t minus(std::uint64_t a, std::uint64_t b) {
  return a > b ? a - b : 0;
}

}  // namespace

void explain_oom(OomReport& oom) {
  const format::ArenaStateFields& s = oom.state;
  const std::uint64_t r = oom.requested;
  std::vector<std::string>& out = oom.reasons;
  const bool driver_known = s.driver_total != 0;
  if (driver_known) oom.outside_arena = minus(minus(s.driver_total, s.driver_free), s.physical);

  // What the arena could still have obtained: its cached memory, plus what the driver had free
  // up to the limit.
  std::uint64_t obtainable = s.driver_free;
  if (s.limit != 0) obtainable = std::min(obtainable, minus(s.limit, s.physical));
  const std::uint64_t available = s.cached + obtainable;

  if (s.limit != 0 && s.live + r > s.limit) {
    out.push_back("the program's live memory (" + bytes_text(s.live) + ") plus the request (" +
                  bytes_text(r) + ") exceeds the limit (" + bytes_text(s.limit) +
                  "): releasing every cached byte would not have helped; the live allocations "
                  "below are what must shrink, or the limit must grow");
  } else if (available < r) {
    out.push_back("not enough memory: cached " + bytes_text(s.cached) + " + " +
                  (s.limit != 0 ? "obtainable under the limit " : "driver free ") +
                  bytes_text(obtainable) + " = " + bytes_text(available) +
                  " is less than the request (" + bytes_text(r) + "): the program's live memory (" +
                  bytes_text(s.live) + ") " +
                  (oom.outside_arena && *oom.outside_arena > s.live / 4
                       ? "and memory held outside the arena (" + bytes_text(*oom.outside_arena) +
                             ") fill the device"
                       : "fills the device"));
  } else if (s.largest_extent < r) {
    out.push_back("fragmentation: " + bytes_text(available) +
                  " was free in total (cached + obtainable), enough for the request, but the "
                  "largest extent that could be served was " +
                  bytes_text(s.largest_extent) +
                  ": the free memory was in pieces the arena could not join");
  } else if (driver_known && s.driver_free != 0 && available - r < kDriverMargin) {
    // The arena's figures say the request fits, by less than the driver keeps for itself on a
    // full device: on an H200 cuMemCreate refused 288 MiB with 289.6 MiB reported free, and
    // 12 MiB with 15.6 MiB (docs/RESULTS.md).
    out.push_back("the device was full: the arena could have served the request from its cache (" +
                  bytes_text(s.cached) + ") and the driver's free memory (" +
                  bytes_text(s.driver_free) + ") with only " + bytes_text(available - r) +
                  " to spare; near a full device the driver keeps some of the memory its free "
                  "figure counts for itself, so the request needed more than the card had "
                  "(result " +
                  std::to_string(oom.result) + ")");
  } else {
    out.push_back("the arena's state shows the request could be served (largest extent " +
                  bytes_text(s.largest_extent) + " >= request): the failure came from the " +
                  "driver or the entry point (result " + std::to_string(oom.result) + ")");
  }

  if (s.cached != 0) {
    out.push_back("cached: " + bytes_text(s.cached) +
                  " held by the arena but free (reclaimable: reused or released on demand)");
  }
  const std::uint64_t held_not_used = minus(minus(s.physical, s.live), s.cached);
  if (held_not_used != 0) {
    out.push_back("not reclaimable: " + bytes_text(held_not_used) +
                  " of physical memory neither live nor cached (rounding to the allocation "
                  "granularity, pages shared with live allocations)");
  }
  if (oom.outside_arena && *oom.outside_arena != 0) {
    out.push_back("not reclaimable by the arena: " + bytes_text(*oom.outside_arena) +
                  " of the device held outside it (other processes, CUDA contexts, memory not "
                  "served by the arena)");
  }
  if (oom.traced_live != s.live) {
    out.push_back("the trace saw " + bytes_text(oom.traced_live) +
                  " live on this device where the arena counted " + bytes_text(s.live) +
                  " (allocations made before tracing started, served outside the arena, or "
                  "outside the report's filters)");
  }
}

}  // namespace cudefrag::analyzer
