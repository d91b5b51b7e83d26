// Every CUDA runtime allocation entry point the shim hooks, used the way programs use them, with
// the data checked after each: cudaMalloc/cudaFree, cudaMallocAsync/cudaFreeAsync on two streams
// (freed on the stream that allocated and on the other one), cudaMallocPitch, cudaMalloc3D and
// cudaMallocFromPoolAsync on the device's default pool.
//
// Prints how many calls of each entry point it made (call_log.hpp) so that a run under
// `cudefrag run` can be compared with the launcher's summary. Exit 0 only when every check
// passed; 2 when there is no GPU.
//
// Built twice: against the shared libcudart (what the shim interposes on) and against the static
// one (whose cuda* calls the shim cannot see: only the driver calls behind them).

#include <cuda_runtime.h>

#include <cstdint>
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "examples/cuda/call_log.hpp"
#include "examples/cuda/pattern.cuh"
#include "examples/cuda/runtime_check.hpp"

namespace cudefrag::examples {
namespace {

constexpr std::size_t kMiB = std::size_t{1} << 20;

// The runtime calls this program makes, each counted in the log as it is made.
class CountedRuntime {
 public:
  explicit CountedRuntime(CallLog& log) : log_(log) {}

  void* malloc(std::size_t bytes) {
    void* p = nullptr;
    log_.add("cudaMalloc", bytes);
    check(cudaMalloc(&p, bytes), "cudaMalloc");
    return p;
  }
  void free(void* p) {
    log_.add("cudaFree");
    check(cudaFree(p), "cudaFree");
  }
  void* malloc_async(std::size_t bytes, cudaStream_t s) {
    void* p = nullptr;
    log_.add("cudaMallocAsync", bytes);
    check(cudaMallocAsync(&p, bytes, s), "cudaMallocAsync");
    return p;
  }
  void free_async(void* p, cudaStream_t s) {
    log_.add("cudaFreeAsync");
    check(cudaFreeAsync(p, s), "cudaFreeAsync");
  }
  void* malloc_pitch(std::size_t* pitch, std::size_t width, std::size_t height) {
    void* p = nullptr;
    log_.add("cudaMallocPitch", width * height);
    check(cudaMallocPitch(&p, pitch, width, height), "cudaMallocPitch");
    return p;
  }
  cudaPitchedPtr malloc_3d(cudaExtent extent) {
    cudaPitchedPtr pp{};
    log_.add("cudaMalloc3D", extent.width * extent.height * extent.depth);
    check(cudaMalloc3D(&pp, extent), "cudaMalloc3D");
    return pp;
  }
  void* malloc_from_pool_async(std::size_t bytes, cudaMemPool_t pool, cudaStream_t s) {
    void* p = nullptr;
    log_.add("cudaMallocFromPoolAsync", bytes);
    check(cudaMallocFromPoolAsync(&p, bytes, pool, s), "cudaMallocFromPoolAsync");
    return p;
  }
  void mem_get_info(std::size_t* free_bytes, std::size_t* total_bytes) {
    log_.add("cudaMemGetInfo");
    check(cudaMemGetInfo(free_bytes, total_bytes), "cudaMemGetInfo");
  }
  cudaPointerAttributes pointer_attributes(const void* p) {
    cudaPointerAttributes a{};
    log_.add("cudaPointerGetAttributes");
    check(cudaPointerGetAttributes(&a, p), "cudaPointerGetAttributes");
    return a;
  }

 private:
  CallLog& log_;
};

// One mismatch counter on the device, read back after the stream work that feeds it.
class ErrorCounter {
 public:
  explicit ErrorCounter(CountedRuntime& rt) : rt_(rt) {
    counter_ = static_cast<unsigned long long*>(rt_.malloc(sizeof(unsigned long long)));
    check(cudaMemset(counter_, 0, sizeof(unsigned long long)), "cudaMemset");
  }
  ~ErrorCounter() {
    try {
      rt_.free(counter_);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "%s\n", e.what());
    }
  }
  ErrorCounter(const ErrorCounter&) = delete;
  ErrorCounter& operator=(const ErrorCounter&) = delete;

  unsigned long long* device() const { return counter_; }
  unsigned long long read() const {
    unsigned long long n = 0;
    check(cudaMemcpy(&n, counter_, sizeof n, cudaMemcpyDeviceToHost), "cudaMemcpy");
    return n;
  }

