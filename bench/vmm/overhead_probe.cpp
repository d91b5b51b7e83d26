// What the driver takes from device memory for the arena's bookkeeping, beyond the bytes it maps.
// Under `cudefrag run` a PyTorch process held 36 MiB more device memory outside its allocator
// than with PyTorch's own allocators (682 against 646 MiB on an H200, docs/RESULTS.md), and on a
// card at the edge that decides. Candidates the arena itself makes: the address reservation (4 x
// the device's memory by default: page tables for it?), mappings scattered across that range,
// and the events that fence freed memory. This probe makes each through the arena's CUDA backend
// (shim/vmm) and reads the driver's free memory before and after, after a first warm-up mapping so
// that the context's own start-up is not counted.
//
//   overhead_probe
//
// Output: one row per step, the device memory it took beyond the bytes mapped (MiB). Exit status
// 0 when measured, 77 without a usable GPU, 1 when a call failed. GPU only; results go in
// bench/vmm/RESULTS-h200.md.
#include <cinttypes>
#include <cstdio>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "shim/vmm/backend.hpp"
#include "shim/vmm/cuda_backend.hpp"

namespace cudefrag::vmm {
namespace {

constexpr int kSkip = 77;

class Probe {
 public:
  explicit Probe(Backend& b) : b_(b), self_(b.device()) {}

  // Free device memory now, in bytes (0 when the driver cannot say).
  std::int64_t free_bytes() {
    Bytes free, total;
    if (b_.mem_info(&free, &total) != Status::kOk) {
      ok_ = false;
      return 0;
    }
    return static_cast<std::int64_t>(free.value);
  }

  // Maps one new handle of `size` at va and gives access to it.
  bool map_one(DevicePtr va, Bytes size, std::vector<std::pair<DevicePtr, PhysHandle>>& out) {
    PhysHandle h;
    if (b_.create(size, Location::kDevice, &h) != Status::kOk) return fail();
    if (b_.map(va, size, h, Bytes{}) != Status::kOk) {
      (void)b_.release(h);
      return fail();
    }
    out.emplace_back(va, h);
    if (b_.set_access(va, size, std::span(&self_, 1)) != Status::kOk) return fail();
    return true;
  }

  void unmap_all(std::vector<std::pair<DevicePtr, PhysHandle>>& maps, Bytes size) {
    for (const auto& [va, h] : maps) {
      (void)b_.unmap(va, size);
      (void)b_.release(h);
    }
    maps.clear();
  }

  // One row: what the step took beyond `mapped` bytes, from free memory before and after.
  void row(std::string_view what, std::int64_t before, std::int64_t after, Bytes mapped) {
    const double mib =
        static_cast<double>(before - after - static_cast<std::int64_t>(mapped.value)) / (1 << 20);
    std::printf("%-58.*s %10.1f\n", static_cast<int>(what.size()), what.data(), mib);
  }

  bool ok() const { return ok_; }

 private:
  bool fail() {
    ok_ = false;
    return false;
  }

  Backend& b_;
  DeviceOrdinal self_;
  bool ok_ = true;
};

int run() {
  Status why = Status::kOk;
  std::unique_ptr<Backend> backend = make_cuda_backend(DeviceOrdinal{0}, &why);
  if (backend == nullptr) {
    const std::string_view reason = to_string(why);
    std::printf("overhead_probe: no usable GPU (%.*s)\n", static_cast<int>(reason.size()),
                reason.data());
    return kSkip;
  }
  Backend& b = *backend;
  Probe p(b);
  const Bytes gran = b.granularity();
  Bytes free0, total;
  if (b.mem_info(&free0, &total) != Status::kOk) return 1;
  std::printf("overhead_probe: device memory %.1f GiB, granularity %.0f MiB\n",
              static_cast<double>(total.value) / (1 << 30),
              static_cast<double>(gran.value) / (1 << 20));
  std::printf("%-58s %10s\n", "step", "MiB taken beyond the bytes mapped");

  std::vector<std::pair<DevicePtr, PhysHandle>> maps;
  // Warm-up: the first mapping of the context may set up structures of its own.
  DevicePtr warm;
  if (b.reserve(GiB(1), Bytes{}, &warm) != Status::kOk || !p.map_one(warm, gran, maps)) return 1;

  // The reservation alone, then one page mapped in it, at 1/4, 1, 2 and 4 x the device's memory
  // (the arena reserves 4 x by default, at least 2 x its limit).
  for (const double factor : {0.25, 1.0, 2.0, 4.0}) {
    const Bytes size =
        Bytes{static_cast<std::uint64_t>(static_cast<double>(total.value) * factor)}.align_up(gran);
    DevicePtr va;
    std::int64_t before = p.free_bytes();
    if (b.reserve(size, gran, &va) != Status::kOk) {
      std::printf("reserve %.2f x device memory: refused\n", factor);
      continue;
    }
    std::int64_t after = p.free_bytes();
    char what[96];
    std::snprintf(what, sizeof what, "reserve %.2f x device memory", factor);
    p.row(what, before, after, Bytes{});
    std::vector<std::pair<DevicePtr, PhysHandle>> here;
    before = after;
    p.map_one(va, gran, here);
    after = p.free_bytes();
    std::snprintf(what, sizeof what, "  then map one 2 MiB page in it");
    p.row(what, before, after, gran);
    // Pages 1 GiB apart, as an arena's ranges end up spread over its reservation.
    const std::uint64_t stride = GiB(1).value;
    const std::uint64_t count = std::min<std::uint64_t>(256, size.value / stride);
    before = p.free_bytes();
    for (std::uint64_t i = 1; i < count && p.ok(); ++i) {
      p.map_one(va + Bytes{i * stride}, gran, here);
    }
    after = p.free_bytes();
    std::snprintf(what, sizeof what, "  then %" PRIu64 " more pages, 1 GiB apart", count - 1);
    p.row(what, before, after, Bytes{gran.value * (count - 1)});
    before = p.free_bytes();
    p.unmap_all(here, gran);
    (void)b.unreserve(va, size);
    after = p.free_bytes();
    std::snprintf(what, sizeof what, "  unmapped and unreserved (negative: given back)");
    p.row(what, before, after, Bytes{});
  }

  // Events: the arena fences freed memory with them (one per stream per fence, reused).
  for (const int n : {1000, 10000}) {
    std::vector<EventRef> events(static_cast<std::size_t>(n));
    const std::int64_t before = p.free_bytes();
    for (EventRef& e : events) {
      if (b.event_create(&e) != Status::kOk) return 1;
      (void)b.event_record(e, StreamRef{});
    }
    (void)b.device_synchronize();
    const std::int64_t after = p.free_bytes();
    char what[96];
    std::snprintf(what, sizeof what, "%d events created and recorded", n);
    p.row(what, before, after, Bytes{});
    for (EventRef e : events) (void)b.event_destroy(e);
  }

  p.unmap_all(maps, gran);
  (void)b.unreserve(warm, GiB(1));
  return p.ok() ? 0 : 1;
}

}  // namespace
}  // namespace cudefrag::vmm

int main() {
  return cudefrag::vmm::run();
}
