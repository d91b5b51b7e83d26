#include <cstring>

#include "shim/vmm/host_backend.hpp"
#include "tests/shim/vmm/test_device.hpp"

namespace cudefrag::vmm::testing {
namespace {

class HostTestDevice final : public TestDevice {
 public:
  explicit HostTestDevice(std::unique_ptr<Backend> backend) : backend_(std::move(backend)) {}

  Backend& backend() override { return *backend_; }
  void write(DevicePtr dst, std::span<const std::byte> src) override {
    std::memcpy(dst.as_void(), src.data(), src.size());
  }
  void read(DevicePtr src, std::span<std::byte> dst) override {
    std::memcpy(dst.data(), src.as_void(), dst.size());
  }
  StreamRef stream() override { return stream_.ref(); }
  void enqueue(std::function<void()> work) override { stream_.enqueue(std::move(work)); }
  bool checks_every_rule() const override { return true; }
  bool exact_mem_info() const override { return true; }

 private:
  // Declared first: destroyed after the stream, whose queued work may touch mapped memory.
  std::unique_ptr<Backend> backend_;
  HostStream stream_;
};

}  // namespace

std::vector<DeviceFactory> test_devices() {
  return {DeviceFactory{"Host", [](std::string* why_not) -> std::unique_ptr<TestDevice> {
                          auto backend = make_host_backend(HostBackendOptions{});
                          if (backend == nullptr) {
                            *why_not = "make_host_backend refused the default options";
                            return nullptr;
                          }
                          return std::make_unique<HostTestDevice>(std::move(backend));
                        }}};
}

}  // namespace cudefrag::vmm::testing