 private:
  CountedRuntime& rt_;
  unsigned long long* counter_ = nullptr;
};

void fill(const Rows& r, std::uint64_t seed, cudaStream_t s = nullptr) {
  fill_pattern<<<grid_for(r), 256, 0, s>>>(r, seed);
  check(cudaGetLastError(), "fill_pattern launch");
}

void verify(const Rows& r, std::uint64_t seed, const ErrorCounter& errors,
            cudaStream_t s = nullptr) {
  check_pattern<<<grid_for(r), 256, 0, s>>>(r, seed, errors.device());
  check(cudaGetLastError(), "check_pattern launch");
}

void expect_device_pointer(CountedRuntime& rt, const void* p, int device) {
  const cudaPointerAttributes a = rt.pointer_attributes(p);
  expect(a.type == cudaMemoryTypeDevice, "cudaPointerGetAttributes: type is device memory");
  expect(a.device == device, "cudaPointerGetAttributes: device matches");
  expect(a.devicePointer == p, "cudaPointerGetAttributes: devicePointer is the pointer");
}

void linear_allocations(CountedRuntime& rt, int device) {
  const std::vector<std::size_t> sizes = {1,        512,           4096 + 3, kMiB,
                                          2 * kMiB, 20 * kMiB + 5, 64 * kMiB};
  ErrorCounter errors(rt);
  std::vector<void*> ptrs;
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    ptrs.push_back(rt.malloc(sizes[i]));
    expect(ptrs.back() != nullptr, "cudaMalloc returned a pointer");
    expect_device_pointer(rt, ptrs.back(), device);
    fill(linear_rows(ptrs.back(), sizes[i]), 100 + i);
  }
  // All live at once: they must not overlap, so every pattern survives every other fill.
  for (std::size_t i = 0; i < sizes.size(); ++i)
    verify(linear_rows(ptrs[i], sizes[i]), 100 + i, errors);
  const std::size_t big = 5;  // 20 MiB + 5: also checked on the host, byte for byte of its words
  std::vector<std::uint32_t> host(sizes[big] / 4);
  check(cudaMemcpy(host.data(), ptrs[big], host.size() * 4, cudaMemcpyDeviceToHost), "cudaMemcpy");
  expect(count_mismatches(host.data(), host.size(), 1, 100 + big) == 0,
         "cudaMalloc buffer holds its pattern (host check)");
  expect(errors.read() == 0, "cudaMalloc buffers hold their patterns (device check)");
  for (void* p : ptrs) rt.free(p);
  rt.free(nullptr);  // allowed, and must stay allowed under the shim
  std::printf("linear: %zu cudaMalloc buffers checked\n", sizes.size());
}

void async_two_streams(CountedRuntime& rt) {
  const std::vector<std::size_t> sizes = {256, 64 * 1024, kMiB, 2 * kMiB + 1, 8 * kMiB, 32 * kMiB};
  cudaStream_t streams[2];
  for (auto& s : streams)
    check(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "cudaStreamCreate");
  cudaEvent_t ready;
  check(cudaEventCreateWithFlags(&ready, cudaEventDisableTiming), "cudaEventCreate");
  ErrorCounter errors(rt);
  std::size_t checked = 0;
  for (int round = 0; round < 4; ++round) {
    for (int si = 0; si < 2; ++si) {
      cudaStream_t own = streams[si];
      cudaStream_t other = streams[1 - si];
      std::vector<void*> ptrs;
      for (std::size_t i = 0; i < sizes.size(); ++i) {
        ptrs.push_back(rt.malloc_async(sizes[i], own));
        fill(linear_rows(ptrs.back(), sizes[i]), 1000u * round + 100u * si + i, own);
      }
      for (std::size_t i = 0; i < sizes.size(); ++i) {
        const Rows r = linear_rows(ptrs[i], sizes[i]);
        const std::uint64_t seed = 1000u * round + 100u * si + i;
        if (i % 2 == 0) {
          verify(r, seed, errors, own);
          rt.free_async(ptrs[i], own);
        } else {
          // Handed to the other stream: it may touch and free the memory only after `own` is
          // done with it, which the event expresses.
          check(cudaEventRecord(ready, own), "cudaEventRecord");
          check(cudaStreamWaitEvent(other, ready, 0), "cudaStreamWaitEvent");
          verify(r, seed, errors, other);
          rt.free_async(ptrs[i], other);
        }
        ++checked;
      }
    }
  }
  for (auto& s : streams) check(cudaStreamSynchronize(s), "cudaStreamSynchronize");
  expect(errors.read() == 0, "cudaMallocAsync buffers hold their patterns");
  check(cudaEventDestroy(ready), "cudaEventDestroy");
  for (auto& s : streams) check(cudaStreamDestroy(s), "cudaStreamDestroy");
  std::printf("async: %zu cudaMallocAsync buffers on two streams checked\n", checked);
}

void pitched_2d(CountedRuntime& rt) {
  const std::size_t width = 1000;  // bytes per row: not a multiple of any natural pitch
  const std::size_t height = 37;
  std::size_t pitch = 0;
  void* p = rt.malloc_pitch(&pitch, width, height);
  expect(pitch >= width, "cudaMallocPitch: pitch covers the row");
  const Rows r{p, pitch, width / 4, height};
  ErrorCounter errors(rt);
  fill(r, 7);
  verify(r, 7, errors);
  std::vector<std::uint32_t> host(r.words * height);
  check(cudaMemcpy2D(host.data(), width, p, pitch, width, height, cudaMemcpyDeviceToHost),
        "cudaMemcpy2D");
  expect(count_mismatches(host.data(), r.words, height, 7) == 0, "pitched rows hold their pattern");
  expect(errors.read() == 0, "pitched rows hold their pattern (device check)");
  rt.free(p);
  std::printf("pitch: width %zu height %zu pitch %zu checked\n", width, height, pitch);
}

