// The time the passthrough hooks add to one allocate/free pair through the CUDA runtime.
//
//   async: cudaMallocAsync(1 MiB) + cudaFreeAsync on one stream, from a warm default pool (its
//          release threshold raised so that freed memory stays in the pool between syncs)
//   sync:  cudaMalloc(2 MiB) + cudaFree
//
// Two paths to the same runtime in one process, in alternating blocks:
//   linked  the program's own calls, which a preloaded shim interposes on
//   direct  the same functions looked up in libcudart itself (dlsym on its handle), which bypass
//           the shim
// Comparing runs with and without the shim across processes was too noisy to use: on an H200
// host, three runs of the same binary gave medians of 1148, 1258 and 1508 ns per async pair.
// Alternating blocks in one process sees the same machine state on both paths, and the median of
// the per-block differences is the added time. Without the shim both paths are the same function
// and that difference is the noise floor.
//
// Each pair is timed on its own with steady_clock (about 20 ns, on both paths alike). Output:
//   RESULT bench=<name> path=<linked|direct> bytes=<n> pairs=<n> median_ns=<x> p90_ns=<x>
//          p99_ns=<x> mean_ns=<x>
//   RESULT bench=<name> added_ns=<x> bypass=<yes|no>
// bypass=no: both paths reached the same function (no shim, or one that also answers dlsym on
// libcudart), so added_ns is noise. No timing is asserted; exit 1 on a CUDA error, 2 without a
// GPU. Usage: passthrough_bench [--async-blocks N] [--sync-blocks N]

#include <cuda_runtime_api.h>
#include <dlfcn.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <numeric>
#include <string_view>
#include <vector>

namespace {

constexpr std::size_t kAsyncBytes = std::size_t{1} << 20;
constexpr std::size_t kSyncBytes = std::size_t{2} << 20;
constexpr int kAsyncPairsPerBlock = 2000;
constexpr int kSyncPairsPerBlock = 50;

struct Runtime {
  decltype(&::cudaMallocAsync) malloc_async = nullptr;
  decltype(&::cudaFreeAsync) free_async = nullptr;
  decltype(&::cudaMalloc) malloc = nullptr;
  decltype(&::cudaFree) free = nullptr;
};

Runtime linked_runtime() {
  return Runtime{&::cudaMallocAsync, &::cudaFreeAsync, &::cudaMalloc, &::cudaFree};
}

// The runtime's own definitions, found in the loaded libcudart rather than through the dynamic
// linker's search order (which puts a preloaded library first). Null members when not found.
Runtime direct_runtime() {
  Runtime r;
  void* cudart = dlopen("libcudart.so.13", RTLD_NOW | RTLD_NOLOAD);
  if (cudart == nullptr) return r;
  r.malloc_async = reinterpret_cast<decltype(r.malloc_async)>(dlsym(cudart, "cudaMallocAsync"));
  r.free_async = reinterpret_cast<decltype(r.free_async)>(dlsym(cudart, "cudaFreeAsync"));
  r.malloc = reinterpret_cast<decltype(r.malloc)>(dlsym(cudart, "cudaMalloc"));
  r.free = reinterpret_cast<decltype(r.free)>(dlsym(cudart, "cudaFree"));
  return r;
}

bool ok(cudaError_t err, const char* what) {
  if (err == cudaSuccess) return true;
  std::fprintf(stderr, "%s failed: %s\n", what, cudaGetErrorName(err));
  return false;
}

double median_of(std::vector<double> v) {
  std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(v.size() / 2), v.end());
  return v[v.size() / 2];
}

void report_path(const char* name, const char* path, std::size_t bytes, std::vector<double> ns) {
  std::sort(ns.begin(), ns.end());
  const auto at = [&](double q) {
    return ns[std::min(ns.size() - 1,
                       static_cast<std::size_t>(q * static_cast<double>(ns.size())))];
  };
  const double mean = std::accumulate(ns.begin(), ns.end(), 0.0) / static_cast<double>(ns.size());
  std::printf(
      "RESULT bench=%s path=%s bytes=%zu pairs=%zu median_ns=%.0f p90_ns=%.0f p99_ns=%.0f "
      "mean_ns=%.0f\n",
      name, path, bytes, ns.size(), at(0.5), at(0.9), at(0.99), mean);
}

using Clock = std::chrono::steady_clock;
// One timed pair on one path; false on a CUDA error.
using Pair = std::function<bool(const Runtime&)>;

