#include "shim/arena/size_classes.hpp"

#include <algorithm>
#include <bit>

namespace cudefrag::arena {
namespace {

constexpr std::uint32_t kLinearClasses = 8;  // 256 B .. 2 KiB
constexpr std::uint32_t kPerOctave = 8;
constexpr std::uint32_t kFirstOctaveLog2 = 11;  // 2 KiB

// The smallest run of units (holding a slot, at most a page) whose tail is at most 1/16 of it;
// else the run with the smallest tail fraction.
std::uint32_t pick_units(Bytes slot, Bytes unit) {
  const std::uint64_t least = (slot.value + unit.value - 1) / unit.value;
  std::uint32_t best = 0;
  std::uint64_t best_tail_num = 1;  // tail / slab as a fraction best_tail_num / best_tail_den
  std::uint64_t best_tail_den = 0;
  for (std::uint64_t m = least; m <= SizeClasses::kUnitsPerPage; ++m) {
    const Bytes slab = unit * m;
    const std::uint64_t slots = slab / slot;
    const std::uint64_t tail = slab.value - slots * slot.value;
    if (tail * 16 <= slab.value) return static_cast<std::uint32_t>(m);
    if (best_tail_den == 0 || tail * best_tail_den < best_tail_num * slab.value) {
      best = static_cast<std::uint32_t>(m);
      best_tail_num = tail;
      best_tail_den = slab.value;
    }
  }
  return best;
}

}  // namespace

std::uint32_t SizeClasses::index_for(Bytes request) {
  const std::uint64_t r = std::max<std::uint64_t>(request.value, 1);
  if (r <= 2048) return static_cast<std::uint32_t>((r + 255) / 256 - 1);
  // r in (2^k, 2^(k+1)]: k = floor(log2(r - 1)).
  const auto k = static_cast<std::uint32_t>(std::bit_width(r - 1) - 1);
  const std::uint64_t step = std::uint64_t{1} << (k - 3);
  const std::uint64_t j = (r - (std::uint64_t{1} << k) + step - 1) / step;  // 1..8
  return kLinearClasses + (k - kFirstOctaveLog2) * kPerOctave + static_cast<std::uint32_t>(j) - 1;
}

Bytes SizeClasses::slot_of(std::uint32_t index) {
  if (index < kLinearClasses) return Bytes{256u * (index + 1u)};
  const std::uint32_t octave = (index - kLinearClasses) / kPerOctave;
  const std::uint32_t j = (index - kLinearClasses) % kPerOctave + 1;
  const std::uint32_t k = kFirstOctaveLog2 + octave;
  return Bytes{(std::uint64_t{1} << k) + j * (std::uint64_t{1} << (k - 3))};
}

SizeClasses::SizeClasses(Bytes threshold, Bytes granularity) {
  threshold = std::min(threshold, kMaxThreshold);
  page_ = std::max(granularity, kMinPage);
  if (threshold.value != 0) {
    const std::uint32_t last = index_for(threshold);
    threshold_ = slot_of(last);
    page_ = std::max(page_, Bytes{std::bit_ceil(threshold_.value)});
  }
  unit_ = Bytes{page_.value / kUnitsPerPage};
  if (threshold_.value == 0) return;
  const std::uint32_t last = index_for(threshold_);
  classes_.reserve(last + 1);
  for (std::uint32_t i = 0; i <= last; ++i) {
    const Bytes slot = slot_of(i);
    const std::uint32_t units = pick_units(slot, unit_);
    const Bytes slab = unit_ * units;
    classes_.push_back(SizeClass{slot, slab, static_cast<std::uint32_t>(slab / slot), units});
  }
}

}  // namespace cudefrag::arena
