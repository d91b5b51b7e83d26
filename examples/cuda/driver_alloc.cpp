// The driver API's allocation entry points, reached the three ways programs reach them:
//   direct            calls to the symbols linked from libcuda (what a preloaded export interposes)
//   procaddress       every function obtained through cuGetProcAddress (as cudart and PyTorch do),
//                     CU_GET_PROC_ADDRESS_DEFAULT
//   procaddress-ptds  the same with CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM (_ptsz variants,
//                     stream 0 meaning the per-thread stream)
//   dlopen            dlopen("libcuda.so.1") by hand and dlsym() on that handle, which searches
//                     libcuda only and so never sees a preloaded export unless dlsym is hooked
//   all               the four above, one after the other (default)
//
// Uses cuMemAlloc_v2/cuMemFree_v2, cuMemAllocPitch_v2, cuMemAllocAsync/cuMemFreeAsync,
// cuMemGetInfo_v2 and cuMemGetAddressRange_v2, verifies data with cuMemsetD8 and copies, and
// prints the calls it made per entry point (call_log.hpp). No libcudart: driver-only programs never
// load it. Exit 0 only when every check passed; 2 when there is no GPU.
//
// Usage: driver_alloc [--mode direct|procaddress|procaddress-ptds|dlopen|all]

#include <cuda.h>
#include <dlfcn.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <exception>
#include <source_location>
#include <string>
#include <string_view>
#include <type_traits>
#include <vector>

#include "examples/cuda/call_log.hpp"
#include "examples/cuda/failure.hpp"