// Alternates blocks of `pairs_per_block` pairs on the linked and the direct path, `blocks` times
// each, then reports both paths and the median per-block difference.
bool compare_paths(const char* name, std::size_t bytes, int blocks, int pairs_per_block,
                   const Pair& pair, const std::function<bool()>& between_blocks) {
  const Runtime linked = linked_runtime();
  const Runtime direct = direct_runtime();
  const bool bypass = direct.malloc != nullptr && direct.malloc != linked.malloc;
  const Runtime& other = direct.malloc != nullptr ? direct : linked;
  std::vector<double> all_linked, all_direct, differences;
  for (int b = 0; b < blocks; ++b) {
    double medians[2] = {0, 0};
    for (int side = 0; side < 2; ++side) {
      // Which path goes first alternates too, so that neither always follows a sync.
      const bool use_linked = (side == 0) == (b % 2 == 0);
      const Runtime& rt = use_linked ? linked : other;
      std::vector<double> ns;
      ns.reserve(static_cast<std::size_t>(pairs_per_block));
      for (int i = 0; i < pairs_per_block; ++i) {
        const auto t0 = Clock::now();
        const bool good = pair(rt);
        const auto t1 = Clock::now();
        if (!good) return false;
        ns.push_back(std::chrono::duration<double, std::nano>(t1 - t0).count());
      }
      if (!between_blocks()) return false;
      medians[use_linked ? 0 : 1] = median_of(ns);
      auto& all = use_linked ? all_linked : all_direct;
      all.insert(all.end(), ns.begin(), ns.end());
    }
    differences.push_back(medians[0] - medians[1]);
  }
  report_path(name, "linked", bytes, all_linked);
  report_path(name, "direct", bytes, all_direct);
  std::printf("RESULT bench=%s added_ns=%.0f bypass=%s\n", name, median_of(differences),
              bypass ? "yes" : "no");
  std::fflush(stdout);
  return true;
}

bool bench_async(int blocks) {
  cudaMemPool_t pool = nullptr;
  if (!ok(cudaDeviceGetDefaultMemPool(&pool, 0), "cudaDeviceGetDefaultMemPool")) return false;
  std::uint64_t keep_all = UINT64_MAX;
  if (!ok(cudaMemPoolSetAttribute(pool, cudaMemPoolAttrReleaseThreshold, &keep_all),
          "cudaMemPoolSetAttribute")) {
    return false;
  }
  cudaStream_t s = nullptr;
  if (!ok(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "cudaStreamCreate")) return false;
  const Pair pair = [s](const Runtime& rt) {
    void* p = nullptr;
    return ok(rt.malloc_async(&p, kAsyncBytes, s), "cudaMallocAsync") &&
           ok(rt.free_async(p, s), "cudaFreeAsync");
  };
  const auto sync = [s]() { return ok(cudaStreamSynchronize(s), "cudaStreamSynchronize"); };
  const Runtime warm = linked_runtime();
  for (int i = 0; i < 2000; ++i) {
    if (!pair(warm)) return false;
  }
  return sync() &&
         compare_paths("cudaMallocAsync+cudaFreeAsync", kAsyncBytes, blocks, kAsyncPairsPerBlock,
                       pair, sync) &&
         ok(cudaStreamDestroy(s), "cudaStreamDestroy");
}

bool bench_sync(int blocks) {
  const Pair pair = [](const Runtime& rt) {
    void* p = nullptr;
    return ok(rt.malloc(&p, kSyncBytes), "cudaMalloc") && ok(rt.free(p), "cudaFree");
  };
  const Runtime warm = linked_runtime();
  for (int i = 0; i < 50; ++i) {
    if (!pair(warm)) return false;
  }
  return compare_paths("cudaMalloc+cudaFree", kSyncBytes, blocks, kSyncPairsPerBlock, pair,
                       [] { return true; });
}

}  // namespace

int main(int argc, char** argv) {
  int async_blocks = 50;
  int sync_blocks = 20;
  const auto usage = [] {
    std::fprintf(stderr, "usage: passthrough_bench [--async-blocks N] [--sync-blocks N]\n");
    return 64;
  };
  if (argc % 2 == 0) return usage();
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string_view arg = argv[i];
    const int value = std::atoi(argv[i + 1]);
    if (arg == "--async-blocks" && value > 0) {
      async_blocks = value;
    } else if (arg == "--sync-blocks" && value > 0) {
      sync_blocks = value;
    } else {
      return usage();
    }
  }
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
    std::printf("passthrough_bench: no CUDA device\n");
    return 2;
  }
  if (!ok(cudaSetDevice(0), "cudaSetDevice") || !ok(cudaFree(nullptr), "cudaFree(nullptr)")) {
    return 1;
  }
  return bench_async(async_blocks) && bench_sync(sync_blocks) ? 0 : 1;
}
