#include "analyzer/replay/arena_model.hpp"

#include <algorithm>

#include "analyzer/replay/accounting_backend.hpp"

namespace cudefrag::analyzer::replay {

namespace {

vmm::StreamRef stream_ref(std::uint64_t stream) {
  // The trace's handle value: the backend never dereferences it, the arena only compares it.
  return vmm::StreamRef{reinterpret_cast<void*>(static_cast<std::uintptr_t>(stream))};
}

}  // namespace

ArenaModel::ArenaModel(Bytes cap, const arena::ArenaOptions& options) {
  vmm::Status why = vmm::Status::kOk;
  arena_ = arena::Arena::create(make_accounting_backend(cap), options, &why);
}

ArenaModel::~ArenaModel() = default;

bool ArenaModel::allocate(std::uint64_t key, Bytes size, std::uint64_t stream, bool legacy) {
  if (arena_ == nullptr) return false;
  const arena::AllocResult r =
      arena_->allocate(size, stream_ref(stream),
                       legacy ? arena::AllocKind::kLegacy : arena::AllocKind::kStreamOrdered);
  if (!r.ok()) return false;
  live_.emplace(key, r.ptr);
  return true;
}

void ArenaModel::free(std::uint64_t key, std::uint64_t stream, bool legacy) {
  const auto it = live_.find(key);
  if (it == live_.end()) return;
  (void)arena_->free(it->second, stream_ref(stream),
                     legacy ? arena::FreeKind::kLegacy : arena::FreeKind::kStreamOrdered);
  live_.erase(it);
}

Bytes ArenaModel::reserved() const {
  return arena_ == nullptr ? Bytes{} : arena_->figures().physical;
}

Bytes ArenaModel::peak_reserved() const {
  return arena_ == nullptr ? Bytes{} : arena_->figures().peak_physical;
}

std::uint64_t ArenaModel::driver_allocations() const {
  return arena_ == nullptr ? 0 : arena_->stats().handles_created;
}

std::optional<ArenaState> ArenaModel::arena_state() const {
  if (arena_ == nullptr) return std::nullopt;
  const arena::ArenaStats s = arena_->stats();
  const Bytes reclaimable = arena_->figures().reclaimable;
  return ArenaState{s.live, s.requested, s.live_allocations, s.cached,
                    std::min(reclaimable, s.cached)};
}

arena::ArenaStats ArenaModel::stats() const {
  return arena_ == nullptr ? arena::ArenaStats{} : arena_->stats();
}

}  // namespace cudefrag::analyzer::replay
