// The arena's slow path: everything that maps, unmaps, creates or releases memory, waits for
// fences, or reshapes cached ranges. Runs under slow_mu (see arena_impl.hpp for the lock order).
#include <algorithm>
#include <chrono>

#include "shim/arena/arena_impl.hpp"

namespace cudefrag::arena {
namespace {

void raise_peak(std::atomic<std::uint64_t>& peak, std::uint64_t now) {
  if (now > peak.load(std::memory_order_relaxed)) peak.store(now, std::memory_order_relaxed);
}

void add(std::atomic<std::uint64_t>& a, Bytes b) {
  a.store(a.load(std::memory_order_relaxed) + b.value, std::memory_order_relaxed);
}

void sub(std::atomic<std::uint64_t>& a, Bytes b) {
  a.store(a.load(std::memory_order_relaxed) - b.value, std::memory_order_relaxed);
}

void bump(std::atomic<std::uint64_t>& a, std::uint64_t n = 1) {
  a.fetch_add(n, std::memory_order_relaxed);
}

// Adds the time from its construction to its destruction to a counter (one slow path).
class SlowClock {
 public:
  explicit SlowClock(std::atomic<std::uint64_t>& sink)
      : sink_(sink), start_(std::chrono::steady_clock::now()) {}
  ~SlowClock() {
    const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                        std::chrono::steady_clock::now() - start_)
                        .count();
    bump(sink_, static_cast<std::uint64_t>(ns));
  }
  SlowClock(const SlowClock&) = delete;
  SlowClock& operator=(const SlowClock&) = delete;

 private:
  std::atomic<std::uint64_t>& sink_;
  std::chrono::steady_clock::time_point start_;
};

Bytes sum(const std::vector<Piece>& pieces) {
  Bytes total;
  for (const Piece& p : pieces) total += p.size;
  return total;
}

}  // namespace

void Arena::Impl::emit(ArenaEventKind kind, DevicePtr va, Bytes size, std::size_t handles,
                       const ArenaStats* state) {
  if (!listener) return;
  ArenaEvent e{kind, va, size, static_cast<std::uint32_t>(handles), {}};
  if (state != nullptr) e.state = *state;
  listener(e);
}

AllocResult Arena::Impl::failure(Bytes size, ArenaError error, vmm::Status status) {
  if (error == ArenaError::kOutOfMemory) bump(c.out_of_memory);
  AllocResult r;
  r.error = error;
  r.backend_status = status;
  r.request = size;
  r.state = stats();
  if (error == ArenaError::kOutOfMemory) emit(ArenaEventKind::kOutOfMemory, {}, size, 0, &r.state);
  return r;
}

void Arena::Impl::hand_out(Range* r, RangeState state, Bytes requested) {
  std::lock_guard lock(large.mutex());
  r->state = state;
  r->requested = requested;
}

// ---------------------------------------------------------------------------------------------
// Entry points from the fast paths

