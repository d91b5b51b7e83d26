// Writes a large synthetic trace with the real recorder (shim/trace/recorder.hpp): several
// threads allocating and freeing from many call sites, arena events and counters, for
// bench/analyzer/report_bench.py.
//
//   analyzer_synthetic_trace OUT [--events N] [--threads T] [--stacks none|native]
#include <array>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "shim/trace/recorder.hpp"

namespace {

using namespace cudefrag;
using trace::Recorder;

// Distinct functions, so that native stacks differ by call site.
template <int I>
[[gnu::noinline]] void site(Recorder& r, const trace::AllocEvent& e) {
  r.record_alloc(e);
  asm volatile("" ::: "memory");
}

template <std::size_t... I>
constexpr auto make_sites(std::index_sequence<I...>) {
  return std::array<void (*)(Recorder&, const trace::AllocEvent&), sizeof...(I)>{
      &site<static_cast<int>(I)>...};
}
constexpr auto kSites = make_sites(std::make_index_sequence<40>());

// Times are taken by the recorder as the events happen, as in a real program.
void run_thread(Recorder& r, int index, std::uint64_t events) {
  std::mt19937_64 random(static_cast<std::uint64_t>(index) + 1);
  std::vector<std::pair<std::uint64_t, std::uint64_t>> live;
  std::uint64_t address = 0x7000'0000'0000 + (static_cast<std::uint64_t>(index) << 40);
  const DeviceOrdinal device{index % 2};
  for (std::uint64_t i = 0; i < events; ++i) {
    const bool alloc = live.size() < 16 || (live.size() < 4096 && random() % 2 == 0);
    if (alloc) {
      const std::uint64_t size = std::uint64_t{512} << (random() % 19);
      const std::uint64_t granted = (size + 511) & ~std::uint64_t{511};
      kSites[random() % kSites.size()](r, {trace::EntryPoint{0},
                                           device,
                                           nullptr,
                                           DevicePtr{address},
                                           Bytes{size},
                                           Bytes{granted},
                                           0,
                                           {}});
      live.emplace_back(address, granted);
      address += (granted + 0xFFFFF) & ~std::uint64_t{0xFFFFF};
    } else {
      const std::size_t victim = random() % live.size();
      r.record_free({trace::EntryPoint{1},
                     device,
                     nullptr,
                     DevicePtr{live[victim].first},
                     Bytes{live[victim].second},
                     0,
                     {}});
      live[victim] = live.back();
      live.pop_back();
    }
    if (i % 1000 == 999) {
      r.record_arena_event(
          {trace::ArenaEventKind::kPhysicalCreate, device, DevicePtr{}, MiB(64), Bytes{}, 32});
    }
    // Faster than any program allocates GPU memory: wait for the writer now and then, or it
    // would fall behind and drop records.
    if (i % 2048 == 2047) r.flush_sync();
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s OUT [--events N] [--threads T] [--stacks none|native]\n",
                 argv[0]);
    return 2;
  }
  std::uint64_t events = 10'000'000;
  int threads = 2;
  trace::StackMode stacks = trace::StackMode::kNative;
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string_view option = argv[i];
    if (option == "--events") {
      events = std::strtoull(argv[i + 1], nullptr, 10);
    } else if (option == "--threads") {
      threads = std::max(1, std::atoi(argv[i + 1]));
    } else if (option == "--stacks") {
      stacks = trace::parse_stack_mode(argv[i + 1]).value_or(trace::StackMode::kNative);
    }
  }
  trace::Options o;
  o.path = argv[1];
  o.stacks = stacks;
  o.entry_points = {"cudaMallocAsync", "cudaFreeAsync"};
  o.gpus = {{DeviceOrdinal{0}, "Synthetic GPU 0", {}, GiB(80)},
            {DeviceOrdinal{1}, "Synthetic GPU 1", {}, GiB(80)}};
  auto recorder = Recorder::open(o);
  if (!recorder) return 1;
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back(run_thread, std::ref(*recorder), t,
                         events / static_cast<std::uint64_t>(threads));
  }
  for (std::thread& w : workers) w.join();
  recorder->close();
  const trace::RecorderStats s = recorder->stats();
  std::printf("%llu records (%llu dropped), %llu bytes, %llu stacks\n",
              static_cast<unsigned long long>(s.records_written),
              static_cast<unsigned long long>(s.records_dropped),
              static_cast<unsigned long long>(s.bytes_written),
              static_cast<unsigned long long>(s.stacks));
  return 0;
}
