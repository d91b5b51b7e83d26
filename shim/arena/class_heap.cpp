#include "shim/arena/class_heap.hpp"

#include <algorithm>

namespace cudefrag::arena {

ClassHeap::ClassHeap(std::uint32_t index, SizeClass size_class, SlabPages& pages)
    : index_(index), class_(size_class), pages_(pages), pending_(StreamFences::kCapacity) {}

void ClassHeap::list_add(std::vector<Slab*>& list, Slab* s) {
  s->list_pos = static_cast<std::int64_t>(list.size());
  list.push_back(s);
}

void ClassHeap::list_remove(std::vector<Slab*>& list, Slab* s) {
  const auto pos = static_cast<std::size_t>(s->list_pos);
  list[pos] = list.back();
  list[pos]->list_pos = static_cast<std::int64_t>(pos);
  list.pop_back();
  s->list_pos = -1;
}

std::optional<DevicePtr> ClassHeap::take(StreamIndex by, Bytes requested) {
  if (by != kAnyStream && pending_[by.value] != nullptr && !pending_[by.value]->empty()) {
    Queue& q = *pending_[by.value];
    const PendingSlot e = q.back();
    q.pop_back();
    if (q.empty()) {
      auto it = std::find(pending_streams_.begin(), pending_streams_.end(), by.value);
      *it = pending_streams_.back();
      pending_streams_.pop_back();
    }
    e.slab->revive(e.slot, requested);
    return e.slab->address(e.slot);
  }
  Slab* s = nullptr;
  if (!partial_.empty()) {
    s = partial_.back();
  } else if (!empty_.empty()) {
    s = empty_.back();
    list_remove(empty_, s);
    pages_.set_empty(s->page(), s->units(), false);
    list_add(partial_, s);
  } else {
    return std::nullopt;
  }
  const std::optional<std::uint32_t> slot = s->take_ready(requested);
  if (s->ready() == 0) list_remove(partial_, s);
  return s->address(*slot);
}

bool ClassHeap::release(Slab* slab, DevicePtr p, StreamIndex stream, StreamFences& fences,
                        Bytes* requested) {
  const std::optional<std::uint32_t> slot = slab->slot_at(p);
  if (!slot || !slab->is_live(*slot)) return false;
  *requested = slab->requested(*slot);
  slab->release(*slot);
  // Stamped under the heap's mutex, so the queue stays in sequence order.
  const FenceTag tag = fences.tag_free(stream);
  std::unique_ptr<Queue>& q = pending_[stream.value];
  if (q == nullptr) q = std::make_unique<Queue>();
  if (q->empty()) pending_streams_.push_back(stream.value);
  q->push_back(PendingSlot{slab, *slot, tag.seq});
  return true;
}

void ClassHeap::make_ready(Slab* s, std::uint32_t slot, std::vector<Range*>& surplus) {
  s->make_ready(slot);
  if (s->ready() == 1) list_add(partial_, s);
  if (!s->all_ready()) return;
  list_remove(partial_, s);
  if (empty_.size() < kRetainedEmpty) {
    list_add(empty_, s);
    pages_.set_empty(s->page(), s->units(), true);
  } else {
    retire(s, surplus);
  }
}

std::size_t ClassHeap::promote(const StreamFences& fences, std::vector<Range*>& surplus) {
  std::size_t moved = 0;
  for (std::size_t i = 0; i < pending_streams_.size();) {
    const std::uint32_t stream = pending_streams_[i];
    Queue& q = *pending_[stream];
    const std::uint64_t fenced = fences.fenced_seq(StreamIndex{stream});
    while (!q.empty() && q.front().seq <= fenced) {
      const PendingSlot e = q.front();
      q.pop_front();
      make_ready(e.slab, e.slot, surplus);
      ++moved;
    }
    if (q.empty()) {
      pending_streams_[i] = pending_streams_.back();
      pending_streams_.pop_back();
    } else {
      ++i;
    }
  }
  return moved;
}

Slab* ClassHeap::new_slab() {
  if (!spare_.empty()) {
    Slab* s = spare_.back();
    spare_.pop_back();
    return s;
  }
  return slabs_.emplace_back(std::make_unique<Slab>(index_)).get();
}

DevicePtr ClassHeap::add_slab(const SlabPages::Carved& carved, Bytes requested) {
  Slab* s = new_slab();
  s->attach(carved.page, carved.base, carved.first, class_.units, pages_.unit(), class_.slot);
  carved.page->assign(carved.first, class_.units, s);
  const std::uint32_t slot = *s->take_ready(requested);
  if (s->ready() != 0) list_add(partial_, s);
  return s->address(slot);
}

void ClassHeap::retire(Slab* s, std::vector<Range*>& out) {
  SlabPage* page = s->page();
  const std::uint32_t first = s->first_unit();
  const std::uint32_t units = s->units();
  s->detach();
  spare_.push_back(s);
  if (Range* r = pages_.release(page, first, units)) out.push_back(r);
}

void ClassHeap::take_empty(std::vector<Range*>& out) {
  while (!empty_.empty()) {
    Slab* s = empty_.back();
    list_remove(empty_, s);
    pages_.set_empty(s->page(), s->units(), false);
    retire(s, out);
  }
}

}  // namespace cudefrag::arena
