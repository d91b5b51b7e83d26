// Many threads, many streams: each of --threads threads owns two non-blocking streams and keeps a
// small ring of live cudaMallocAsync buffers on each. Every step retires the oldest buffer of a
// ring (checks its pattern, then cudaFreeAsync, on its own stream or, every third time, on the
// thread's other stream after an event) and allocates and fills a new one of a random size.
//
// What it guards: stream-ordered reuse. Memory freed on stream A may be handed to later work on A
// at once, but to another stream only once the free has completed on A. An allocator that breaks
// this lets a new owner's fill land in a buffer whose pattern is still to be checked, and the
// check counts the overwritten words. A short sleep kernel before some checks widens the window.
//
// Prints the calls it made (call_log.hpp). Exit 0 only when every pattern held; 2 without a GPU.
// Usage: stress_streams [--threads N] [--iterations N]

#include <cuda_runtime.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "examples/cuda/call_log.hpp"
#include "examples/cuda/pattern.cuh"
#include "examples/cuda/runtime_check.hpp"

namespace cudefrag::examples {
namespace {

constexpr int kStreamsPerThread = 2;
constexpr std::size_t kRing = 4;  // live buffers per stream
constexpr std::array<std::size_t, 6> kSizes = {512,           64 << 10, 1 << 20,
                                               (2 << 20) + 1, 6 << 20,  16 << 20};

__global__ void sleep_kernel(unsigned nanoseconds) {
  for (unsigned slept = 0; slept < nanoseconds; slept += 1000) __nanosleep(1000);
}

struct Options {
  int threads = 8;
  int iterations = 1000;
};

struct Buffer {
  void* ptr = nullptr;
  std::size_t bytes = 0;
  std::uint64_t seed = 0;
};

struct Outcome {
  unsigned long long mismatches = 0;
  std::size_t buffers = 0;
  std::string error;
};

class Worker {
 public:
  Worker(int id, const Options& opt, CallLog& log) : id_(id), opt_(opt), log_(log), rng_(id) {}

  Outcome run() {
    Outcome out;
    try {
      check(cudaSetDevice(0), "cudaSetDevice");
      for (auto& s : streams_) {
        check(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "cudaStreamCreate");
      }
      check(cudaEventCreateWithFlags(&handoff_, cudaEventDisableTiming), "cudaEventCreate");
      log_.add("cudaMalloc", sizeof(unsigned long long));
      check(cudaMalloc(&errors_, sizeof(unsigned long long)), "cudaMalloc");
      check(cudaMemset(errors_, 0, sizeof(unsigned long long)), "cudaMemset");

      for (int it = 0; it < opt_.iterations; ++it) {
        for (int si = 0; si < kStreamsPerThread; ++si) {
          Buffer& slot = rings_[si][static_cast<std::size_t>(it) % kRing];
          if (slot.ptr != nullptr) retire(slot, si, it);
          slot = allocate(si, it);
          ++out.buffers;
        }
      }
      for (int si = 0; si < kStreamsPerThread; ++si) {
        for (Buffer& slot : rings_[si]) {
          if (slot.ptr != nullptr) retire(slot, si, 0);
        }
      }
      for (auto& s : streams_) check(cudaStreamSynchronize(s), "cudaStreamSynchronize");
      check(cudaMemcpy(&out.mismatches, errors_, sizeof out.mismatches, cudaMemcpyDeviceToHost),
            "cudaMemcpy");
      log_.add("cudaFree");
      check(cudaFree(errors_), "cudaFree");
      check(cudaEventDestroy(handoff_), "cudaEventDestroy");
      for (auto& s : streams_) check(cudaStreamDestroy(s), "cudaStreamDestroy");
    } catch (const std::exception& e) {
      out.error = "thread " + std::to_string(id_) + ": " + e.what();
    }
    return out;
  }