namespace cudefrag::examples {
namespace {

constexpr std::size_t kMiB = std::size_t{1} << 20;

// The driver functions this program uses, however they were obtained.
struct Driver {
  decltype(&::cuInit) init = nullptr;
  decltype(&::cuGetErrorName) get_error_name = nullptr;
  decltype(&::cuDeviceGet) device_get = nullptr;
  decltype(&::cuDevicePrimaryCtxRetain) primary_ctx_retain = nullptr;
  decltype(&::cuDevicePrimaryCtxRelease_v2) primary_ctx_release = nullptr;
  decltype(&::cuCtxSetCurrent) ctx_set_current = nullptr;
  decltype(&::cuCtxSynchronize) ctx_synchronize = nullptr;
  decltype(&::cuStreamCreate) stream_create = nullptr;
  decltype(&::cuStreamSynchronize) stream_synchronize = nullptr;
  decltype(&::cuStreamDestroy_v2) stream_destroy = nullptr;
  decltype(&::cuMemAlloc_v2) mem_alloc = nullptr;
  decltype(&::cuMemFree_v2) mem_free = nullptr;
  decltype(&::cuMemAllocPitch_v2) mem_alloc_pitch = nullptr;
  decltype(&::cuMemAllocAsync) mem_alloc_async = nullptr;
  decltype(&::cuMemFreeAsync) mem_free_async = nullptr;
  decltype(&::cuMemGetInfo_v2) mem_get_info = nullptr;
  decltype(&::cuMemGetAddressRange_v2) mem_get_address_range = nullptr;
  decltype(&::cuMemsetD8_v2) memset_d8 = nullptr;
  decltype(&::cuMemsetD8Async) memset_d8_async = nullptr;
  decltype(&::cuMemcpyHtoD_v2) memcpy_htod = nullptr;
  decltype(&::cuMemcpyDtoH_v2) memcpy_dtoh = nullptr;
  decltype(&::cuMemcpyDtoHAsync_v2) memcpy_dtoh_async = nullptr;
};

enum class Mode { kDirect, kProcAddress, kProcAddressPtds, kDlopen };

std::string_view mode_name(Mode m) {
  switch (m) {
    case Mode::kDirect:
      return "direct";
    case Mode::kProcAddress:
      return "procaddress";
    case Mode::kProcAddressPtds:
      return "procaddress-ptds";
    case Mode::kDlopen:
      return "dlopen";
  }
  return "?";
}

Driver linked_driver() {
  Driver d;
  d.init = &::cuInit;
  d.get_error_name = &::cuGetErrorName;
  d.device_get = &::cuDeviceGet;
  d.primary_ctx_retain = &::cuDevicePrimaryCtxRetain;
  d.primary_ctx_release = &::cuDevicePrimaryCtxRelease_v2;
  d.ctx_set_current = &::cuCtxSetCurrent;
  d.ctx_synchronize = &::cuCtxSynchronize;
  d.stream_create = &::cuStreamCreate;
  d.stream_synchronize = &::cuStreamSynchronize;
  d.stream_destroy = &::cuStreamDestroy_v2;
  d.mem_alloc = &::cuMemAlloc_v2;
  d.mem_free = &::cuMemFree_v2;
  d.mem_alloc_pitch = &::cuMemAllocPitch_v2;
  d.mem_alloc_async = &::cuMemAllocAsync;
  d.mem_free_async = &::cuMemFreeAsync;
  d.mem_get_info = &::cuMemGetInfo_v2;
  d.mem_get_address_range = &::cuMemGetAddressRange_v2;
  d.memset_d8 = &::cuMemsetD8_v2;
  d.memset_d8_async = &::cuMemsetD8Async;
  d.memcpy_htod = &::cuMemcpyHtoD_v2;
  d.memcpy_dtoh = &::cuMemcpyDtoH_v2;
  d.memcpy_dtoh_async = &::cuMemcpyDtoHAsync_v2;
  return d;
}

// The CUDA version whose signature of a function this program uses, for cuGetProcAddress.
// CUDA_VERSION (13.0 here) for all but cuCtxSynchronize, which 13.0 gave a context parameter:
// asked for at 13000 it returns cuCtxSynchronize_v2(CUcontext).
constexpr int kApiVersion = CUDA_VERSION;
constexpr int kCtxSynchronizeVersion = 12000;

// Fills a Driver by looking each function up by name: `lookup(base_name, abi_symbol, version)`
// returns the function or null. cuGetProcAddress takes the base name and the version, dlsym the
// versioned ABI symbol.
template <class Lookup>
Driver looked_up_driver(Lookup lookup) {
  Driver d;
  auto get = [&](auto& slot, const char* base_name, const char* abi_symbol,
                 int version = kApiVersion) {
    void* fn = lookup(base_name, abi_symbol, version);
    if (fn == nullptr) fail(std::string("cannot obtain ") + abi_symbol);
    slot = reinterpret_cast<std::remove_reference_t<decltype(slot)>>(fn);
  };
  get(d.init, "cuInit", "cuInit");
  get(d.get_error_name, "cuGetErrorName", "cuGetErrorName");
  get(d.device_get, "cuDeviceGet", "cuDeviceGet");
  get(d.primary_ctx_retain, "cuDevicePrimaryCtxRetain", "cuDevicePrimaryCtxRetain");
  get(d.primary_ctx_release, "cuDevicePrimaryCtxRelease", "cuDevicePrimaryCtxRelease_v2");
  get(d.ctx_set_current, "cuCtxSetCurrent", "cuCtxSetCurrent");
  get(d.ctx_synchronize, "cuCtxSynchronize", "cuCtxSynchronize", kCtxSynchronizeVersion);
  get(d.stream_create, "cuStreamCreate", "cuStreamCreate");
  get(d.stream_synchronize, "cuStreamSynchronize", "cuStreamSynchronize");
  get(d.stream_destroy, "cuStreamDestroy", "cuStreamDestroy_v2");
  get(d.mem_alloc, "cuMemAlloc", "cuMemAlloc_v2");
  get(d.mem_free, "cuMemFree", "cuMemFree_v2");
  get(d.mem_alloc_pitch, "cuMemAllocPitch", "cuMemAllocPitch_v2");
  get(d.mem_alloc_async, "cuMemAllocAsync", "cuMemAllocAsync");
  get(d.mem_free_async, "cuMemFreeAsync", "cuMemFreeAsync");
  get(d.mem_get_info, "cuMemGetInfo", "cuMemGetInfo_v2");
  get(d.mem_get_address_range, "cuMemGetAddressRange", "cuMemGetAddressRange_v2");
  get(d.memset_d8, "cuMemsetD8", "cuMemsetD8_v2");
  get(d.memset_d8_async, "cuMemsetD8Async", "cuMemsetD8Async");
  get(d.memcpy_htod, "cuMemcpyHtoD", "cuMemcpyHtoD_v2");
  get(d.memcpy_dtoh, "cuMemcpyDtoH", "cuMemcpyDtoH_v2");
  get(d.memcpy_dtoh_async, "cuMemcpyDtoHAsync", "cuMemcpyDtoHAsync_v2");
  return d;
}

Driver proc_address_driver(cuuint64_t flags) {
  return looked_up_driver([flags](const char* base_name, const char*, int version) -> void* {
    void* fn = nullptr;
    CUdriverProcAddressQueryResult status{};
    const CUresult r = ::cuGetProcAddress_v2(base_name, &fn, version, flags, &status);
    return (r == CUDA_SUCCESS && status == CU_GET_PROC_ADDRESS_SUCCESS) ? fn : nullptr;
  });
}

Driver dlopen_driver() {
  void* libcuda = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (libcuda == nullptr) fail(std::string("dlopen libcuda.so.1: ") + dlerror());
  // The handle stays open for the life of the process, as a program that opened it would keep it.
  return looked_up_driver(
      [libcuda](const char*, const char* abi_symbol, int) { return dlsym(libcuda, abi_symbol); });
}

// The driver calls of one pass, each counted in the log under the ABI symbol it reached.
class CountedDriver {
 public:
  CountedDriver(const Driver& d, CallLog& log, bool per_thread)
      : d_(d), log_(log), suffix_(per_thread ? "_ptsz" : "") {}

