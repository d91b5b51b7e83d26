// What the backend contract tests need beyond the seam itself, for each implementation: moving
// bytes in and out of mapped memory, and a stream with host work on it. The contract tests are
// compiled once per implementation and linked with the test_devices() of that implementation.
#pragma once

#include <cstddef>
#include <functional>
#include <memory>
#include <ostream>
#include <span>
#include <string>
#include <vector>

#include "shim/vmm/backend.hpp"

namespace cudefrag::vmm::testing {

class TestDevice {
 public:
  virtual ~TestDevice() = default;

  virtual Backend& backend() = 0;
  // Synchronous copies between host memory and mapped, accessible memory of the backend.
  virtual void write(DevicePtr dst, std::span<const std::byte> src) = 0;
  virtual void read(DevicePtr src, std::span<std::byte> dst) = 0;
  // A stream of the device other than its default stream, owned by the TestDevice.
  virtual StreamRef stream() = 0;
  // Runs `work` on a host thread when stream() reaches it (cuLaunchHostFunc on CUDA). The work
  // may block, holding the stream back; it must not call the backend.
  virtual void enqueue(std::function<void()> work) = 0;
  // Whether every broken rule of the contract is refused. The CUDA driver takes handles and
  // events as pointers (a stale one may crash it), maps past the end of a reservation and unmaps
  // ranges holding unmapped pages without complaint (backend.hpp), so those cases run only where
  // this is true (the host backend).
  virtual bool checks_every_rule() const = 0;
  // Whether mem_info() counts exactly the backend's own physical memory (true on the host; the
  // driver's figure moves with anything else on the card).
  virtual bool exact_mem_info() const = 0;
};

struct DeviceFactory {
  std::string name;
  // Returns nullptr and says why when the device is not available (no GPU, no driver).
  std::function<std::unique_ptr<TestDevice>(std::string* why_not)> make;
};

// GoogleTest prints parameters with this; the default would dump the object's bytes.
inline void PrintTo(const DeviceFactory& factory, std::ostream* os) {
  *os << factory.name;
}

// The implementations this test program runs the contract against.
std::vector<DeviceFactory> test_devices();

}  // namespace cudefrag::vmm::testing
