#include "shim/arena/slab.hpp"

#include <bit>

namespace cudefrag::arena {

void Slab::attach(SlabPage* page, DevicePtr base, std::uint32_t first, std::uint32_t units,
                  Bytes unit, Bytes slot) {
  page_ = page;
  base_ = base;
  first_ = first;
  units_ = units;
  slot_ = slot;
  capacity_ = static_cast<std::uint32_t>((unit * units) / slot);
  ready_ = capacity_;
  live_ = 0;
  hint_ = 0;
  const std::size_t words = (capacity_ + 63) / 64;
  ready_bits_.assign(words, ~std::uint64_t{0});
  if (capacity_ % 64 != 0) ready_bits_.back() = (std::uint64_t{1} << (capacity_ % 64)) - 1;
  live_bits_.assign(words, 0);
  requested_.assign(capacity_, 0);
}

void Slab::detach() {
  // The vectors keep their capacity: a recycled slab serves the same class again.
  page_ = nullptr;
  capacity_ = ready_ = live_ = 0;
  ready_bits_.clear();
  live_bits_.clear();
  requested_.clear();
}

std::optional<std::uint32_t> Slab::slot_at(DevicePtr p) const {
  if (page_ == nullptr || p < base_) return std::nullopt;
  const Bytes off = p - base_;
  if (off % slot_ != Bytes{0}) return std::nullopt;
  const std::uint64_t i = off / slot_;
  if (i >= capacity_) return std::nullopt;
  return static_cast<std::uint32_t>(i);
}

std::optional<std::uint32_t> Slab::slot_holding(DevicePtr p) const {
  if (page_ == nullptr || p < base_) return std::nullopt;
  const std::uint64_t i = (p - base_) / slot_;
  if (i >= capacity_) return std::nullopt;
  return static_cast<std::uint32_t>(i);
}

std::optional<std::uint32_t> Slab::take_ready(Bytes requested) {
  if (ready_ == 0) return std::nullopt;
  const auto words = static_cast<std::uint32_t>(ready_bits_.size());
  for (std::uint32_t n = 0; n < words; ++n) {
    const std::uint32_t w = (hint_ + n) % words;
    if (ready_bits_[w] == 0) continue;
    const auto i = w * 64 + static_cast<std::uint32_t>(std::countr_zero(ready_bits_[w]));
    hint_ = w;
    clear(ready_bits_, i);
    --ready_;
    revive(i, requested);
    return i;
  }
  return std::nullopt;
}

void Slab::revive(std::uint32_t slot, Bytes requested) {
  set(live_bits_, slot);
  ++live_;
  requested_[slot] = static_cast<std::uint32_t>(requested.value);
}

void Slab::release(std::uint32_t slot) {
  clear(live_bits_, slot);
  --live_;
}

void Slab::make_ready(std::uint32_t slot) {
  set(ready_bits_, slot);
  ++ready_;
  if (slot / 64 < hint_) hint_ = slot / 64;
}

}  // namespace cudefrag::arena