AllocResult Arena::Impl::allocate_small_slow(std::uint32_t class_index, Bytes size,
                                             StreamIndex by) {
  const SlowClock clock(c.slow_ns);
  bump(c.slow_allocations);
  fences.poll();
  unmap_retired();
  ClassHeap& heap = *heaps[class_index];
  // Another thread may have added a slab or a page, or a fence may have passed, while we waited.
  if (const std::optional<DevicePtr> p = take_small(heap, by, size)) return AllocResult{*p};
  if (const std::optional<DevicePtr> p = slab_from_pages(heap, size)) return AllocResult{*p};

  const Bytes page = pages.page();
  // Fenced frees may fill this heap again: cudaFree'd slots always (see obtain()), slots freed
  // on other streams when a new page would not fit under the limit.
  const bool at_limit = Bytes{c.physical.load(std::memory_order_relaxed)} + page > limit;
  if (fences.parked_unfenced() || (at_limit && fences.has_unfenced())) {
    fence_everything();
    if (const std::optional<DevicePtr> p = take_small(heap, by, size)) return AllocResult{*p};
    if (const std::optional<DevicePtr> p = slab_from_pages(heap, size)) return AllocResult{*p};
  }
  vmm::Status status = vmm::Status::kOk;
  // Slab pages are shared by every stream: only memory no queued work can touch will do.
  Range* r = obtain(page, page, kAnyStream, RangeState::kSlab, Bytes{}, &status);
  if (r == nullptr) {
    // Reclaim gave back the units of kept empty slabs, which may be enough for this slab.
    if (const std::optional<DevicePtr> p = take_small(heap, by, size)) return AllocResult{*p};
    if (const std::optional<DevicePtr> p = slab_from_pages(heap, size)) return AllocResult{*p};
    return failure(
        size,
        status == vmm::Status::kOutOfMemory ? ArenaError::kOutOfMemory : ArenaError::kBackendError,
        status);
  }
  const SlabPages::Carved carved = pages.add_and_carve(r, heap.size_class().units);
  DevicePtr p;
  {
    std::lock_guard lock(heap.mutex());
    p = heap.add_slab(carved, size);
  }
  grant(heap.size_class().slot, size);
  return AllocResult{p};
}

AllocResult Arena::Impl::allocate_large_slow(Bytes size, StreamIndex by) {
  const SlowClock clock(c.slow_ns);
  bump(c.slow_allocations);
  fences.poll();
  unmap_retired();
  const Bytes rounded = size.align_up(gran);
  const Bytes max = rounded + slack(rounded);
  if (Range* r = take_large(rounded, max, by, size)) return AllocResult{r->base};
  vmm::Status status = vmm::Status::kOk;
  Range* r = obtain(rounded, max, by, RangeState::kLive, size, &status);
  if (r == nullptr) {
    return failure(
        size,
        status == vmm::Status::kOutOfMemory ? ArenaError::kOutOfMemory : ArenaError::kBackendError,
        status);
  }
  grant(r->size, size);
  return AllocResult{r->base};
}

// ---------------------------------------------------------------------------------------------
// Finding memory for a range