 private:
  Buffer allocate(int si, int it) {
    Buffer b;
    b.bytes = kSizes[rng_() % kSizes.size()] + rng_() % 64;
    b.seed = (static_cast<std::uint64_t>(id_) << 40) | (static_cast<std::uint64_t>(si) << 32) |
             static_cast<std::uint64_t>(it);
    log_.add("cudaMallocAsync", b.bytes);
    check(cudaMallocAsync(&b.ptr, b.bytes, streams_[si]), "cudaMallocAsync");
    expect(b.ptr != nullptr, "cudaMallocAsync returned a pointer");
    const Rows r = linear_rows(b.ptr, b.bytes);
    fill_pattern<<<grid_for(r), 256, 0, streams_[si]>>>(r, b.seed);
    check(cudaGetLastError(), "fill_pattern launch");
    return b;
  }

  void retire(Buffer& b, int si, int it) {
    cudaStream_t own = streams_[si];
    cudaStream_t other = streams_[1 - si];
    if (it % 8 == 5) {
      sleep_kernel<<<1, 1, 0, own>>>(20000);
      check(cudaGetLastError(), "sleep_kernel launch");
    }
    const Rows r = linear_rows(b.ptr, b.bytes);
    check_pattern<<<grid_for(r), 256, 0, own>>>(r, b.seed, errors_);
    check(cudaGetLastError(), "check_pattern launch");
    log_.add("cudaFreeAsync");
    if (it % 3 == 0) {
      check(cudaEventRecord(handoff_, own), "cudaEventRecord");
      check(cudaStreamWaitEvent(other, handoff_, 0), "cudaStreamWaitEvent");
      check(cudaFreeAsync(b.ptr, other), "cudaFreeAsync");
    } else {
      check(cudaFreeAsync(b.ptr, own), "cudaFreeAsync");
    }
    b = Buffer{};
  }

  int id_;
  const Options& opt_;
  CallLog& log_;
  std::mt19937_64 rng_;
  std::array<cudaStream_t, kStreamsPerThread> streams_{};
  cudaEvent_t handoff_ = nullptr;
  unsigned long long* errors_ = nullptr;
  std::array<std::array<Buffer, kRing>, kStreamsPerThread> rings_{};
};

bool parse(int argc, char** argv, Options& opt) {
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string_view arg = argv[i];
    const int value = std::atoi(argv[i + 1]);
    if (value <= 0) return false;
    if (arg == "--threads") {
      opt.threads = value;
    } else if (arg == "--iterations") {
      opt.iterations = value;
    } else {
      return false;
    }
  }
  return argc % 2 == 1;
}

int run(int argc, char** argv) {
  Options opt;
  if (!parse(argc, argv, opt)) {
    std::fprintf(stderr, "usage: stress_streams [--threads N] [--iterations N]\n");
    return 64;
  }
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
    std::printf("[stress_streams] no CUDA device: nothing to check\n");
    return 2;
  }
  CallLog log("stress_streams");
  std::vector<Outcome> outcomes(static_cast<std::size_t>(opt.threads));
  const auto start = std::chrono::steady_clock::now();
  {
    std::vector<std::jthread> threads;
    for (int t = 0; t < opt.threads; ++t) {
      threads.emplace_back([&, t] {
        Worker w(t, opt, log);
        outcomes[static_cast<std::size_t>(t)] = w.run();
      });
    }
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  bool pass = true;
  unsigned long long mismatches = 0;
  std::size_t buffers = 0;
  for (const Outcome& o : outcomes) {
    if (!o.error.empty()) {
      std::fprintf(stderr, "[stress_streams] %s\n", o.error.c_str());
      pass = false;
    }
    mismatches += o.mismatches;
    buffers += o.buffers;
  }
  if (mismatches != 0) pass = false;
  std::printf("%d threads x %d streams: %zu buffers, %llu mismatching words, %.2f s\n", opt.threads,
              kStreamsPerThread, buffers, mismatches, seconds);
  log.print();
  log.verdict(pass);
  return pass ? 0 : 1;
}

}  // namespace
}  // namespace cudefrag::examples

int main(int argc, char** argv) {
  try {
    return cudefrag::examples::run(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "[stress_streams] %s\n", e.what());
    return 1;
  }
}
