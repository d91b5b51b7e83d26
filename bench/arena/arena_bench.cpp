// Arena benchmarks (Google Benchmark). The same program runs on the host backend (default) and on
// the GPU (CUDEFRAG_BENCH_BACKEND=cuda: the CUDA backend on device 0).
//
//   cached_pair/<bytes>/threads:<n>  allocate + free served from the arena's caches, on the
//                                    default stream, n threads sharing one arena. Target on the
//                                    H200: <= 0.3 us median per pair.
//   stitch_1GiB/<piece MiB>/<max pieces>
//                                    a 1 GiB request when the arena is full (limit 2 GiB) of
//                                    blocks of <piece> MiB, every other one freed: the free memory
//                                    is scattered over 1 GiB / piece handles, none adjacent to
//                                    another. Timed: the request alone (unmap of the holes, release
//                                    of what is not stitched, create of the rest, map, access).
//                                    <max pieces> is ArenaOptions::max_stitch_pieces. Target on the
//                                    H200: <= 5 ms.
//   fresh_range/<bytes>              a request served by new physical memory (create + map +
//                                    access), the arena otherwise empty; compare with cudaMalloc.
//
// Medians: --benchmark_repetitions=5 --benchmark_report_aggregates_only=true
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "shim/arena/arena.hpp"
#include "shim/vmm/cuda_backend.hpp"
#include "shim/vmm/host_backend.hpp"

