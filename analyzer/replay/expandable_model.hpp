// Model of PyTorch's caching allocator with expandable_segments:True (docs/replay.md, model 2;
// c10/cuda/CUDACachingAllocator.cpp, "Note [Expandable Segments]", struct ExpandableSegment,
// find_expandable_block, try_allocate_expandable_block, map_block, unmap_block).
//
// One virtual segment per (stream, pool), 9/8 of the card long, mapped page by page from its
// start as it grows: pages of 2 MiB for the small pool (requests <= 1 MiB), 20 MiB for the large
// pool. Blocks are split (any rest >= 512 B) and merged as in the native allocator, but a free
// block followed by unmapped space can grow in place. Freed pages stay mapped; when the driver
// says no, every whole page inside a free block is unmapped (release_cached_blocks) and the
// request is tried again. Live blocks still pin the pages they touch, and a page shared by a live
// block and a free one cannot go: that is the fragmentation left.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <tuple>
#include <unordered_map>

#include "analyzer/replay/model.hpp"

namespace cudefrag::analyzer::replay {

class ExpandableModel final : public Model {
 public:
  explicit ExpandableModel(Bytes cap);

  bool allocate(std::uint64_t key, Bytes size, std::uint64_t stream, bool legacy) override;
  void free(std::uint64_t key, std::uint64_t stream, bool legacy) override;
  Bytes reserved() const override { return reserved_; }
  Bytes peak_reserved() const override { return peak_; }
  // One per run of pages mapped (PyTorch maps a block's missing pages in one call).
  std::uint64_t driver_allocations() const override { return maps_; }

  static Bytes page_size(bool small) { return small ? MiB(2) : MiB(20); }

 private:
  struct Block {
    std::uint64_t size = 0;
    std::uint64_t stream = 0;
    std::uint64_t prev = 0;  // neighbours in the same segment, 0 for none
    std::uint64_t next = 0;
    bool small = false;
    bool allocated = false;
    bool mapped = false;
  };
  using PoolKey = std::pair<bool, std::uint64_t>;                                 // pool, stream
  using FreeKey = std::tuple<bool, std::uint64_t, std::uint64_t, std::uint64_t>;  // + size, addr

  FreeKey free_key(std::uint64_t address) const {
    const Block& b = blocks_.at(address);
    return {b.small, b.stream, b.size, address};
  }
  bool allocatable(std::uint64_t address) const {
    return address != 0 && !blocks_.at(address).allocated;
  }
  std::uint64_t expandable_size(std::uint64_t address) const;
  bool take_free_block(bool small, std::uint64_t stream, Bytes size, std::uint64_t* address);
  bool grow(bool small, std::uint64_t stream, Bytes size, std::uint64_t* address);
  std::uint64_t find_candidate(bool small, std::uint64_t stream, Bytes size);
  // Maps the pages under the first `size` bytes of an unmapped block; returns the address of
  // the free mapped block holding them (merged with free mapped neighbours), 0 when over the cap.
  std::uint64_t map_block(std::uint64_t address, Bytes size);
  void unmap_free_pages();
  // Splits block `address` at `offset`; returns the address of the second part.
  std::uint64_t split(std::uint64_t address, std::uint64_t offset);
  // Merges `address` with neighbour `other` if both are free and mapped alike; returns the
  // address of the result.
  std::uint64_t merge(std::uint64_t address, std::uint64_t other);
  void add_unmapped(std::uint64_t address);

  Bytes cap_;
  Bytes segment_va_;
  Bytes reserved_;
  Bytes peak_;
  std::uint64_t maps_ = 0;
  // Segments start on a multiple of both page sizes, so that pages are aligned addresses.
  std::uint64_t next_address_ = MiB(20).value << 20;
  std::unordered_map<std::uint64_t, Block> blocks_;
  std::set<FreeKey> free_;                               // free and mapped
  std::map<PoolKey, std::set<std::uint64_t>> unmapped_;  // by address
  std::unordered_map<std::uint64_t, std::uint64_t> live_;
};

}  // namespace cudefrag::analyzer::replay
