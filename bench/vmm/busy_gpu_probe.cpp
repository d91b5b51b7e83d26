// Does a virtual-memory call wait for the GPU? The arena's slow path creates, maps, sets access,
// unmaps and releases while the program's kernels run; if one of those calls waits for queued
// work to finish, every slow path costs the program the depth of its queue, not the call's own
// microseconds. This probe keeps a stream busy with a queue of large memsets (tens of ms), makes
// one call of each kind through the arena's CUDA backend (shim/vmm), and reports the host time of
// the call and whether the stream was still busy right after it returned.
//
//   busy_gpu_probe [busy_ms]     (default 40)
//
// A call that waits shows a host time near the queue's length and "stream busy after: no".
// Last line: the queue's time alone and with mapping cycles made while it runs, and the
// difference per cycle (what each slow path costs the kernels running meanwhile).
// Exit status 0 when measured, 77 without a usable GPU, 1 when a call failed. GPU only; the
// results go in bench/vmm/RESULTS-h200.md.
#include <dlfcn.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "shim/vmm/backend.hpp"
#include "shim/vmm/cuda_backend.hpp"

namespace cudefrag::vmm {
namespace {

constexpr int kSkip = 77;

// The few driver entry points the busy work needs, from libcuda directly (the backend does not
// launch work).
struct Driver {
  using CUresult = int;
  CUresult (*cuMemAlloc)(std::uint64_t*, std::size_t) = nullptr;
  CUresult (*cuMemFree)(std::uint64_t) = nullptr;
  CUresult (*cuMemsetD32Async)(std::uint64_t, unsigned, std::size_t, void*) = nullptr;
  CUresult (*cuStreamCreate)(void**, unsigned) = nullptr;
  CUresult (*cuStreamQuery)(void*) = nullptr;
  CUresult (*cuStreamSynchronize)(void*) = nullptr;

  bool load() {
    void* lib = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (lib == nullptr) return false;
    const auto get = [lib](auto& fn, const char* name) {
      fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(lib, name));
      return fn != nullptr;
    };
    return get(cuMemAlloc, "cuMemAlloc_v2") && get(cuMemFree, "cuMemFree_v2") &&
           get(cuMemsetD32Async, "cuMemsetD32Async") && get(cuStreamCreate, "cuStreamCreate") &&
           get(cuStreamQuery, "cuStreamQuery") && get(cuStreamSynchronize, "cuStreamSynchronize");
  }
};

constexpr int kNotReady = 600;  // CUDA_ERROR_NOT_READY
using Clock = std::chrono::steady_clock;

double ms_since(Clock::time_point t) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

struct Busy {
  Driver& d;
  void* stream = nullptr;
  std::uint64_t buffer = 0;
  std::size_t words = 0;
  int memsets = 1;