  void check(CUresult r, const char* what,
             std::source_location where = std::source_location::current()) const {
    if (r == CUDA_SUCCESS) return;
    const char* name = nullptr;
    if (d_.get_error_name == nullptr || d_.get_error_name(r, &name) != CUDA_SUCCESS) name = "?";
    fail(std::string(what) + " failed: " + name + " (" + std::to_string(static_cast<int>(r)) + ")",
         where);
  }

  CUdeviceptr alloc(std::size_t bytes) {
    CUdeviceptr p = 0;
    log_.add("cuMemAlloc_v2", bytes);
    check(d_.mem_alloc(&p, bytes), "cuMemAlloc");
    return p;
  }
  void free(CUdeviceptr p) {
    log_.add("cuMemFree_v2");
    check(d_.mem_free(p), "cuMemFree");
  }
  CUdeviceptr alloc_pitch(std::size_t* pitch, std::size_t width, std::size_t height,
                          unsigned element_bytes) {
    CUdeviceptr p = 0;
    log_.add("cuMemAllocPitch_v2", width * height);
    check(d_.mem_alloc_pitch(&p, pitch, width, height, element_bytes), "cuMemAllocPitch");
    return p;
  }
  CUdeviceptr alloc_async(std::size_t bytes, CUstream s) {
    CUdeviceptr p = 0;
    log_.add("cuMemAllocAsync" + suffix_, bytes);
    check(d_.mem_alloc_async(&p, bytes, s), "cuMemAllocAsync");
    return p;
  }
  void free_async(CUdeviceptr p, CUstream s) {
    log_.add("cuMemFreeAsync" + suffix_);
    check(d_.mem_free_async(p, s), "cuMemFreeAsync");
  }
  void get_info(std::size_t* free_bytes, std::size_t* total_bytes) {
    log_.add("cuMemGetInfo_v2");
    check(d_.mem_get_info(free_bytes, total_bytes), "cuMemGetInfo");
  }
  void address_range(CUdeviceptr p, CUdeviceptr* base, std::size_t* size) {
    log_.add("cuMemGetAddressRange_v2");
    check(d_.mem_get_address_range(base, size, p), "cuMemGetAddressRange");
  }

  const Driver& raw() const { return d_; }