namespace cudefrag::arena {
namespace {

constexpr AllocKind kAsync = AllocKind::kStreamOrdered;
constexpr FreeKind kAsyncFree = FreeKind::kStreamOrdered;

bool use_cuda() {
  const char* env = std::getenv("CUDEFRAG_BENCH_BACKEND");
  return env != nullptr && std::string_view(env) == "cuda";
}

// The CUDA backend when asked for, else a host backend of `host_capacity` (untouched host memory
// costs nothing, so the capacity can be large).
std::unique_ptr<vmm::Backend> make_backend(Bytes host_capacity) {
  if (use_cuda()) {
    vmm::Status why = vmm::Status::kOk;
    auto backend = vmm::make_cuda_backend(DeviceOrdinal{0}, &why);
    if (backend == nullptr) {
      std::fprintf(stderr, "CUDA backend unavailable: %s\n", std::string(to_string(why)).c_str());
    }
    return backend;
  }
  vmm::HostBackendOptions options;
  options.capacity = host_capacity;
  return vmm::make_host_backend(options);
}

std::unique_ptr<Arena> make_arena(Bytes host_capacity, const ArenaOptions& options) {
  auto backend = make_backend(host_capacity);
  if (backend == nullptr) return nullptr;
  vmm::Status why = vmm::Status::kOk;
  auto arena = Arena::create(std::move(backend), options, &why);
  if (arena == nullptr) {
    std::fprintf(stderr, "arena: %s\n", std::string(to_string(why)).c_str());
  }
  return arena;
}

// One arena for every cached_pair run, as a process has one per device.
Arena* shared_arena() {
  static const std::unique_ptr<Arena> arena = make_arena(GiB(64), ArenaOptions{});
  return arena.get();
}

void cached_pair(benchmark::State& state) {
  Arena* arena = shared_arena();
  if (arena == nullptr) {
    state.SkipWithError("no arena");
    return;
  }
  const Bytes size{static_cast<std::uint64_t>(state.range(0))};
  // Warm: the first pair of each thread may create memory.
  const AllocResult warm = arena->allocate(size, {}, kAsync);
  if (!warm.ok()) {
    state.SkipWithError("allocation failed");
    return;
  }
  arena->free(warm.ptr, {}, kAsyncFree);
  const std::uint64_t slow_before = arena->stats().slow_allocations;
  for (auto _ : state) {
    const AllocResult r = arena->allocate(size, {}, kAsync);
    benchmark::DoNotOptimize(r.ptr);
    arena->free(r.ptr, {}, kAsyncFree);
  }
  if (state.thread_index() == 0) {
    state.counters["slow"] = static_cast<double>(arena->stats().slow_allocations - slow_before);
  }
}
BENCHMARK(cached_pair)
    ->Name("cached_pair")
    ->Arg(512)
    ->Arg(4 << 10)
    ->Arg(64 << 10)
    ->Arg(1 << 20)
    ->Arg(4 << 20)
    ->Arg(64 << 20)
    ->Arg(1 << 30)
    ->Threads(1)
    ->Threads(4)
    ->Threads(16)
    ->UseRealTime();

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void stitch_1gib(benchmark::State& state) {
  const Bytes piece = MiB(static_cast<std::uint64_t>(state.range(0)));
  ArenaOptions options;
  options.limit = GiB(2);
  options.max_stitch_pieces = static_cast<std::uint32_t>(state.range(1));
  auto arena = make_arena(GiB(4), options);
  if (arena == nullptr) {
    state.SkipWithError("no arena");
    return;
  }
  const std::size_t blocks = GiB(2) / piece;
  std::vector<DevicePtr> live(blocks);
  std::uint64_t handles_unmapped = 0;
  std::uint64_t handles_stitched = 0;
  for (auto _ : state) {
    for (DevicePtr& p : live) {
      const AllocResult r = arena->allocate(piece, {}, kAsync);
      if (!r.ok()) {
        state.SkipWithError("fill failed");
        return;
      }
      p = r.ptr;
    }
    for (std::size_t i = 0; i < blocks; i += 2) arena->free(live[i], {}, kAsyncFree);
    (void)arena->trim(GiB(1024));  // fences the frees; releases nothing
    const ArenaStats before = arena->stats();

    const auto start = std::chrono::steady_clock::now();
    const AllocResult big = arena->allocate(GiB(1), {}, kAsync);
    state.SetIterationTime(seconds_since(start));
    if (!big.ok()) {
      state.SkipWithError("stitch failed");
      return;
    }
    const ArenaStats after = arena->stats();
    handles_unmapped += after.reclaims - before.reclaims;
    handles_stitched += after.remaps - before.remaps;

    arena->free(big.ptr, {}, kAsyncFree);
    for (std::size_t i = 1; i < blocks; i += 2) arena->free(live[i], {}, kAsyncFree);
    (void)arena->trim(Bytes{0});
  }
  const auto avg = benchmark::Counter::kAvgIterations;
  state.counters["holes_unmapped"] = benchmark::Counter(static_cast<double>(handles_unmapped), avg);
  state.counters["handles_stitched"] =
      benchmark::Counter(static_cast<double>(handles_stitched), avg);
}
BENCHMARK(stitch_1gib)
    ->Name("stitch_1GiB")
    ->Args({2, 16})
    ->Args({2, 1024})
    ->Args({16, 16})
    ->Args({16, 1024})
    ->Args({64, 16})
    ->Iterations(5)
    ->UseManualTime()
    ->Unit(benchmark::kMillisecond);

void fresh_range(benchmark::State& state) {
  const Bytes size{static_cast<std::uint64_t>(state.range(0))};
  auto arena = make_arena(GiB(4), ArenaOptions{});
  if (arena == nullptr) {
    state.SkipWithError("no arena");
    return;
  }
  for (auto _ : state) {
    const auto start = std::chrono::steady_clock::now();
    const AllocResult r = arena->allocate(size, {}, kAsync);
    state.SetIterationTime(seconds_since(start));
    if (!r.ok()) {
      state.SkipWithError("allocation failed");
      return;
    }
    arena->free(r.ptr, {}, kAsyncFree);
    (void)arena->trim(Bytes{0});
  }
}
BENCHMARK(fresh_range)
    ->Name("fresh_range")
    ->Arg(2 << 20)
    ->Arg(64 << 20)
    ->Arg(1 << 30)
    ->Iterations(20)
    ->UseManualTime()
    ->Unit(benchmark::kMicrosecond);

}  // namespace
}  // namespace cudefrag::arena

BENCHMARK_MAIN();
