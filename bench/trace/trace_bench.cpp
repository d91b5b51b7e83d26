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
