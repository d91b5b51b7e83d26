// Data patterns the examples write into device memory and check, on the device and on the host.
//
// A buffer is seen as `rows` rows of `words` 32-bit words, `pitch` bytes apart; a linear buffer
// is one row. Word (r, w) holds pattern_word(seed, r * words + w), so any byte written by the
// wrong owner, or any page mapped to the wrong place, shows as a mismatch.
#pragma once

#include <cstddef>
#include <cstdint>

namespace cudefrag::examples {

struct Rows {
  void* base = nullptr;
  std::size_t pitch = 0;  // bytes from one row to the next
  std::size_t words = 0;  // 32-bit words checked per row
  std::size_t rows = 1;
};

inline Rows linear_rows(void* base, std::size_t bytes) {
  return Rows{base, bytes, bytes / sizeof(std::uint32_t), 1};
}

__host__ __device__ inline std::uint32_t pattern_word(std::uint64_t seed, std::uint64_t index) {
  // splitmix64 finaliser: neighbouring indices and seeds give unrelated words.
  std::uint64_t z = seed * 0x9E3779B97F4A7C15ull + index + 1;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return static_cast<std::uint32_t>(z ^ (z >> 31));
}

__device__ inline std::uint32_t* row_word(const Rows& r, std::size_t row, std::size_t word) {
  return reinterpret_cast<std::uint32_t*>(static_cast<char*>(r.base) + row * r.pitch) + word;
}

__global__ void fill_pattern(Rows r, std::uint64_t seed) {
  const std::size_t total = r.rows * r.words;
  for (std::size_t i = blockIdx.x * std::size_t{blockDim.x} + threadIdx.x; i < total;
       i += std::size_t{gridDim.x} * blockDim.x) {
    *row_word(r, i / r.words, i % r.words) = pattern_word(seed, i);
  }
}

// Adds the number of mismatching words to *errors.
__global__ void check_pattern(Rows r, std::uint64_t seed, unsigned long long* errors) {
  const std::size_t total = r.rows * r.words;
  unsigned long long bad = 0;
  for (std::size_t i = blockIdx.x * std::size_t{blockDim.x} + threadIdx.x; i < total;
       i += std::size_t{gridDim.x} * blockDim.x) {
    if (*row_word(r, i / r.words, i % r.words) != pattern_word(seed, i)) ++bad;
  }
  if (bad != 0) atomicAdd(errors, bad);
}

inline unsigned grid_for(const Rows& r) {
  const std::size_t total = r.rows * r.words;
  const std::size_t blocks = (total + 255) / 256;
  return static_cast<unsigned>(blocks == 0 ? 1 : (blocks > 1024 ? 1024 : blocks));
}

// Host-side check of a dense copy (rows packed, `words` words each). Returns mismatches.
inline std::size_t count_mismatches(const std::uint32_t* host, std::size_t words, std::size_t rows,
                                    std::uint64_t seed) {
  std::size_t bad = 0;
  for (std::size_t i = 0; i < words * rows; ++i) {
    if (host[i] != pattern_word(seed, i)) ++bad;
  }
  return bad;
}

}  // namespace cudefrag::examples
