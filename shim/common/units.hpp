// Strong types for the quantities that travel between the hooks, the arena and the backend.
// A byte count, a device ordinal and a stack id are different things; the compiler keeps them
// apart so that a page count is never passed where bytes were meant.
#pragma once

#include <compare>
#include <cstdint>
#include <functional>

namespace cudefrag {

// A byte count. Arithmetic stays within Bytes; mixing with raw integers needs .value.
struct Bytes {
  std::uint64_t value = 0;

  constexpr Bytes() = default;
  constexpr explicit Bytes(std::uint64_t v) : value(v) {}

  constexpr auto operator<=>(const Bytes&) const = default;
  constexpr Bytes operator+(Bytes o) const { return Bytes{value + o.value}; }
  constexpr Bytes operator-(Bytes o) const { return Bytes{value - o.value}; }
  constexpr Bytes& operator+=(Bytes o) {
    value += o.value;
    return *this;
  }
  constexpr Bytes& operator-=(Bytes o) {
    value -= o.value;
    return *this;
  }
  constexpr Bytes operator*(std::uint64_t n) const { return Bytes{value * n}; }
  // Number of whole `unit`s in this count (unit must be non-zero).
  constexpr std::uint64_t operator/(Bytes unit) const { return value / unit.value; }
  constexpr Bytes operator%(Bytes unit) const { return Bytes{value % unit.value}; }

  // Rounds up to a multiple of `unit` (unit must be a power of two).
  constexpr Bytes align_up(Bytes unit) const {
    return Bytes{(value + unit.value - 1) & ~(unit.value - 1)};
  }
  constexpr bool is_aligned(Bytes unit) const { return (value & (unit.value - 1)) == 0; }
};

constexpr Bytes KiB(std::uint64_t n) { return Bytes{n << 10}; }
constexpr Bytes MiB(std::uint64_t n) { return Bytes{n << 20}; }
constexpr Bytes GiB(std::uint64_t n) { return Bytes{n << 30}; }

// A CUDA device ordinal as the runtime numbers them (0..count-1).
struct DeviceOrdinal {
  int value = 0;
  constexpr auto operator<=>(const DeviceOrdinal&) const = default;
};

// A device virtual address (CUdeviceptr); 0 is "none".
struct DevicePtr {
  std::uintptr_t value = 0;
  constexpr auto operator<=>(const DevicePtr&) const = default;
  constexpr explicit operator bool() const { return value != 0; }
  constexpr DevicePtr operator+(Bytes off) const { return DevicePtr{value + off.value}; }
  constexpr Bytes operator-(DevicePtr o) const { return Bytes{value - o.value}; }
  void* as_void() const { return reinterpret_cast<void*>(value); }
  static DevicePtr from(const void* p) { return DevicePtr{reinterpret_cast<std::uintptr_t>(p)}; }
};

// Id of a call stack stored once in a trace.
struct StackId {
  std::uint32_t value = 0;
  constexpr auto operator<=>(const StackId&) const = default;
};

}  // namespace cudefrag

template <>
struct std::hash<cudefrag::DevicePtr> {
  std::size_t operator()(cudefrag::DevicePtr p) const noexcept {
    return std::hash<std::uintptr_t>{}(p.value);
  }
};
