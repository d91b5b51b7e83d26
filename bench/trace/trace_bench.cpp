// Cost of one traced allocation on the allocating thread, per stack mode, and bytes per event
// on disk. Python stacks need an interpreter: python_bench.py measures them.
//
//   build/bench/trace/trace_bench [--benchmark_filter=...]
#include <benchmark/benchmark.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <random>
#include <string>
#include <utility>

#include "shim/trace/recorder.hpp"

namespace cudefrag::trace {
namespace {

std::string bench_path(const char* name) {
  return (std::filesystem::temp_directory_path() /
          ("cudefrag-trace-bench-" + std::to_string(getpid()) + "-" + name + ".trace"))
      .string();
}

[[gnu::noinline]] void call_site(Recorder& r, std::uint64_t i) {
  r.record_alloc({EntryPoint{0},
                  DeviceOrdinal{0},
                  nullptr,
                  DevicePtr{0x7f00'0000'0000u + (i << 21)},
                  MiB(2),
                  MiB(2),
                  0,
                  {}});
  benchmark::ClobberMemory();
}

// `depth` frames between the benchmark loop and the caller: native unwinding cost grows with
// depth, and a PyTorch allocation is typically 30-60 native frames deep.
[[gnu::noinline]] void nested(int depth, Recorder& r, benchmark::State& state) {
  if (depth > 0) {
    nested(depth - 1, r, state);
    benchmark::ClobberMemory();
    return;
  }
  std::uint64_t i = 0;
  for (auto _ : state) call_site(r, ++i);
}

// Arguments: stack mode, 1 to force libgcc's unwinder, call depth.
void BM_RecordAlloc(benchmark::State& state) {
  Options o;
  o.path = bench_path("alloc");
  o.stacks = static_cast<StackMode>(state.range(0));
  o.unwinder = state.range(1) != 0 ? NativeUnwinder::kLibgcc : NativeUnwinder::kAuto;
  // Large enough that the loop measures the allocating thread, not the writer keeping up.
  o.thread_buffer_bytes = std::size_t{16} << 20;
  auto r = Recorder::open(o);
  if (!r) {
    state.SkipWithError("cannot open the trace");
    return;
  }
  nested(static_cast<int>(state.range(2)), *r, state);
  r->close();
  const RecorderStats stats = r->stats();
  state.counters["bytes_per_event"] =
      static_cast<double>(stats.bytes_written) / static_cast<double>(state.iterations());
  state.counters["dropped"] = static_cast<double>(stats.records_dropped);
  std::remove(r->path().c_str());
}
BENCHMARK(BM_RecordAlloc)
    ->ArgNames({"stacks", "libgcc", "depth"})
    ->Args({0, 0, 30})
    ->Args({1, 0, 10})
    ->Args({1, 0, 30})
    ->Args({1, 0, 60})
    ->Args({1, 1, 10})
    ->Args({1, 1, 30})
    ->Args({1, 1, 60});

// Varying call paths: `levels` forks between the benchmark loop and the call site, each taken
// through one of two functions, so 2^levels distinct stacks of the same depth. The loop walks
// them in turn: no two consecutive allocations share a stack, as in a program whose call sites
// interleave. (All are defined in the first pass; the table lookups after that miss the CPU's
// caches more than one repeated stack does.)
[[gnu::noinline]] void fork_a(int level, std::uint64_t path, Recorder& r, std::uint64_t i);
[[gnu::noinline]] void fork_b(int level, std::uint64_t path, Recorder& r, std::uint64_t i);

void fork_step(int level, std::uint64_t path, Recorder& r, std::uint64_t i) {
  if (level == 0) {
    call_site(r, i);
  } else if ((path & 1) != 0) {
    fork_a(level - 1, path >> 1, r, i);
  } else {
    fork_b(level - 1, path >> 1, r, i);
  }
}
void fork_a(int level, std::uint64_t path, Recorder& r, std::uint64_t i) {
  fork_step(level, path, r, i);
  benchmark::ClobberMemory();
}
void fork_b(int level, std::uint64_t path, Recorder& r, std::uint64_t i) {
  fork_step(level, path, r, i);
  benchmark::ClobberMemory();
}

[[gnu::noinline]] void nested_paths(int depth, int levels, Recorder& r, benchmark::State& state) {
  if (depth > 0) {
    nested_paths(depth - 1, levels, r, state);
    benchmark::ClobberMemory();
    return;
  }
  const std::uint64_t paths_mask = (std::uint64_t{1} << levels) - 1;
  std::uint64_t i = 0;
  for (auto _ : state) {
    ++i;
    fork_step(levels, i & paths_mask, r, i);
  }
}

// Arguments: fork levels (0: one repeated stack), native call depth (forks included).
void BM_RecordAllocPaths(benchmark::State& state) {
  Options o;
  o.path = bench_path("paths");
  o.stacks = StackMode::kNative;
  o.thread_buffer_bytes = std::size_t{16} << 20;
  auto r = Recorder::open(o);
  if (!r) {
    state.SkipWithError("cannot open the trace");
    return;
  }
  const int levels = static_cast<int>(state.range(0));
  nested_paths(static_cast<int>(state.range(1)) - levels, levels, *r, state);
  r->close();
  const RecorderStats stats = r->stats();
  state.counters["stacks"] = static_cast<double>(stats.stacks);
  state.counters["dropped"] = static_cast<double>(stats.records_dropped);
  std::remove(r->path().c_str());
}
BENCHMARK(BM_RecordAllocPaths)
    ->ArgNames({"levels", "depth"})
    ->Args({0, 30})
    ->Args({12, 30})
    ->Args({0, 60})
    ->Args({12, 60});

// One distinct call site per N: each instantiation is its own function, so its own stack.
template <int N>
[[gnu::noinline]] void site(Recorder& r, std::uint64_t address, std::uint64_t size, bool alloc) {
  const void* stream = reinterpret_cast<const void*>(N % 2);
  if (alloc) {
    r.record_alloc({EntryPoint{2},
                    DeviceOrdinal{0},
                    stream,
                    DevicePtr{address},
                    Bytes{size},
                    Bytes{size},
                    0,
                    {}});
  } else {
    r.record_free(
        {EntryPoint{3}, DeviceOrdinal{0}, stream, DevicePtr{address}, Bytes{size}, 0, {}});
  }
  benchmark::ClobberMemory();
}

using Site = void (*)(Recorder&, std::uint64_t, std::uint64_t, bool);
constexpr int kSites = 40;

template <int... N>
constexpr std::array<Site, sizeof...(N)> make_sites(std::integer_sequence<int, N...>) {
  return {&site<N>...};
}
constexpr auto kSiteTable = make_sites(std::make_integer_sequence<int, kSites>());

// A diffusion-like mix: alloc/free pairs from 40 call sites, sizes from a few KiB to 256 MiB,
// 2 streams, native stacks. Reports what a trace costs on disk, with and without zstd.
void BM_BytesPerEvent(benchmark::State& state) {
  constexpr int kEvents = 200000;
  for (auto _ : state) {
    Options o;
    o.path = bench_path("bytes");
    o.stacks = StackMode::kNative;
    o.compress = state.range(0) != 0;
    auto r = Recorder::open(o);
    if (!r) {
      state.SkipWithError("cannot open the trace");
      return;
    }
    std::mt19937_64 random(42);
    std::vector<std::uint64_t> live;
    std::uint64_t next_address = 0x7f00'0000'0000u;
    for (int i = 0; i < kEvents; ++i) {
      const bool alloc = live.size() < 64 || (live.size() < 4096 && random() % 2 == 0);
      const std::size_t at = random() % kSites;
      if (alloc) {
        const std::uint64_t size = std::uint64_t{512} << (random() % 20);
        kSiteTable[at](*r, next_address, size, true);
        live.push_back(next_address);
        next_address += (size + (2u << 20) - 1) & ~std::uint64_t{(2u << 20) - 1};
      } else {
        const std::size_t victim = random() % live.size();
        kSiteTable[at](*r, live[victim], 0, false);
        live[victim] = live.back();
        live.pop_back();
      }
    }
    r->close();
    const RecorderStats stats = r->stats();
    state.counters["bytes_per_event"] = static_cast<double>(stats.bytes_written) / kEvents;
    state.counters["stacks"] = static_cast<double>(stats.stacks);
    std::remove(r->path().c_str());
  }
}
BENCHMARK(BM_BytesPerEvent)
    ->ArgName("zstd")
    ->Arg(0)
    ->Arg(1)
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace cudefrag::trace

BENCHMARK_MAIN();
