#include "shim/arena/slab_pages.hpp"

#include <bit>

namespace cudefrag::arena {
namespace {

constexpr std::uint64_t kAll = ~std::uint64_t{0};

std::uint64_t run_mask(std::uint32_t first, std::uint32_t count) {
  return (count >= 64 ? kAll : ((std::uint64_t{1} << count) - 1)) << first;
}

// Lowest unit starting a run of `count` free units (bits clear in `used`).
std::optional<std::uint32_t> find_run(std::uint64_t used, std::uint32_t count) {
  const std::uint64_t free = ~used;
  std::uint64_t starts = free;
  for (std::uint32_t k = 1; k < count && starts != 0; ++k) starts &= free >> k;
  if (starts == 0) return std::nullopt;
  return static_cast<std::uint32_t>(std::countr_zero(starts));
}

std::uint32_t longest_run(std::uint64_t used) {
  std::uint64_t free = ~used;
  std::uint32_t n = 0;
  while (free != 0) {
    free &= free >> 1;
    ++n;
  }
  return n;
}

}  // namespace

void SlabPage::assign(std::uint32_t first, std::uint32_t count, Slab* slab) {
  for (std::uint32_t u = first; u < first + count; ++u) {
    slabs_[u].store(slab, std::memory_order_release);
  }
}

bool SlabPages::reclaimable(const SlabPage& p) const {
  return p.empty_units_ == static_cast<std::uint32_t>(std::popcount(p.used_));
}

void SlabPages::update(SlabPage& p, bool was_reclaimable) {
  const bool now = reclaimable(p);
  if (now && !was_reclaimable) reclaimable_ += page_;
  if (!now && was_reclaimable) reclaimable_ -= page_;
  p.longest_free_ = longest_run(p.used_);
  if (p.used_ == kAll) {
    with_room_.erase(p.base_.load(std::memory_order_relaxed));
  } else {
    with_room_.emplace(p.base_.load(std::memory_order_relaxed), &p);
  }
}

std::optional<SlabPages::Carved> SlabPages::carve(std::uint32_t units) {
  std::lock_guard lock(mu_);
  for (const auto& [base, p] : with_room_) {
    if (p->longest_free_ < units) continue;
    const std::optional<std::uint32_t> first = find_run(p->used_, units);
    if (!first) continue;
    // update() may erase the entry the loop stands on: copy it first.
    SlabPage* page = p;
    const DevicePtr at = DevicePtr{base} + unit_ * *first;
    const bool was = reclaimable(*page);
    page->used_ |= run_mask(*first, units);
    update(*page, was);
    return Carved{page, at, *first};
  }
  return std::nullopt;
}

SlabPages::Carved SlabPages::add_and_carve(Range* range, std::uint32_t units) {
  std::lock_guard lock(mu_);
  SlabPage* p = nullptr;
  if (!spare_.empty()) {
    p = spare_.back();
    spare_.pop_back();
  } else {
    p = &storage_.emplace_back();
  }
  p->range_ = range;
  p->base_.store(range->base.value, std::memory_order_release);
  p->used_ = run_mask(0, units);
  p->empty_units_ = 0;
  update(*p, false);
  ++pages_;
  range->page.store(p, std::memory_order_release);
  return Carved{p, range->base, 0};
}

Range* SlabPages::release(SlabPage* page, std::uint32_t first, std::uint32_t units) {
  std::lock_guard lock(mu_);
  page->assign(first, units, nullptr);
  const bool was = reclaimable(*page);
  page->used_ &= ~run_mask(first, units);
  if (page->used_ != 0) {
    update(*page, was);
    return nullptr;
  }
  // Dissolved. A page that held only kept empty slabs counted as reclaimable until now.
  if (was) reclaimable_ -= page_;
  with_room_.erase(page->base_.load(std::memory_order_relaxed));
  Range* r = page->range_;
  r->page.store(nullptr, std::memory_order_release);
  page->range_ = nullptr;
  page->base_.store(0, std::memory_order_release);
  --pages_;
  spare_.push_back(page);
  return r;
}

void SlabPages::set_empty(SlabPage* page, std::uint32_t units, bool empty) {
  std::lock_guard lock(mu_);
  const bool was = reclaimable(*page);
  if (empty) {
    page->empty_units_ += units;
  } else {
    page->empty_units_ -= units;
  }
  update(*page, was);
}

Bytes SlabPages::reclaimable() const {
  std::lock_guard lock(mu_);
  return reclaimable_;
}

std::size_t SlabPages::page_count() const {
  std::lock_guard lock(mu_);
  return pages_;
}

}  // namespace cudefrag::arena