Range* Arena::Impl::obtain(Bytes min, Bytes max, StreamIndex by, RangeState state, Bytes requested,
                           vmm::Status* status) {
  *status = vmm::Status::kOk;
  const auto from_cache = [&]() -> Range* {
    Range* r = nullptr;
    {
      std::lock_guard lock(large.mutex());
      large.promote(fences);
      r = large.take(min, max, by);
    }
    if (r != nullptr) {
      hand_out(r, state, requested);
      return r;
    }
    return join_cached(min, max, state, requested);
  };

  // 1. Cached ranges, alone or joined with their neighbours: no backend call.
  if (Range* r = from_cache()) return r;

  // 2. Blocks freed with cudaFree: the real cudaFree synchronizes the device at every call;
  //    one synchronize for the whole parked batch, before growing, keeps the arena from
  //    growing in cudaMalloc/cudaFree loops.
  if (fences.parked_unfenced()) {
    fence_everything();
    if (Range* r = from_cache()) return r;
  }

  // 3. Past the growth budget: rebuild from cached memory already known idle before growing
  //    (ArenaOptions::grow_percent), then, for a range on a stream, from memory freed on that
  //    same stream whose free is not yet known complete: its handles move behind the new
  //    range while its old addresses stay mapped until the free completes (retire_range). No
  //    waiting either way. On an H200 most of a workload's cache was freshly freed when a
  //    request missed, so a budget that took only fenced memory held 3.4x the peak granted
  //    bytes where the replay, whose frees complete at once, held 2x (docs/RESULTS.md).
  //    When that cannot cover the part above the budget, nothing is unmapped and the request
  //    grows the arena as below.
  if (const std::optional<Bytes> room = under_growth_budget(min); room && *room < min) {
    bool built = false;
    const StreamIndex same_stream = state == RangeState::kLive ? by : kAnyStream;
    if (Range* r =
            reclaim_and_build(min, max, *room, state, requested, status, &built, same_stream)) {
      bump(c.budget_rebuilds);
      return r;
    }
    if (built && *status != vmm::Status::kOutOfMemory) return nullptr;
    *status = vmm::Status::kOk;
  }

  // 4. New memory, while the limit allows.
  bool device_short = false;
  if (Bytes{c.physical.load(std::memory_order_relaxed)} + min <= limit) {
    if (Range* r = build(min, max, {}, state, requested, status)) {
      if (tight.load(std::memory_order_relaxed)) loosen_if_roomy();
      return r;
    }
    if (*status != vmm::Status::kOutOfMemory) return nullptr;
    device_short = true;
  }

  // 5. Stream-ordered frees not yet known complete: wait for their streams, then the caches
  //    again.
  if (fences.has_unfenced()) {
    fence_everything();
    if (Range* r = from_cache()) return r;
  }

  // 6. Reclaim: unmap idle cached ranges and stitch their physical memory into a new range.
  //    Memory is short from here on: reuses stop granting more than they must.
  tight.store(true, std::memory_order_relaxed);
  Bytes headroom = under_limit();
  Bytes device_free;
  Bytes total;
  if (backend->mem_info(&device_free, &total) == vmm::Status::kOk) {
    headroom = std::min(headroom, device_free);
  } else if (device_short) {
    headroom = Bytes{};
  }
  bool built = false;  // reclaim found enough, and build() failed
  if (Range* r = reclaim_and_build(min, max, headroom, state, requested, status, &built)) return r;
  if (!built || *status != vmm::Status::kOutOfMemory || headroom.value == 0) return nullptr;
  // The driver refused what its free figure promised: on an H200 cuMemGetInfo said 15.6 MiB
  // free while cuMemCreate refused 12 MiB, and the arena gave up on a request its 2.2 GiB of
  // cache could serve (docs/RESULTS.md, 2026-11-28). The failed build gave what it had
  // reclaimed back to the driver. Now the request comes from the cache, as far as the cache
  // reaches, and only the rest from the driver.
  Bytes cached;
  {
    std::lock_guard lock(large.mutex());
    cached = large.ready_bytes();
  }
  return reclaim_and_build(min, max, min > cached ? min - cached : Bytes{}, state, requested,
                           status, &built);
}

void Arena::Impl::loosen_if_roomy() {
  Bytes device_free;
  Bytes total;
  if (backend->mem_info(&device_free, &total) != vmm::Status::kOk) return;
  const Bytes headroom = std::min(under_limit(), device_free);
  // Slack wastes at most 1/8 of what is live, so at most 1/8 of physical: room for it twice
  // over means a reuse's slack can no longer be what makes a request fail.
  if (headroom.value >= c.physical.load(std::memory_order_relaxed) / 4) {
    tight.store(false, std::memory_order_relaxed);
  }
}

Range* Arena::Impl::reclaim_and_build(Bytes min, Bytes max, Bytes headroom, RangeState state,
                                      Bytes requested, vmm::Status* status, bool* built,
                                      StreamIndex same_stream) {
  *built = false;
  const Bytes need = min > headroom ? min - headroom : Bytes{};
  std::vector<Piece> freed;
  if (!reclaim(need, freed, same_stream)) {
    // Victims unmapped before an unmap failed are out of every cache: give their memory back.
    release_pieces(freed, freed.size());
    *status = vmm::Status::kOutOfMemory;
    return nullptr;
  }
  *built = true;
  return build(min, max, std::move(freed), state, requested, status);
}