  // Queues `memsets` memsets of the buffer on the stream; returns at once.
  void start() const {
    for (int i = 0; i < memsets; ++i) {
      d.cuMemsetD32Async(buffer, 0x5a5a5a5au + static_cast<unsigned>(i), words, stream);
    }
  }
  bool busy() const { return d.cuStreamQuery(stream) == kNotReady; }
  void drain() const { d.cuStreamSynchronize(stream); }
};

struct Row {
  std::string call;
  double idle_ms = 0;
  double busy_ms = 0;
  bool busy_after = false;
  bool ok = true;
};

int run(double busy_target_ms) {
  Driver d;
  Status why = Status::kOk;
  std::unique_ptr<Backend> backend = make_cuda_backend(DeviceOrdinal{0}, &why);
  if (!d.load() || backend == nullptr) {
    const std::string_view reason = to_string(why);
    std::printf("busy_gpu_probe: no usable GPU (%.*s)\n", static_cast<int>(reason.size()),
                reason.data());
    return kSkip;
  }
  Busy b{d};
  b.words = (std::size_t{1} << 30) / 4;  // 1 GiB of 32-bit words
  if (d.cuStreamCreate(&b.stream, 1 /* non-blocking */) != 0 ||
      d.cuMemAlloc(&b.buffer, std::size_t{1} << 30) != 0) {
    std::printf("busy_gpu_probe: cannot set up the busy work\n");
    return 1;
  }
  // Size the queue: how long one memset of 1 GiB takes, then enough of them for the target.
  b.memsets = 4;
  auto t = Clock::now();
  b.start();
  b.drain();
  const double per = ms_since(t) / b.memsets;
  b.memsets = std::max(1, static_cast<int>(busy_target_ms / std::max(per, 0.01)));
  t = Clock::now();
  b.start();
  b.drain();
  const double queue_ms = ms_since(t);

  const Bytes size = MiB(64);
  const DeviceOrdinal self = backend->device();
  std::vector<Row> rows;
  // Each call runs once with the GPU idle and once right after the queue was started; `setup`
  // and `undo` bring the state the call needs and take it away, outside the timing.
  const auto probe = [&](const char* name, const std::function<void()>& setup,
                         const std::function<Status()>& call, const std::function<void()>& undo) {
    Row row{name};
    for (int busy = 0; busy < 2; ++busy) {
      setup();
      if (busy) b.start();
      const auto t0 = Clock::now();
      const Status s = call();
      const double ms = ms_since(t0);
      const bool still = b.busy();
      b.drain();
      undo();
      row.ok = row.ok && s == Status::kOk;
      (busy ? row.busy_ms : row.idle_ms) = ms;
      if (busy) row.busy_after = still;
    }
    rows.push_back(row);
  };

  DevicePtr va;
  PhysHandle h;
  if (backend->reserve(GiB(1), Bytes{}, &va) != Status::kOk) {
    std::printf("busy_gpu_probe: cannot reserve addresses\n");
    return 1;
  }
  const auto nothing = [] {};
  const auto make = [&] { (void)backend->create(size, Location::kDevice, &h); };
  const auto drop = [&] { (void)backend->release(h); };
  const auto make_map = [&] {
    make();
    (void)backend->map(va, size, h, Bytes{});
  };
  const auto unmap_drop = [&] {
    (void)backend->unmap(va, size);
    drop();
  };
  const auto make_map_access = [&] {
    make_map();
    (void)backend->set_access(va, size, std::span(&self, 1));
  };
  probe(
      "cuMemCreate 64 MiB", nothing, [&] { return backend->create(size, Location::kDevice, &h); },
      drop);
  probe(
      "cuMemMap 64 MiB", make, [&] { return backend->map(va, size, h, Bytes{}); }, unmap_drop);
  probe(
      "cuMemSetAccess 64 MiB", make_map,
      [&] { return backend->set_access(va, size, std::span(&self, 1)); }, unmap_drop);
  probe(
      "cuMemUnmap 64 MiB (accessible)", make_map_access, [&] { return backend->unmap(va, size); },
      drop);
  probe(
      "cuMemRelease 64 MiB (unmapped)", make, [&] { return backend->release(h); }, nothing);
  probe(
      "cuMemGetInfo", nothing,
      [&] {
        Bytes free, total;
        return backend->mem_info(&free, &total);
      },
      nothing);
  // The other way round: do the calls slow the GPU's work? Each map, access change and unmap
  // may invalidate the GPU's address translations while kernels run. The queue is timed alone,
  // then with create/map/access/unmap/release cycles of 64 MiB made for as long as it runs, each
  // three times, alternating; the difference per cycle is what a slow path costs the kernels.
  std::vector<double> alone, with;
  long cycles_total = 0;
  for (int rep = 0; rep < 3; ++rep) {
    t = Clock::now();
    b.start();
    b.drain();
    alone.push_back(ms_since(t));
    long cycles = 0;
    t = Clock::now();
    b.start();
    while (b.busy()) {
      make_map_access();
      unmap_drop();
      ++cycles;
    }
    b.drain();
    with.push_back(ms_since(t));
    cycles_total += cycles;
  }
  (void)backend->unreserve(va, GiB(1));
  d.cuMemFree(b.buffer);
  std::sort(alone.begin(), alone.end());
  std::sort(with.begin(), with.end());
  const double cycles_per_run = static_cast<double>(cycles_total) / 3;

  std::printf("busy_gpu_probe: a queue of %d memsets of 1 GiB keeps the stream busy for %.1f ms\n",
              b.memsets, queue_ms);
  std::printf("%-34s %12s %12s %18s\n", "call", "idle ms", "busy ms", "stream busy after");
  bool ok = true;
  for (const Row& r : rows) {
    std::printf("%-34s %12.3f %12.3f %18s%s\n", r.call.c_str(), r.idle_ms, r.busy_ms,
                r.busy_after ? "yes" : "no (waited)", r.ok ? "" : "  CALL FAILED");
    ok = ok && r.ok;
  }
  std::printf(
      "queue of memsets alone: %.2f ms (median of 3); with %.0f create/map/access/unmap/release "
      "cycles of 64 MiB made meanwhile: %.2f ms; %.4f ms per cycle\n",
      alone[1], cycles_per_run, with[1],
      cycles_per_run > 0 ? (with[1] - alone[1]) / cycles_per_run : 0.0);
  return ok ? 0 : 1;
}

}  // namespace
}  // namespace cudefrag::vmm

int main(int argc, char** argv) {
  double busy_ms = 40;
  if (argc > 1) {
    char* end = nullptr;
    busy_ms = std::strtod(argv[1], &end);
    if (end == argv[1] || *end != '\0' || !(busy_ms > 0 && busy_ms < 10000)) {
      std::fprintf(stderr, "usage: busy_gpu_probe [busy_ms in (0, 10000)]\n");
      return 64;
    }
  }
  return cudefrag::vmm::run(busy_ms);
}
