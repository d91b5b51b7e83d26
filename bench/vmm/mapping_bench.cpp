// What mapping costs, per GiB, as a function of the physical chunk size: the figures from which
// the arena chooses its chunk size. Every benchmark handles exactly 1 GiB per iteration, so each
// figure below is microseconds per GiB.
//
//   build/<chunk>/<access>:  create + map + set_access + unmap + release of 1 GiB made of chunks
//                            (what growing and shrinking the arena costs);
//   stitch/<chunk>/<access>: map + set_access of 1 GiB from chunks that already exist (what a
//                            stitch costs; unmap_us says what undoing it costs);
//   access_pieces/<piece>:   set_access over 1 GiB mapped as pieces of ONE 1 GiB handle; against
//                            stitch/<chunk>/whole_range, it would tell whether set_access scales
//                            with handles or with mapping pieces. CUDA only, and a probe: driver
//                            580 refuses cuMemMap at a non-zero offset (backend.hpp), so every
//                            piece but the whole handle reports "not supported"; it stays to tell
//                            when a driver allows it.
// <access> is per_chunk (one set_access per chunk) or whole_range (one call over the GiB).
// Counters split the time by operation (create_us, map_us, access_us, unmap_us, release_us).
//
// Runs on the CUDA backend (device 0; skipped without a GPU) and on the host backend (for CI-side
// sanity of the benchmark itself; its figures say nothing about the GPU).
#include <benchmark/benchmark.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "shim/vmm/backend.hpp"
#include "shim/vmm/cuda_backend.hpp"
#include "shim/vmm/host_backend.hpp"

namespace cudefrag::vmm {
namespace {

constexpr Bytes kTotal = GiB(1);
constexpr std::array kChunkMiB{2u, 8u, 32u, 64u, 128u, 512u, 1024u};

enum class Access { kPerChunk, kWholeRange };

using Clock = std::chrono::steady_clock;

double micros_since(Clock::time_point start) {
  return std::chrono::duration<double, std::micro>(Clock::now() - start).count();
}

// Sums the time of each operation over the iterations, reported as per-iteration counters.
struct PhaseTimes {
  double create = 0;
  double map = 0;
  double access = 0;
  double unmap = 0;
  double release = 0;

  void report(benchmark::State& state) const {
    const auto avg = benchmark::Counter::kAvgIterations;
    if (create > 0) state.counters["create_us"] = benchmark::Counter(create, avg);
    if (map > 0) state.counters["map_us"] = benchmark::Counter(map, avg);
    if (access > 0) state.counters["access_us"] = benchmark::Counter(access, avg);
    if (unmap > 0) state.counters["unmap_us"] = benchmark::Counter(unmap, avg);
    if (release > 0) state.counters["release_us"] = benchmark::Counter(release, avg);
  }
};

bool fail(benchmark::State& state, const char* what, Status s) {
  const std::string message = std::string(what) + ": " + std::string(to_string(s));
  state.SkipWithError(message.c_str());
  return false;
}

// A 1 GiB reservation for the length of one benchmark.
class Range {
 public:
  explicit Range(Backend& b) : b_(b) { status_ = b_.reserve(kTotal, Bytes{0}, &base_); }
  ~Range() {
    if (status_ == Status::kOk) b_.unreserve(base_, kTotal);
  }
  Range(const Range&) = delete;
  Range& operator=(const Range&) = delete;
  Status status() const { return status_; }
  DevicePtr base() const { return base_; }