// Serves [min, max] from a run of address-adjacent ready cached ranges, cut at handle boundaries:
// a contiguous window of whole handles that are mapped already, so no backend call is needed.
Range* Arena::Impl::join_cached(Bytes min, Bytes max, RangeState state, Bytes requested) {
  struct Flat {
    Range* owner;
    Piece piece;
    DevicePtr va;
  };
  std::lock_guard lock(large.mutex());
  const auto& ready = large.ready_by_address();
  if (ready.empty()) return nullptr;

  std::vector<Flat> run;
  std::vector<Flat> best;
  std::size_t best_lo = 0;
  std::size_t best_hi = 0;
  Bytes best_size;
  const auto scan_run = [&] {
    // Smallest window of consecutive handles with min <= size <= max (sizes are positive, so
    // two pointers find every minimal window).
    Bytes window;
    std::size_t lo = 0;
    for (std::size_t hi = 0; hi < run.size(); ++hi) {
      window += run[hi].piece.size;
      while (lo < hi && window - run[lo].piece.size >= min) window -= run[lo++].piece.size;
      if (window >= min && window <= max && (best.empty() || window < best_size)) {
        best = run;
        best_lo = lo;
        best_hi = hi;
        best_size = window;
      }
    }
  };
  DevicePtr expect;
  for (const auto& [base, r] : ready) {
    if (!run.empty() && r->base != expect) {
      scan_run();
      run.clear();
    }
    DevicePtr va = r->base;
    for (const Piece& p : r->pieces) {
      run.push_back(Flat{r, p, va});
      va = va + p.size;
    }
    expect = va;
  }
  scan_run();
  if (best.empty()) return nullptr;

  // Take every range the window touches out of the cache, then cut: what lies before and after
  // the window goes back to the cache as ranges of their own.
  Range* first = best[best_lo].owner;
  Range* last = best[best_hi].owner;
  std::uint64_t oldest = first->cached_at;
  std::vector<Range*> owners;
  for (std::size_t i = 0; i < best.size(); ++i) {
    Range* o = best[i].owner;
    if (!owners.empty() && owners.back() == o) continue;
    const bool touched = (i >= best_lo && i <= best_hi) || o == first || o == last;
    if (!touched) continue;
    owners.push_back(o);
    oldest = std::min(oldest, o->cached_at);
    large.remove(o);
  }
  const auto make = [&](std::size_t from, std::size_t to) {  // [from, to)
    Range* r = pool.get();
    r->base = best[from].va;
    r->size = Bytes{};
    for (std::size_t i = from; i < to; ++i) {
      r->pieces.push_back(best[i].piece);
      r->size += best[i].piece.size;
    }
    map.assign(r->base, r->size, r);
    return r;
  };
  std::size_t before = best_lo;
  while (before > 0 && best[before - 1].owner == first) --before;
  std::size_t after = best_hi + 1;
  while (after < best.size() && best[after].owner == last) ++after;
  for (Range* o : owners) pool.put(o);
  if (before < best_lo) {
    Range* left = make(before, best_lo);
    large.put(left, kReady);
    left->cached_at = oldest;
  }
  if (best_hi + 1 < after) {
    Range* right = make(best_hi + 1, after);
    large.put(right, kReady);
    right->cached_at = oldest;
  }
  Range* r = make(best_lo, best_hi + 1);
  r->state = state;
  r->requested = requested;
  bump(c.joins);
  emit(ArenaEventKind::kJoin, r->base, r->size, r->pieces.size());
  return r;
}

