// Models of allocators that carve blocks out of segments they get from the driver whole, and
// give a segment back only when nothing in it is live (docs/replay.md, models 1 and 3):
// - PyTorch's native caching allocator (c10/cuda/CUDACachingAllocator.cpp, default settings);
// - the driver's stream-ordered pool behind cudaMallocAsync, as far as it can be modelled.
// A freed block merges with free neighbours of its own segment, never across segments: that is
// the fragmentation these models exist to show.
#pragma once

#include <cstdint>
#include <set>
#include <tuple>
#include <unordered_map>

#include "analyzer/replay/model.hpp"

namespace cudefrag::analyzer::replay {

enum class CachingFlavor : std::uint8_t { kPyTorchNative, kAsyncPool };

class CachingModel final : public Model {
 public:
  CachingModel(CachingFlavor flavor, Bytes cap);

  bool allocate(std::uint64_t key, Bytes size, std::uint64_t stream, bool legacy) override;
  void free(std::uint64_t key, std::uint64_t stream, bool legacy) override;
  Bytes reserved() const override { return reserved_; }
  Bytes peak_reserved() const override { return peak_; }
  std::uint64_t driver_allocations() const override { return segments_created_; }

  // For the tests: segments held, and free blocks cached in them.
  std::size_t segments() const { return segments_; }
  std::size_t free_blocks() const { return free_.size(); }

  // The rules, public so that the tests and docs/replay.md can state them.
  Bytes round_size(Bytes size) const;
  Bytes segment_size(Bytes rounded) const;
  bool small_pool(Bytes rounded) const;
  bool should_split(bool small, Bytes remaining) const;

 private:
  struct Block {
    std::uint64_t size = 0;
    std::uint64_t stream = 0;
    std::uint64_t prev = 0;  // address of the neighbour in the same segment, 0 for none
    std::uint64_t next = 0;
    bool small = false;
    bool allocated = false;
  };
  // Free blocks in best-fit order: pool, stream, size, address (PyTorch's BlockComparatorSize).
  using FreeKey = std::tuple<bool, std::uint64_t, std::uint64_t, std::uint64_t>;

  FreeKey free_key(std::uint64_t address, const Block& b) const {
    return {b.small, b.stream, b.size, address};
  }
  bool new_segment(bool small, std::uint64_t stream, Bytes size, std::uint64_t* address);
  void release_free_segments();
  // Merges block `address` with `neighbour` when that one is free; returns the merged block's
  // address. The merged block is not in the free set: the caller puts it there.
  std::uint64_t merge(std::uint64_t address, std::uint64_t neighbour);

  CachingFlavor flavor_;
  Bytes cap_;
  Bytes reserved_;
  Bytes peak_;
  std::size_t segments_ = 0;
  std::uint64_t segments_created_ = 0;
  std::uint64_t next_address_ = std::uint64_t{1} << 40;  // model addresses, never reused
  std::unordered_map<std::uint64_t, Block> blocks_;      // by address
  std::set<FreeKey> free_;
  std::unordered_map<std::uint64_t, std::uint64_t> live_;  // key -> block address
};

}  // namespace cudefrag::analyzer::replay
