// Peer access to the arena's mappings (arena.hpp). VMM mappings ignore
// cudaDeviceEnablePeerAccess: each device that may touch a range needs cuMemSetAccess on it. The
// arena keeps the list of devices in `access`; build() passes it for every new range, and this
// grants the ranges already mapped.
#include <algorithm>
#include <utility>
#include <vector>

#include "shim/arena/arena.hpp"
#include "shim/arena/arena_impl.hpp"

namespace cudefrag::arena {

vmm::Status Arena::grant_peer_access(DeviceOrdinal peer) {
  Impl& a = *impl_;
  std::lock_guard lock(a.slow_mu);
  if (std::find(a.access.begin(), a.access.end(), peer) != a.access.end()) {
    return vmm::Status::kOk;
  }
  std::vector<DeviceOrdinal> devices = a.access;
  devices.push_back(peer);
  // Every range in use is mapped (arena.md: physical == mapped outside the slow path). Ranges
  // change base, size or membership under slow_mu only; their state under the large cache's
  // mutex, which the fast paths take.
  std::vector<std::pair<DevicePtr, Bytes>> mapped;
  {
    std::lock_guard large_lock(a.large.mutex());
    a.pool.for_each_in_use([&](Range& r) { mapped.emplace_back(r.base, r.size); });
  }
  for (const auto& [base, size] : mapped) {
    const vmm::Status s = a.backend->set_access(base, size, devices);
    if (s != vmm::Status::kOk) return s;
  }
  a.access = std::move(devices);
  return vmm::Status::kOk;
}

}  // namespace cudefrag::arena
