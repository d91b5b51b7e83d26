#include <gtest/gtest.h>

#include <mutex>
#include <utility>

#include "shim/vmm/cuda_backend.hpp"
#include "shim/vmm/real_cuda.hpp"
#include "tests/shim/vmm/test_device.hpp"

namespace cudefrag::vmm::testing {
namespace {

// Primary context of device 0, retained once for the whole program: the tests copy bytes and
// create streams in it, and a context kept alive is not torn down and rebuilt between tests.
CUcontext test_context() {
  static const CUcontext context = [] {
    const real::DriverTable& d = real::driver();
    CUdevice dev = 0;
    CUcontext c = nullptr;
    if (d.cuDeviceGet == nullptr || d.cuDevicePrimaryCtxRetain == nullptr ||
        d.cuDeviceGet(&dev, 0) != CUDA_SUCCESS ||
        d.cuDevicePrimaryCtxRetain(&c, dev) != CUDA_SUCCESS) {
      return CUcontext{nullptr};
    }
    return c;
  }();
  return context;
}

void expect_ok(CUresult r, const char* call) {
  if (r != CUDA_SUCCESS) ADD_FAILURE() << call << " failed: CUresult " << static_cast<int>(r);
}

class CudaTestDevice final : public TestDevice {
 public:
  CudaTestDevice(std::unique_ptr<Backend> backend, CUstream stream)
      : backend_(std::move(backend)), stream_(stream) {}
  ~CudaTestDevice() override {
    make_current();
    expect_ok(d().cuCtxSynchronize(), "cuCtxSynchronize");
    expect_ok(d().cuStreamDestroy_v2(stream_), "cuStreamDestroy");
  }

  Backend& backend() override { return *backend_; }
  void write(DevicePtr dst, std::span<const std::byte> src) override {
    make_current();
    expect_ok(d().cuMemcpyHtoD_v2(dst.value, src.data(), src.size()), "cuMemcpyHtoD");
  }
  void read(DevicePtr src, std::span<std::byte> dst) override {
    make_current();
    expect_ok(d().cuMemcpyDtoH_v2(dst.data(), src.value, dst.size()), "cuMemcpyDtoH");
  }
  StreamRef stream() override { return StreamRef{stream_}; }
  void enqueue(std::function<void()> work) override {
    make_current();
    auto* heap = new std::function<void()>(std::move(work));
    const CUresult r = d().cuLaunchHostFunc(
        stream_,
        [](void* user) {
          auto* fn = static_cast<std::function<void()>*>(user);
          (*fn)();
          delete fn;
        },
        heap);
    if (r != CUDA_SUCCESS) delete heap;
    expect_ok(r, "cuLaunchHostFunc");
  }
  bool checks_every_rule() const override { return false; }
  bool exact_mem_info() const override { return false; }

 private:
  static const real::DriverTable& d() { return real::driver(); }
  static void make_current() { expect_ok(d().cuCtxSetCurrent(test_context()), "cuCtxSetCurrent"); }

  std::unique_ptr<Backend> backend_;
  CUstream stream_;
};

}  // namespace

std::vector<DeviceFactory> test_devices() {
  return {DeviceFactory{"Cuda", [](std::string* why_not) -> std::unique_ptr<TestDevice> {
                          Status why = Status::kOk;
                          auto backend = make_cuda_backend(DeviceOrdinal{0}, &why);
                          if (backend == nullptr) {
                            *why_not = "make_cuda_backend: " + std::string(to_string(why));
                            return nullptr;
                          }
                          const real::DriverTable& d = real::driver();
                          if (test_context() == nullptr || d.cuMemcpyHtoD_v2 == nullptr ||
                              d.cuMemcpyDtoH_v2 == nullptr || d.cuStreamCreate == nullptr ||
                              d.cuStreamDestroy_v2 == nullptr || d.cuLaunchHostFunc == nullptr ||
                              d.cuCtxSetCurrent(test_context()) != CUDA_SUCCESS) {
                            *why_not = "the driver lacks a function the tests use";
                            return nullptr;
                          }
                          CUstream stream = nullptr;
                          if (d.cuStreamCreate(&stream, CU_STREAM_NON_BLOCKING) != CUDA_SUCCESS) {
                            *why_not = "cuStreamCreate failed";
                            return nullptr;
                          }
                          return std::make_unique<CudaTestDevice>(std::move(backend), stream);
                        }}};
}

}  // namespace cudefrag::vmm::testing