void pitched_3d(CountedRuntime& rt) {
  const cudaExtent extent = make_cudaExtent(1001 * 4, 13, 7);  // width in bytes
  const cudaPitchedPtr pp = rt.malloc_3d(extent);
  expect(pp.pitch >= extent.width, "cudaMalloc3D: pitch covers the row");
  const std::size_t rows = extent.height * extent.depth;  // slices are `height` rows apart
  const Rows r{pp.ptr, pp.pitch, extent.width / 4, rows};
  ErrorCounter errors(rt);
  fill(r, 11);
  verify(r, 11, errors);
  std::vector<std::uint32_t> host(r.words * rows);
  cudaMemcpy3DParms copy{};
  copy.srcPtr = pp;
  copy.dstPtr = make_cudaPitchedPtr(host.data(), extent.width, extent.width, extent.height);
  copy.extent = extent;
  copy.kind = cudaMemcpyDeviceToHost;
  check(cudaMemcpy3D(&copy), "cudaMemcpy3D");
  expect(count_mismatches(host.data(), r.words, rows, 11) == 0, "3D slices hold their pattern");
  expect(errors.read() == 0, "3D slices hold their pattern (device check)");
  rt.free(pp.ptr);
  std::printf("3d: %zu x %zu x %zu pitch %zu checked\n", extent.width, extent.height, extent.depth,
              pp.pitch);
}

void default_pool(CountedRuntime& rt, int device) {
  cudaMemPool_t pool = nullptr;
  check(cudaDeviceGetDefaultMemPool(&pool, device), "cudaDeviceGetDefaultMemPool");
  cudaStream_t s;
  check(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking), "cudaStreamCreate");
  ErrorCounter errors(rt);
  const std::vector<std::size_t> sizes = {4096, 3 * kMiB, 24 * kMiB + 1};
  std::vector<void*> ptrs;
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    ptrs.push_back(rt.malloc_from_pool_async(sizes[i], pool, s));
    fill(linear_rows(ptrs.back(), sizes[i]), 500 + i, s);
  }
  check(cudaStreamSynchronize(s), "cudaStreamSynchronize");
  // Informational: with the shim's arena in front, the pool need not hold these bytes.
  std::uint64_t used = 0;
  check(cudaMemPoolGetAttribute(pool, cudaMemPoolAttrUsedMemCurrent, &used),
        "cudaMemPoolGetAttribute");
  std::printf("pool: default pool reports %llu bytes used with %zu bytes live\n",
              static_cast<unsigned long long>(used), sizes[0] + sizes[1] + sizes[2]);
  for (std::size_t i = 0; i < sizes.size(); ++i) {
    verify(linear_rows(ptrs[i], sizes[i]), 500 + i, errors, s);
    rt.free_async(ptrs[i], s);
  }
  check(cudaStreamSynchronize(s), "cudaStreamSynchronize");
  expect(errors.read() == 0, "cudaMallocFromPoolAsync buffers hold their patterns");
  check(cudaStreamDestroy(s), "cudaStreamDestroy");
  std::printf("pool: %zu cudaMallocFromPoolAsync buffers checked\n", sizes.size());
}

int run() {
  CallLog log("runtime_alloc");
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || count == 0) {
    std::printf("[runtime_alloc] no CUDA device: nothing to check\n");
    return 2;
  }
  const int device = 0;
  check(cudaSetDevice(device), "cudaSetDevice");
  cudaDeviceProp prop{};
  check(cudaGetDeviceProperties(&prop, device), "cudaGetDeviceProperties");
  std::printf("device %d: %s\n", device, prop.name);

  CountedRuntime rt(log);
  bool pass = false;
  try {
    std::size_t free_before = 0, total = 0;
    rt.mem_get_info(&free_before, &total);
    expect(free_before <= total && total > 0, "cudaMemGetInfo: 0 < free <= total");
    linear_allocations(rt, device);
    async_two_streams(rt);
    pitched_2d(rt);
    pitched_3d(rt);
    default_pool(rt, device);
    check(cudaDeviceSynchronize(), "cudaDeviceSynchronize");
    std::size_t free_after = 0;
    rt.mem_get_info(&free_after, &total);
    std::printf("memory: free before %zu MiB, after %zu MiB, total %zu MiB\n", free_before / kMiB,
                free_after / kMiB, total / kMiB);
    pass = true;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "[runtime_alloc] %s\n", e.what());
  }
  log.print();
  log.verdict(pass);
  return pass ? 0 : 1;
}

}  // namespace
}  // namespace cudefrag::examples

int main() {
  try {
    return cudefrag::examples::run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "[runtime_alloc] %s\n", e.what());
    return 1;
  }
}