 private:
  const Driver& d_;
  CallLog& log_;
  std::string suffix_;
};

std::vector<std::uint8_t> pattern_bytes(std::size_t n, std::uint32_t seed) {
  std::vector<std::uint8_t> v(n);
  std::uint32_t x = seed * 2654435761u + 1;
  for (auto& b : v) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    b = static_cast<std::uint8_t>(x);
  }
  return v;
}

// The address range of any byte inside an allocation is the whole allocation.
void expect_range(CountedDriver& cu, CUdeviceptr p, std::size_t bytes) {
  for (const std::size_t offset : {std::size_t{0}, bytes / 2, bytes - 1}) {
    CUdeviceptr base = 0;
    std::size_t size = 0;
    cu.address_range(p + offset, &base, &size);
    expect(base == p, "cuMemGetAddressRange: base is the allocation's start");
    expect(size >= bytes, "cuMemGetAddressRange: size covers the allocation");
  }
}

void linear(CountedDriver& cu) {
  const Driver& d = cu.raw();
  for (const std::size_t bytes : {std::size_t{1}, std::size_t{4097}, 2 * kMiB, 17 * kMiB + 3}) {
    const CUdeviceptr p = cu.alloc(bytes);
    expect(p != 0, "cuMemAlloc returned an address");
    expect_range(cu, p, bytes);
    const auto fill_byte = static_cast<unsigned char>(0x5A ^ bytes);
    cu.check(d.memset_d8(p, fill_byte, bytes), "cuMemsetD8");
    std::vector<std::uint8_t> back(bytes);
    cu.check(d.memcpy_dtoh(back.data(), p, bytes), "cuMemcpyDtoH");
    for (const std::uint8_t b : back) expect(b == fill_byte, "cuMemsetD8 value read back");
    const auto pattern = pattern_bytes(bytes, static_cast<std::uint32_t>(bytes));
    cu.check(d.memcpy_htod(p, pattern.data(), bytes), "cuMemcpyHtoD");
    cu.check(d.memcpy_dtoh(back.data(), p, bytes), "cuMemcpyDtoH");
    expect(back == pattern, "pattern copied in and out of cuMemAlloc memory");
    cu.free(p);
  }
}

void pitched(CountedDriver& cu) {
  const Driver& d = cu.raw();
  const std::size_t width = 1000;
  const std::size_t height = 33;
  std::size_t pitch = 0;
  const CUdeviceptr p = cu.alloc_pitch(&pitch, width, height, 4);
  expect(pitch >= width, "cuMemAllocPitch: pitch covers the row");
  const std::size_t bytes = pitch * height;
  expect_range(cu, p, bytes);
  const auto pattern = pattern_bytes(bytes, 33);
  cu.check(d.memcpy_htod(p, pattern.data(), bytes), "cuMemcpyHtoD");
  std::vector<std::uint8_t> back(bytes);
  cu.check(d.memcpy_dtoh(back.data(), p, bytes), "cuMemcpyDtoH");
  expect(back == pattern, "pattern copied in and out of pitched memory");
  cu.free(p);
}

void stream_ordered(CountedDriver& cu) {
  const Driver& d = cu.raw();
  CUstream created = nullptr;
  cu.check(d.stream_create(&created, CU_STREAM_NON_BLOCKING), "cuStreamCreate");
  // Stream 0 is the legacy stream, or the per-thread one for the _ptsz functions.
  for (CUstream s : {created, CUstream{nullptr}}) {
    std::vector<CUdeviceptr> ptrs;
    const std::vector<std::size_t> sizes = {512, 3 * kMiB, 9 * kMiB + 7};
    for (std::size_t i = 0; i < sizes.size(); ++i) {
      ptrs.push_back(cu.alloc_async(sizes[i], s));
      cu.check(d.memset_d8_async(ptrs[i], static_cast<unsigned char>(0x30 + i), sizes[i], s),
               "cuMemsetD8Async");
    }
    std::vector<std::vector<std::uint8_t>> back;
    for (std::size_t i = 0; i < sizes.size(); ++i) {
      back.emplace_back(sizes[i]);
      cu.check(d.memcpy_dtoh_async(back[i].data(), ptrs[i], sizes[i], s), "cuMemcpyDtoHAsync");
    }
    cu.check(d.stream_synchronize(s), "cuStreamSynchronize");
    for (std::size_t i = 0; i < sizes.size(); ++i) {
      expect_range(cu, ptrs[i], sizes[i]);
      for (const std::uint8_t b : back[i]) {
        expect(b == static_cast<std::uint8_t>(0x30 + i),
               "cuMemsetD8Async value read back from cuMemAllocAsync memory");
      }
      cu.free_async(ptrs[i], s);
    }
    cu.check(d.stream_synchronize(s), "cuStreamSynchronize");
  }
  cu.check(d.stream_destroy(created), "cuStreamDestroy");
}

Driver driver_for(Mode mode) {
  switch (mode) {
    case Mode::kDirect:
      return linked_driver();
    case Mode::kProcAddress:
      return proc_address_driver(CU_GET_PROC_ADDRESS_DEFAULT);
    case Mode::kProcAddressPtds:
      return proc_address_driver(CU_GET_PROC_ADDRESS_PER_THREAD_DEFAULT_STREAM);
    case Mode::kDlopen:
      return dlopen_driver();
  }
  return linked_driver();
}

// Returns false when there is no device to run on.
bool run_mode(Mode mode, CallLog& log) {
  const Driver d = driver_for(mode);
  CountedDriver cu(d, log, mode == Mode::kProcAddressPtds);
  if (d.init(0) != CUDA_SUCCESS) return false;
  CUdevice dev = 0;
  if (d.device_get(&dev, 0) != CUDA_SUCCESS) return false;
  CUcontext ctx = nullptr;
  cu.check(d.primary_ctx_retain(&ctx, dev), "cuDevicePrimaryCtxRetain");
  cu.check(d.ctx_set_current(ctx), "cuCtxSetCurrent");

  std::size_t free_before = 0, total = 0;
  cu.get_info(&free_before, &total);
  expect(total > 0 && free_before <= total, "cuMemGetInfo: 0 < free <= total");
  linear(cu);
  pitched(cu);
  stream_ordered(cu);
  cu.check(d.ctx_synchronize(), "cuCtxSynchronize");
  std::size_t free_after = 0;
  cu.get_info(&free_after, &total);
  std::printf("mode %s: checks passed; free before %zu MiB, after %zu MiB, total %zu MiB\n",
              std::string(mode_name(mode)).c_str(), free_before / kMiB, free_after / kMiB,
              total / kMiB);
  cu.check(d.ctx_set_current(nullptr), "cuCtxSetCurrent");
  cu.check(d.primary_ctx_release(dev), "cuDevicePrimaryCtxRelease");
  return true;
}

int run(int argc, char** argv) {
  std::vector<Mode> modes = {Mode::kDirect, Mode::kProcAddress, Mode::kProcAddressPtds,
                             Mode::kDlopen};
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg == "--mode" && i + 1 < argc) {
      const std::string_view m = argv[++i];
      if (m == "all") continue;
      bool known = false;
      for (const Mode candidate : modes) {
        if (mode_name(candidate) == m) {
          modes = {candidate};
          known = true;
          break;
        }
      }
      if (!known) {
        std::fprintf(stderr, "unknown mode '%s'\n", argv[i]);
        return 64;
      }
    } else {
      std::fprintf(stderr,
                   "usage: driver_alloc [--mode direct|procaddress|procaddress-ptds|dlopen|all]\n");
      return 64;
    }
  }
  CallLog log("driver_alloc");
  bool pass = false;
  try {
    for (const Mode mode : modes) {
      if (!run_mode(mode, log)) {
        std::printf("[driver_alloc] no CUDA device: nothing to check\n");
        return 2;
      }
    }
    pass = true;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "[driver_alloc] %s\n", e.what());
  }
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
    std::fprintf(stderr, "[driver_alloc] %s\n", e.what());
    return 1;
  }
}
