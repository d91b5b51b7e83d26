// The fragmentation the arena exists for, on a real GPU: under a memory limit, fill the card with
// 64 MiB blocks until an allocation fails, free every other block, then allocate one block larger
// than any hole. A plain allocator has no contiguous range for it although half the memory is
// free; the arena maps the freed physical pages behind a new range ("stitching") and succeeds.
//
// Run it under the arena with a limit (scripts/gpu_check.sh does):
//   cudefrag run --mode arena --limit 2GiB -- fragmentation
// Without a limit it stops filling at --fill-bytes (default 4 GiB) and says the demonstration did
// not happen (exit 3): on a large card nothing runs out. Checks, on the device, that every
// surviving block and the large one hold their own data, and that the failed allocation left
// cudaErrorMemoryAllocation as a non-sticky last error. Exit 0 only when all of that held.

#include <cuda_runtime.h>

#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <vector>

#include "examples/cuda/failure.hpp"
#include "examples/cuda/pattern.cuh"
#include "examples/cuda/runtime_check.hpp"

namespace cudefrag::examples {
namespace {

constexpr std::size_t kMiB = std::size_t{1} << 20;
constexpr std::size_t kBlock = 64 * kMiB;
constexpr std::size_t kLarge = 512 * kMiB;

void fill(void* p, std::size_t bytes, std::uint64_t seed) {
  const Rows r = linear_rows(p, bytes);
  fill_pattern<<<grid_for(r), 256>>>(r, seed);
  check(cudaGetLastError(), "fill_pattern launch");
}

void verify(void* p, std::size_t bytes, std::uint64_t seed, unsigned long long* errors) {
  const Rows r = linear_rows(p, bytes);
  check_pattern<<<grid_for(r), 256>>>(r, seed, errors);
  check(cudaGetLastError(), "check_pattern launch");
}

int run(std::size_t fill_bytes) {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
    std::printf("[fragmentation] no CUDA device: nothing to check\n");
    return 2;
  }
  check(cudaSetDevice(0), "cudaSetDevice");
  unsigned long long* errors = nullptr;
  check(cudaMalloc(&errors, sizeof *errors), "cudaMalloc (error counter)");
  check(cudaMemset(errors, 0, sizeof *errors), "cudaMemset");

  std::vector<void*> blocks;
  bool ran_out = false;
  while (blocks.size() * kBlock < fill_bytes) {
    void* p = nullptr;
    const cudaError_t r = cudaMalloc(&p, kBlock);
    if (r == cudaErrorMemoryAllocation) {
      ran_out = true;
      break;
    }
    check(r, "cudaMalloc (filling)");
    fill(p, kBlock, blocks.size());
    blocks.push_back(p);
  }
  if (!ran_out) {
    std::printf(
        "[fragmentation] %zu blocks of 64 MiB fit without running out: run it under a "
        "limit (cudefrag run --limit 2GiB) to see fragmentation\n",
        blocks.size());
    return 3;
  }
  // The failed allocation is reported once, then cleared, as by CUDA itself.
  expect(cudaGetLastError() == cudaErrorMemoryAllocation,
         "cudaGetLastError() reports the failed allocation");
  expect(cudaGetLastError() == cudaSuccess, "the allocation failure is not sticky");
  expect(blocks.size() >= 2 * (kLarge / kBlock), "enough blocks to leave holes for the large one");
  std::printf("[fragmentation] filled %zu blocks of 64 MiB (%zu MiB) before running out\n",
              blocks.size(), blocks.size() * kBlock / kMiB);

  check(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
  std::size_t freed = 0;
  for (std::size_t i = 0; i < blocks.size(); i += 2) {
    check(cudaFree(blocks[i]), "cudaFree (every other block)");
    blocks[i] = nullptr;
    freed += kBlock;
  }
  std::printf("[fragmentation] freed every other block: %zu MiB free in 64 MiB holes\n",
              freed / kMiB);

  void* large = nullptr;
  const cudaError_t r = cudaMalloc(&large, kLarge);
  if (r != cudaSuccess) {
    std::printf("[fragmentation] a %zu MiB block did not fit in %zu MiB of holes: %s\n",
                kLarge / kMiB, freed / kMiB, cudaGetErrorName(r));
    std::printf("[fragmentation] RESULT FAIL\n");
    return 1;
  }
  fill(large, kLarge, 1000);
  for (std::size_t i = 0; i < blocks.size(); ++i) {
    if (blocks[i] != nullptr) verify(blocks[i], kBlock, i, errors);
  }
  verify(large, kLarge, 1000, errors);
  unsigned long long bad = 0;
  check(cudaMemcpy(&bad, errors, sizeof bad, cudaMemcpyDeviceToHost), "cudaMemcpy");
  expect(bad == 0, "every block holds its own data (" + std::to_string(bad) + " bad words)");
  std::printf("[fragmentation] a %zu MiB block fit in the holes; all data checked\n",
              kLarge / kMiB);

  check(cudaFree(large), "cudaFree (large)");
  for (void* p : blocks) {
    if (p != nullptr) check(cudaFree(p), "cudaFree");
  }
  check(cudaFree(errors), "cudaFree (error counter)");
  std::printf("[fragmentation] RESULT PASS\n");
  return 0;
}

}  // namespace
}  // namespace cudefrag::examples

int main(int argc, char** argv) {
  std::size_t fill_bytes = std::size_t{4} << 30;
  if (argc == 3 && std::string(argv[1]) == "--fill-bytes") {
    fill_bytes = std::strtoull(argv[2], nullptr, 10);
  } else if (argc != 1) {
    std::fprintf(stderr, "usage: %s [--fill-bytes N]\n", argv[0]);
    return 64;
  }
  try {
    return cudefrag::examples::run(fill_bytes);
  } catch (const std::exception& e) {
    std::printf("[fragmentation] %s\n[fragmentation] RESULT FAIL\n", e.what());
    return 1;
  }
}