 private:
  Backend& b_;
  DevicePtr base_;
  Status status_;
};

bool create_chunks(Backend& b, Bytes chunk, std::vector<PhysHandle>& out) {
  out.clear();
  for (Bytes done{0}; done < kTotal; done += chunk) {
    PhysHandle h;
    if (b.create(chunk, Location::kDevice, &h) != Status::kOk) return false;
    out.push_back(h);
  }
  return true;
}

void release_chunks(Backend& b, std::vector<PhysHandle>& handles) {
  for (PhysHandle h : handles) b.release(h);
  handles.clear();
}

// Maps handles[i] (each `chunk` long, from `offset_step * i` into it) at base + chunk * i.
Status map_all(Backend& b, DevicePtr base, Bytes chunk, const std::vector<PhysHandle>& handles,
               Bytes offset_step) {
  for (std::size_t i = 0; i < handles.size(); ++i) {
    const Status s = b.map(base + chunk * i, chunk, handles[i], offset_step * i);
    if (s != Status::kOk) return s;
  }
  return Status::kOk;
}

Status access_all(Backend& b, DevicePtr base, Bytes chunk, Access access) {
  const std::array devices{b.device()};
  if (access == Access::kWholeRange) return b.set_access(base, kTotal, devices);
  for (Bytes at{0}; at < kTotal; at += chunk) {
    const Status s = b.set_access(base + at, chunk, devices);
    if (s != Status::kOk) return s;
  }
  return Status::kOk;
}

Status unmap_all(Backend& b, DevicePtr base, Bytes chunk) {
  for (Bytes at{0}; at < kTotal; at += chunk) {
    const Status s = b.unmap(base + at, chunk);
    if (s != Status::kOk) return s;
  }
  return Status::kOk;
}

void build(benchmark::State& state, Backend* b, Bytes chunk, Access access) {
  Range range(*b);
  if (range.status() != Status::kOk) return void(fail(state, "reserve", range.status()));
  PhaseTimes t;
  std::vector<PhysHandle> handles;
  for (auto _ : state) {
    auto start = Clock::now();
    if (!create_chunks(*b, chunk, handles)) {
      release_chunks(*b, handles);
      return void(fail(state, "create", Status::kOutOfMemory));
    }
    t.create += micros_since(start);
    start = Clock::now();
    Status s = map_all(*b, range.base(), chunk, handles, Bytes{0});
    t.map += micros_since(start);
    if (s == Status::kOk) {
      start = Clock::now();
      s = access_all(*b, range.base(), chunk, access);
      t.access += micros_since(start);
      start = Clock::now();
      const Status u = unmap_all(*b, range.base(), chunk);
      t.unmap += micros_since(start);
      if (s == Status::kOk) s = u;
    }
    start = Clock::now();
    release_chunks(*b, handles);
    t.release += micros_since(start);
    if (s != Status::kOk) return void(fail(state, "map, set_access or unmap", s));
  }
  t.report(state);
}

void stitch(benchmark::State& state, Backend* b, Bytes chunk, Access access) {
  Range range(*b);
  if (range.status() != Status::kOk) return void(fail(state, "reserve", range.status()));
  std::vector<PhysHandle> handles;
  if (!create_chunks(*b, chunk, handles)) {
    release_chunks(*b, handles);
    return void(fail(state, "create", Status::kOutOfMemory));
  }
  PhaseTimes t;
  for (auto _ : state) {
    auto start = Clock::now();
    Status s = map_all(*b, range.base(), chunk, handles, Bytes{0});
    const double map_us = micros_since(start);
    start = Clock::now();
    if (s == Status::kOk) s = access_all(*b, range.base(), chunk, access);
    const double access_us = micros_since(start);
    state.SetIterationTime((map_us + access_us) / 1e6);
    t.map += map_us;
    t.access += access_us;
    start = Clock::now();
    const Status u = unmap_all(*b, range.base(), chunk);
    t.unmap += micros_since(start);
    if (s == Status::kOk) s = u;
    if (s != Status::kOk) {
      release_chunks(*b, handles);
      return void(fail(state, "map, set_access or unmap", s));
    }
  }
  release_chunks(*b, handles);
  t.report(state);
}

void access_pieces(benchmark::State& state, Backend* b, Bytes piece) {
  Range range(*b);
  if (range.status() != Status::kOk) return void(fail(state, "reserve", range.status()));
  PhysHandle big;
  if (const Status s = b->create(kTotal, Location::kDevice, &big); s != Status::kOk) {
    return void(fail(state, "create", s));
  }
  const std::vector<PhysHandle> pieces(kTotal / piece, big);
  PhaseTimes t;
  for (auto _ : state) {
    Status s = map_all(*b, range.base(), piece, pieces, piece);
    if (s != Status::kOk) {
      b->release(big);
      return void(fail(state, "map at an offset", s));
    }
    const auto start = Clock::now();
    s = b->set_access(range.base(), kTotal, std::array{b->device()});
    const double access_us = micros_since(start);
    state.SetIterationTime(access_us / 1e6);
    t.access += access_us;
    const Status u = unmap_all(*b, range.base(), piece);
    if (s == Status::kOk) s = u;
    if (s != Status::kOk) {
      b->release(big);
      return void(fail(state, "set_access or unmap", s));
    }
  }
  b->release(big);
  t.report(state);
}

std::string mib(unsigned n) {
  return std::to_string(n) + "MiB";
}

const char* name(Access a) {
  return a == Access::kPerChunk ? "per_chunk" : "whole_range";
}

void register_all(const std::string& prefix, Backend* b, bool with_pieces) {
  constexpr Access kAccesses[] = {Access::kPerChunk, Access::kWholeRange};
  for (unsigned chunk : kChunkMiB) {
    for (Access a : kAccesses) {
      benchmark::RegisterBenchmark((prefix + "/build/" + mib(chunk) + "/" + name(a)).c_str(), build,
                                   b, MiB(chunk), a)
          ->Unit(benchmark::kMicrosecond)
          ->UseRealTime();
    }
  }
  for (unsigned chunk : kChunkMiB) {
    for (Access a : kAccesses) {
      benchmark::RegisterBenchmark((prefix + "/stitch/" + mib(chunk) + "/" + name(a)).c_str(),
                                   stitch, b, MiB(chunk), a)
          ->Unit(benchmark::kMicrosecond)
          ->UseManualTime();
    }
  }
  if (!with_pieces) return;
  for (unsigned piece : kChunkMiB) {
    benchmark::RegisterBenchmark((prefix + "/access_pieces/" + mib(piece)).c_str(), access_pieces,
                                 b, MiB(piece))
        ->Unit(benchmark::kMicrosecond)
        ->UseManualTime();
  }
}

}  // namespace
}  // namespace cudefrag::vmm

int main(int argc, char** argv) {
  using namespace cudefrag;
  using namespace cudefrag::vmm;
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;

  Status why = Status::kOk;
  std::unique_ptr<Backend> cuda = make_cuda_backend(DeviceOrdinal{0}, &why);
  if (cuda != nullptr) {
    register_all("cuda", cuda.get(), true);
  } else {
    std::printf("CUDA backend not available (%s): CUDA benchmarks skipped\n",
                std::string(to_string(why)).c_str());
  }
  // Room for the 1 GiB being built plus 1 GiB of existing chunks; memfd pages are never touched.
  std::unique_ptr<Backend> host =
      make_host_backend(HostBackendOptions{DeviceOrdinal{0}, MiB(2), GiB(4)});
  register_all("host", host.get(), false);

  std::printf(
      "Each iteration handles 1 GiB: Time and the *_us counters are microseconds per GiB.\n");
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