bool Arena::Impl::reclaim(Bytes need, std::vector<Piece>& freed, StreamIndex same_stream) {
  if (need.value == 0) return true;
  // Empty slabs that heaps keep are reclaimable too: file them with the cached ranges.
  {
    std::vector<Range*> empties;
    for (const auto& heap : heaps) {
      std::lock_guard lock(heap->mutex());
      heap->take_empty(empties);
    }
    file_surplus(empties);
  }
  std::vector<Range*> victims;
  std::size_t idle_victims = 0;  // the first ones: known idle, unmapped; the rest retired
  {
    std::lock_guard lock(large.mutex());
    const std::vector<Range*> pending = large.pending_oldest_first(same_stream);
    Bytes available = large.ready_bytes();
    for (const Range* r : pending) available += r->size;
    if (available < need) return false;
    Bytes gathered;
    // Out of the cache, oldest first, until `need` is gathered.
    const auto take = [&](const std::vector<Range*>& from) {
      for (Range* r : from) {
        if (gathered >= need) break;
        large.remove(r);
        r->state = RangeState::kSpare;
        victims.push_back(r);
        gathered += r->size;
      }
    };
    take(large.ready_oldest_first());
    idle_victims = victims.size();
    take(pending);
  }
  Bytes gathered;
  for (std::size_t i = 0; i < victims.size(); ++i) {
    Range* r = victims[i];
    const Bytes size = r->size;
    const DevicePtr base = r->base;
    const std::size_t handles = r->pieces.size();
    // A retired range is out of service as an unmapped one is (its addresses go later); only an
    // idle range's unmap can fail, and it then goes back to the cache as it was.
    bool taken = true;
    if (i >= idle_victims) {
      retire_range(r, freed);
    } else {
      taken = unmap_range(r, freed);
    }
    if (taken) {
      gathered += size;
      bump(c.reclaims);
      emit(ArenaEventKind::kUnmap, base, size, handles);
    } else {
      std::lock_guard lock(large.mutex());
      large.put(r, kReady);
    }
  }
  return gathered >= need;
}

bool Arena::Impl::unmap_range(Range* r, std::vector<Piece>& freed) {
  // One call for the whole range: it is tiled by whole mappings, which the driver accepts
  // (measured), and the cost is per mapping either way.
  if (backend->unmap(r->base, r->size) != vmm::Status::kOk) return false;
  map.assign(r->base, r->size, nullptr);
  va_free.insert((r->base - va_base) / gran, r->size / gran);
  sub(c.mapped, r->size);
  freed.insert(freed.end(), r->pieces.begin(), r->pieces.end());
  std::lock_guard lock(large.mutex());
  pool.put(r);
  return true;
}

void Arena::Impl::retire_range(Range* r, std::vector<Piece>& freed) {
  // No lookup may find it from now on: a free of its old address is an invalid pointer.
  map.assign(r->base, r->size, nullptr);
  sub(c.mapped, r->size);
  for (const Piece& p : r->pieces) aliased[p.handle.value] = r;
  freed.insert(freed.end(), r->pieces.begin(), r->pieces.end());
  std::lock_guard lock(large.mutex());
  r->pieces.clear();
  r->state = RangeState::kRetired;
  retired.push_back(r);
}

void Arena::Impl::unmap_retired() {
  for (std::size_t i = 0; i < retired.size();) {
    Range* r = retired[i];
    if (!fences.fenced(r->tag) || backend->unmap(r->base, r->size) != vmm::Status::kOk) {
      ++i;
      continue;
    }
    va_free.insert((r->base - va_base) / gran, r->size / gran);
    std::erase_if(aliased, [r](const auto& entry) { return entry.second == r; });
    // Handles released while this range still mapped them: their memory goes now.
    const std::vector<Piece> deferred = std::move(r->pieces);
    sub(c.mapped, sum(deferred));
    retired[i] = retired.back();
    retired.pop_back();
    {
      std::lock_guard lock(large.mutex());
      pool.put(r);
    }
    release_pieces(deferred, deferred.size());
  }
}

// ---------------------------------------------------------------------------------------------
// Building a range

void Arena::Impl::release_pieces(std::span<const Piece> pieces, std::size_t cached) {
  if (pieces.empty()) return;
  Bytes released;
  Bytes from_cache;
  std::size_t handles = 0;
  std::size_t cached_handles = 0;
  for (std::size_t i = 0; i < pieces.size(); ++i) {
    if (const auto it = aliased.find(pieces[i].handle.value); it != aliased.end()) {
      // Still held, behind the retired range alone: mapped (and so cached) until it goes.
      it->second->pieces.push_back(pieces[i]);
      add(c.mapped, pieces[i].size);
      aliased.erase(it);
      continue;
    }
    // A failed release leaks the handle in the driver but never corrupts the arena.
    (void)backend->release(pieces[i].handle);
    released += pieces[i].size;
    ++handles;
    if (i < cached) {
      from_cache += pieces[i].size;
      ++cached_handles;
    }
  }
  if (handles == 0) return;
  sub(c.physical, released);
  bump(c.handles_released, handles);
  emit(ArenaEventKind::kPhysicalRelease, {}, released, handles);
  if (from_cache.value != 0 && listener) {
    const ArenaStats s = stats();
    emit(ArenaEventKind::kCacheRelease, {}, from_cache, cached_handles, &s);
  }
}

