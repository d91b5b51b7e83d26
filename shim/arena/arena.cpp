#include "shim/arena/arena.hpp"

#include <algorithm>
#include <utility>

#include "shim/arena/arena_impl.hpp"

namespace cudefrag::arena {
namespace {

void raise_peak(std::atomic<std::uint64_t>& peak, std::uint64_t now) {
  std::uint64_t seen = peak.load(std::memory_order_relaxed);
  while (now > seen && !peak.compare_exchange_weak(seen, now, std::memory_order_relaxed)) {
  }
}

std::uint64_t load(const std::atomic<std::uint64_t>& a) {
  return a.load(std::memory_order_relaxed);
}

bool valid(const ArenaOptions& o) {
  return o.small_threshold <= SizeClasses::kMaxThreshold && o.reuse_slack_shift <= 32 &&
         o.tight_slack_shift <= 32 && o.max_stitch_pieces >= 1;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Creation and teardown

std::unique_ptr<Arena> Arena::create(std::unique_ptr<vmm::Backend> backend,
                                     const ArenaOptions& options, vmm::Status* why) {
  vmm::Status ignored;
  vmm::Status& status = why != nullptr ? *why : ignored;
  if (backend == nullptr || !valid(options)) {
    status = vmm::Status::kInvalidValue;
    return nullptr;
  }
  const Bytes gran = backend->granularity();
  Bytes free;
  Bytes total;
  status = backend->mem_info(&free, &total);
  if (status != vmm::Status::kOk) return nullptr;

  Bytes limit = options.limit.value == 0 ? total : std::min(options.limit, total);
  limit = Bytes{limit.value - limit.value % gran.value};
  if (limit.value == 0) {
    status = vmm::Status::kInvalidValue;
    return nullptr;
  }
  Bytes va_size = options.va_reservation.value == 0 ? total * 4 : options.va_reservation;
  va_size = std::max(va_size, limit * 2).align_up(gran);
  DevicePtr va_base;
  status = backend->reserve(va_size, gran, &va_base);
  while (status == vmm::Status::kOutOfMemory && va_size > limit * 2) {
    va_size = std::max(Bytes{va_size.value / 2}, limit * 2).align_up(gran);
    status = backend->reserve(va_size, gran, &va_base);
  }
  if (status != vmm::Status::kOk) return nullptr;

  auto impl = std::make_unique<Impl>(std::move(backend), options, limit, va_base, va_size);
  return std::unique_ptr<Arena>(new Arena(std::move(impl)));
}

Arena::Arena(std::unique_ptr<Impl> impl)
    : impl_(std::move(impl)), va_base_(impl_->va_base), va_size_(impl_->va_size) {}

Arena::Impl::Impl(std::unique_ptr<vmm::Backend> b, const ArenaOptions& o, Bytes lim, DevicePtr base,
                  Bytes size)
    : backend(std::move(b)),
      options(o),
      gran(backend->granularity()),
      limit(lim),
      va_base(base),
      va_size(size),
      access{backend->device()},
      classes(o.small_threshold, gran),
      pages(classes.page(), classes.unit()),
      fences(*backend),
      map(base, size, gran) {
  heaps.reserve(classes.count());
  for (std::uint32_t i = 0; i < classes.count(); ++i) {
    heaps.push_back(std::make_unique<ClassHeap>(i, classes[i], pages));
  }
  va_free.insert(0, size / gran);
}

Arena::~Arena() {
  Impl& a = *impl_;
  // Freed blocks may still be in use by queued work; live ones are being abandoned anyway.
  (void)a.backend->device_synchronize();
  std::lock_guard lock(a.slow_mu);
  a.pool.for_each_in_use([&](Range& r) {
    (void)a.backend->unmap(r.base, r.size);
    for (const Piece& p : r.pieces) (void)a.backend->release(p.handle);
  });
  (void)a.backend->unreserve(a.va_base, a.va_size);
}

// ---------------------------------------------------------------------------------------------
// Fast paths

AllocResult Arena::allocate(Bytes size, vmm::StreamRef stream, AllocKind kind) {
  return impl_->allocate(size, stream, kind);
}

FreeResult Arena::free(DevicePtr p, vmm::StreamRef stream, FreeKind kind) {
  if (!p) return FreeResult::kOk;
  if (!owns(p)) return FreeResult::kNotOwned;
  return impl_->free(p, stream, kind);
}

Bytes Arena::Impl::under_limit() const {
  const Bytes physical{c.physical.load(std::memory_order_relaxed)};
  return physical < limit ? limit - physical : Bytes{};
}

std::optional<Bytes> Arena::Impl::under_growth_budget(Bytes min) const {
  if (options.grow_percent == 0) return std::nullopt;
  const std::uint64_t base = std::max(c.peak_live.load(std::memory_order_relaxed),
                                      c.live.load(std::memory_order_relaxed) + min.value);
  // base x percent / 100, exactly (to the byte) and without overflow for any byte count.
  const std::uint64_t budget =
      base / 100 * options.grow_percent + base % 100 * options.grow_percent / 100;
  const std::uint64_t physical = c.physical.load(std::memory_order_relaxed);
  return Bytes{budget > physical ? budget - physical : 0};
}

Bytes Arena::Impl::slack(Bytes size) const {
  const std::uint32_t shift =
      tight.load(std::memory_order_relaxed) ? options.tight_slack_shift : options.reuse_slack_shift;
  const Bytes s{size.value >> shift};
  return Bytes{s.value - s.value % gran.value};
}

void Arena::Impl::grant(Bytes granted, Bytes requested) {
  const std::uint64_t now =
      c.live.fetch_add(granted.value, std::memory_order_relaxed) + granted.value;
  raise_peak(c.peak_live, now);
  c.requested.fetch_add(requested.value, std::memory_order_relaxed);
  c.allocations.fetch_add(1, std::memory_order_relaxed);
}

void Arena::Impl::file_surplus(std::vector<Range*>& surplus) {
  if (surplus.empty()) return;
  std::lock_guard lock(large.mutex());
  for (Range* r : surplus) large.put(r, kReady);
  surplus.clear();
}

std::optional<DevicePtr> Arena::Impl::take_small(ClassHeap& heap, StreamIndex by, Bytes size) {
  std::optional<DevicePtr> p;
  std::vector<Range*> surplus;
  {
    std::lock_guard lock(heap.mutex());
    p = heap.take(by, size);
    if (!p && heap.has_pending() && heap.promote(fences, surplus) > 0) p = heap.take(by, size);
  }
  file_surplus(surplus);
  if (p) grant(heap.size_class().slot, size);
  return p;
}

std::optional<DevicePtr> Arena::Impl::slab_from_pages(ClassHeap& heap, Bytes size) {
  const std::optional<SlabPages::Carved> carved = pages.carve(heap.size_class().units);
  if (!carved) return std::nullopt;
  DevicePtr p;
  {
    std::lock_guard lock(heap.mutex());
    p = heap.add_slab(*carved, size);
  }
  grant(heap.size_class().slot, size);
  return p;
}

Range* Arena::Impl::take_large(Bytes size, Bytes max, StreamIndex by, Bytes requested) {
  Range* r = nullptr;
  {
    std::lock_guard lock(large.mutex());
    r = large.take(size, max, by);
    if (r == nullptr && large.promote(fences) > 0) r = large.take(size, max, by);
    if (r == nullptr) return nullptr;
    r->state = RangeState::kLive;
    r->requested = requested;
  }
  grant(r->size, requested);
  return r;
}

AllocResult Arena::Impl::allocate(Bytes size, vmm::StreamRef stream, AllocKind kind) {
  if (size.value == 0) return AllocResult{};
  if (size > limit) {
    std::lock_guard lock(slow_mu);
    return failure(size, ArenaError::kOutOfMemory, vmm::Status::kOutOfMemory);
  }
  StreamIndex by = kAnyStream;
  if (kind == AllocKind::kStreamOrdered) {
    const StreamIndex s = fences.index_of(stream);
    if (s != kParked) by = s;
  }
  if (size <= classes.threshold()) {
    const std::uint32_t index = SizeClasses::index_for(size);
    ClassHeap& heap = *heaps[index];
    if (const std::optional<DevicePtr> p = take_small(heap, by, size)) return AllocResult{*p};
    // Units of pages already mapped: no backend call, and the arena holds no more memory.
    if (const std::optional<DevicePtr> p = slab_from_pages(heap, size)) return AllocResult{*p};
    std::lock_guard lock(slow_mu);
    return allocate_small_slow(index, size, by);
  }
  const Bytes rounded = size.align_up(gran);
  if (Range* r = take_large(rounded, rounded + slack(rounded), by, size)) {
    return AllocResult{r->base};
  }
  std::lock_guard lock(slow_mu);
  return allocate_large_slow(size, by);
}

FreeResult Arena::Impl::free(DevicePtr p, vmm::StreamRef stream, FreeKind kind) {
  Range* r = map.find(p);
  if (r == nullptr) return FreeResult::kInvalidPointer;
  const StreamIndex by = kind == FreeKind::kLegacy ? kParked : fences.index_of(stream);
  Bytes granted;
  Bytes requested;
  if (const SlabPage* page = r->page.load(std::memory_order_acquire)) {
    Slab* slab = page->slab_at(pages.unit_of(*page, p));
    if (slab == nullptr) return FreeResult::kInvalidPointer;
    ClassHeap& heap = *heaps[slab->class_index()];
    std::lock_guard lock(heap.mutex());
    if (!heap.release(slab, p, by, fences, &requested)) return FreeResult::kInvalidPointer;
    granted = heap.size_class().slot;
  } else {
    std::lock_guard lock(large.mutex());
    if (r->state != RangeState::kLive || r->base != p) return FreeResult::kInvalidPointer;
    granted = r->size;
    requested = r->requested;
    large.put(r, fences.tag_free(by));
  }
  c.live.fetch_sub(granted.value, std::memory_order_relaxed);
  c.requested.fetch_sub(requested.value, std::memory_order_relaxed);
  c.frees.fetch_add(1, std::memory_order_relaxed);
  return FreeResult::kOk;
}

// ---------------------------------------------------------------------------------------------
// Queries

std::optional<AllocationRange> Arena::allocation_range(DevicePtr inside) const {
  if (!owns(inside)) return std::nullopt;
  return impl_->allocation_range(inside);
}

std::optional<AllocationRange> Arena::Impl::allocation_range(DevicePtr inside) const {
  Range* r = map.find(inside);
  if (r == nullptr) return std::nullopt;
  if (const SlabPage* page = r->page.load(std::memory_order_acquire)) {
    const Slab* slab = page->slab_at(pages.unit_of(*page, inside));
    if (slab == nullptr) return std::nullopt;
    ClassHeap& heap = *heaps[slab->class_index()];
    std::lock_guard lock(heap.mutex());
    const std::optional<std::uint32_t> index = slab->slot_holding(inside);
    if (!index || !slab->is_live(*index)) return std::nullopt;
    return AllocationRange{slab->address(*index), slab->requested(*index), heap.size_class().slot};
  }
  std::lock_guard lock(large.mutex());
  if (r->state != RangeState::kLive) return std::nullopt;
  return AllocationRange{r->base, r->requested, r->size};
}

Bytes Arena::Impl::reclaimable_bytes() const {
  const Bytes in_pages = pages.reclaimable();
  std::lock_guard lock(large.mutex());
  return in_pages + large.cached_bytes();
}

ArenaStats Arena::stats() const {
  return impl_->stats();
}

ArenaStats Arena::Impl::stats() const {
  ArenaStats s;
  s.live = Bytes{load(c.live)};
  s.requested = Bytes{load(c.requested)};
  s.mapped = Bytes{load(c.mapped)};
  s.cached = s.mapped > s.live ? s.mapped - s.live : Bytes{};
  s.physical = Bytes{load(c.physical)};
  s.limit = limit;
  if (backend->mem_info(&s.backend_free, &s.backend_total) != vmm::Status::kOk) {
    s.backend_free = Bytes{};
    s.backend_total = Bytes{};
  }
  const Bytes headroom = std::min(under_limit(), s.backend_free);
  s.largest_allocatable = std::min(reclaimable_bytes() + headroom, limit);
  s.peak_live = Bytes{load(c.peak_live)};
  s.peak_mapped = Bytes{load(c.peak_mapped)};
  s.peak_physical = Bytes{load(c.peak_physical)};
  s.allocations = load(c.allocations);
  s.frees = load(c.frees);
  s.live_allocations = s.allocations >= s.frees ? s.allocations - s.frees : 0;
  s.slow_allocations = load(c.slow_allocations);
  s.handles_created = load(c.handles_created);
  s.handles_released = load(c.handles_released);
  s.stitches = load(c.stitches);
  s.remaps = load(c.remaps);
  s.joins = load(c.joins);
  s.reclaims = load(c.reclaims);
  s.budget_rebuilds = load(c.budget_rebuilds);
  const StreamFences::Counts f = fences.counts();
  s.device_syncs = f.device_syncs;
  s.events_recorded = f.events_recorded;
  s.event_waits = f.event_waits;
  s.trims = load(c.trims);
  s.out_of_memory = load(c.out_of_memory);
  s.slow_ns = load(c.slow_ns);
  return s;
}

// ---------------------------------------------------------------------------------------------
// Maintenance

vmm::Status Arena::trim(Bytes keep) {
  std::lock_guard lock(impl_->slow_mu);
  return impl_->trim(keep);
}

void Arena::settle_frees() {
  Impl& a = *impl_;
  std::lock_guard lock(a.slow_mu);
  a.fences.poll();
  if (a.fences.parked_unfenced()) {
    a.fence_everything();
  } else {
    a.promote_everything();
  }
}

vmm::Status Arena::stream_destroyed(vmm::StreamRef stream) {
  std::lock_guard lock(impl_->slow_mu);
  return impl_->fences.retire(stream);
}

void Arena::set_listener(ArenaListener listener) {
  std::lock_guard lock(impl_->slow_mu);
  impl_->listener = std::move(listener);
}

vmm::Backend& Arena::backend() {
  return *impl_->backend;
}
Bytes Arena::granularity() const {
  return impl_->gran;
}
Bytes Arena::small_threshold() const {
  return impl_->classes.threshold();
}

}  // namespace cudefrag::arena
