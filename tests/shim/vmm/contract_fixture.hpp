// Fixture shared by the backend contract tests: one TestDevice per test, and byte patterns that
// tell mappings apart.
#pragma once

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "tests/shim/vmm/test_device.hpp"

namespace cudefrag::vmm::testing {

class ContractFixture : public ::testing::TestWithParam<DeviceFactory> {
 protected:
  void SetUp() override {
    std::string why_not;
    device_ = GetParam().make(&why_not);
    if (device_ == nullptr) GTEST_SKIP() << GetParam().name << " not available: " << why_not;
  }

  Backend& backend() { return device_->backend(); }
  Bytes g() { return backend().granularity(); }

  // `n` bytes that depend on `seed` and on their position, so shifted or mixed-up pages show.
  static std::vector<std::byte> pattern(std::size_t n, std::uint8_t seed) {
    std::vector<std::byte> bytes(n);
    for (std::size_t i = 0; i < n; ++i) {
      bytes[i] = static_cast<std::byte>((i * 131 + seed * 7u + (i >> 12) + (i >> 20) * 29) & 0xff);
    }
    return bytes;
  }

  // Writes a probe at the start and at the end of every granule of [va, va + size), each one
  // different: enough to tell pages apart, and cheap under sanitizers and over PCIe.
  void fill(DevicePtr va, Bytes size, std::uint8_t seed) {
    for_each_probe(va, size, seed, [&](DevicePtr at, std::uint8_t probe_seed) {
      device_->write(at, pattern(kProbe.value, probe_seed));
    });
  }

  // True when [va, va + size) holds the probes fill(va, size, seed) wrote.
  bool holds(DevicePtr va, Bytes size, std::uint8_t seed) {
    bool same = true;
    for_each_probe(va, size, seed, [&](DevicePtr at, std::uint8_t probe_seed) {
      std::vector<std::byte> got(kProbe.value);
      device_->read(at, got);
      same = same && got == pattern(kProbe.value, probe_seed);
    });
    return same;
  }

  std::unique_ptr<TestDevice> device_;

 private:
  static constexpr Bytes kProbe = KiB(4);

  template <typename F>
  void for_each_probe(DevicePtr va, Bytes size, std::uint8_t seed, F&& f) {
    const std::uint64_t granules = size / g();
    for (std::uint64_t i = 0; i < granules; ++i) {
      const DevicePtr granule = va + g() * i;
      const auto probe_seed = static_cast<std::uint8_t>(seed * 31u + i * 2);
      f(granule, probe_seed);
      f(granule + (g() - kProbe), static_cast<std::uint8_t>(probe_seed + 1));
    }
  }
};

inline std::string device_name(const ::testing::TestParamInfo<DeviceFactory>& info) {
  return info.param.name;
}

}  // namespace cudefrag::vmm::testing