vmm::Status Arena::Impl::create_pieces(Bytes size, std::vector<Piece>& out) {
  const std::size_t before = out.size();
  const vmm::Status status = create_new_pieces(size, out);
  // Also what a failed request created before it failed: release_pieces() gives it back.
  if (out.size() != before) {
    Bytes created;
    for (std::size_t i = before; i < out.size(); ++i) created += out[i].size;
    emit(ArenaEventKind::kPhysicalCreate, {}, created, out.size() - before);
  }
  return status;
}

vmm::Status Arena::Impl::create_new_pieces(Bytes size, std::vector<Piece>& out) {
  Bytes left = size;
  Bytes chunk = size;
  while (left.value != 0) {
    chunk = std::min(chunk, left);
    vmm::PhysHandle h;
    const vmm::Status st = backend->create(chunk, vmm::Location::kDevice, &h);
    if (st == vmm::Status::kOk) {
      out.push_back(Piece{h, chunk});
      add(c.physical, chunk);
      raise_peak(c.peak_physical, c.physical.load(std::memory_order_relaxed));
      bump(c.handles_created);
      left -= chunk;
      continue;
    }
    // The device may still hold smaller pieces of what it cannot give at once.
    if (st != vmm::Status::kOutOfMemory || chunk <= gran) return st;
    chunk = std::max(gran, Bytes{chunk.value / 2}.align_up(gran));
  }
  return vmm::Status::kOk;
}

Range* Arena::Impl::build(Bytes size, Bytes max, std::vector<Piece> reuse, RangeState state,
                          Bytes requested, vmm::Status* status) {
  // Reuse the largest handles that fit without overshooting, so that a stitched range maps as
  // few handles as possible; what is left of the request is created as one new handle.
  std::sort(reuse.begin(), reuse.end(),
            [](const Piece& a, const Piece& b) { return a.size > b.size; });
  std::vector<Piece> use;
  std::vector<Piece> spare;
  Bytes have;
  for (const Piece& p : reuse) {
    if (have + p.size <= size) {
      use.push_back(p);
      have += p.size;
    } else {
      spare.push_back(p);
    }
  }
  Bytes gap = size - have;
  if (gap.value != 0) {
    // A spare handle a little larger than the gap saves creating one (smallest first).
    for (auto it = spare.rbegin(); it != spare.rend(); ++it) {
      if (it->size >= gap && have + it->size <= max) {
        use.push_back(*it);
        have += it->size;
        gap = Bytes{};
        spare.erase(std::next(it).base());
        break;
      }
    }
  }
  // Past max_stitch_pieces handles, mapping costs more than releasing the smallest handles and
  // creating their memory again as one.
  while (!use.empty() && use.size() + (gap.value != 0 ? 1 : 0) > options.max_stitch_pieces) {
    gap += use.back().size;
    spare.push_back(use.back());
    use.pop_back();
  }
  release_pieces(spare, spare.size());

  std::vector<Piece> pieces = use;
  const std::size_t reused = use.size();
  if (gap.value != 0) {
    if (Bytes{c.physical.load(std::memory_order_relaxed)} + gap > limit) {
      *status = vmm::Status::kOutOfMemory;
    } else {
      *status = create_pieces(gap, pieces);
    }
    if (*status != vmm::Status::kOk) {
      release_pieces(pieces, reused);
      return nullptr;
    }
  }

  const Bytes total = sum(pieces);
  const std::optional<std::uint64_t> at = va_free.take_best_fit(total / gran);
  if (!at) {
    release_pieces(pieces, reused);
    *status = vmm::Status::kOutOfMemory;
    return nullptr;
  }
  const DevicePtr va = va_base + gran * *at;
  Bytes mapped;
  *status = vmm::Status::kOk;
  for (const Piece& p : pieces) {
    *status = backend->map(va + mapped, p.size, p.handle, Bytes{});
    if (*status != vmm::Status::kOk) break;
    mapped += p.size;
  }
  if (*status == vmm::Status::kOk) *status = backend->set_access(va, total, access);
  if (*status != vmm::Status::kOk) {
    if (mapped.value != 0) (void)backend->unmap(va, mapped);
    va_free.insert(*at, total / gran);
    release_pieces(pieces, reused);
    return nullptr;
  }

  Range* r = nullptr;
  {
    std::lock_guard lock(large.mutex());
    r = pool.get();
    r->base = va;
    r->size = total;
    r->pieces = std::move(pieces);
    r->state = state;
    r->requested = requested;
  }
  map.assign(va, total, r);
  add(c.mapped, total);
  raise_peak(c.peak_mapped, c.mapped.load(std::memory_order_relaxed));
  if (reused != 0) {
    bump(c.stitches);
    bump(c.remaps, reused);
    emit(ArenaEventKind::kStitch, va, total, r->pieces.size());
  } else {
    emit(ArenaEventKind::kMap, va, total, r->pieces.size());
  }
  return r;
}

// ---------------------------------------------------------------------------------------------
// Fences, trim

void Arena::Impl::promote_everything() {
  unmap_retired();
  {
    std::lock_guard lock(large.mutex());
    large.promote(fences);
  }
  for (const auto& heap : heaps) {
    std::vector<Range*> surplus;
    {
      std::lock_guard lock(heap->mutex());
      if (heap->has_pending()) heap->promote(fences, surplus);
    }
    file_surplus(surplus);
  }
}

void Arena::Impl::fence_everything() {
  const std::uint64_t syncs = fences.counts().device_syncs;
  // On failure nothing advances; the caller then finds nothing new to reuse.
  (void)fences.wait_for_all();
  if (fences.counts().device_syncs != syncs) emit(ArenaEventKind::kDeviceSync, {}, {}, 0);
  promote_everything();
}

vmm::Status Arena::Impl::trim(Bytes keep) {
  const SlowClock clock(c.slow_ns);
  fences.poll();
  if (fences.has_unfenced()) {
    fence_everything();
  } else {
    promote_everything();
  }
  {
    std::vector<Range*> empties;
    for (const auto& heap : heaps) {
      std::lock_guard lock(heap->mutex());
      heap->take_empty(empties);
    }
    file_surplus(empties);
  }
  std::vector<Range*> victims;
  {
    std::lock_guard lock(large.mutex());
    victims = large.ready_oldest_first();
  }
  vmm::Status status = vmm::Status::kOk;
  for (Range* r : victims) {
    if (Bytes{c.physical.load(std::memory_order_relaxed)} <= keep) break;
    {
      // The fast paths may have taken it since the list was made (and freed it again).
      std::lock_guard lock(large.mutex());
      if (r->state != RangeState::kCached || !r->tag.ready()) continue;
      large.remove(r);
      r->state = RangeState::kSpare;
    }
    const DevicePtr base = r->base;
    const Bytes size = r->size;
    const std::size_t handles = r->pieces.size();
    std::vector<Piece> freed;
    if (!unmap_range(r, freed)) {
      std::lock_guard lock(large.mutex());
      large.put(r, kReady);
      status = vmm::Status::kBackendError;
      continue;
    }
    emit(ArenaEventKind::kUnmap, base, size, handles);
    release_pieces(freed, freed.size());
  }
  bump(c.trims);
  if (listener) {
    const ArenaStats s = stats();
    emit(ArenaEventKind::kTrim, {}, Bytes{c.physical.load(std::memory_order_relaxed)}, 0, &s);
  }
  return status;
}

}  // namespace cudefrag::arena
