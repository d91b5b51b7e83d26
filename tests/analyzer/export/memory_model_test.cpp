#include "analyzer/export/memory_model.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace cudefrag::analyzer {
namespace {

// Records the model's changes as text, and checks its invariant after each: every live block
// inside the mapped ranges of its device.
class Log : public MemoryListener {
 public:
  explicit Log(MemoryModel& m) : model(m) { m.set_listener(this); }
  void mapped(const DeviceMemory&, AddressRange r) override { add("map", r.begin, r.size()); }
  void unmapped(const DeviceMemory&, AddressRange r) override { add("unmap", r.begin, r.size()); }
  void allocated(const DeviceMemory&, Block& b) override { add("alloc", b.address, b.size); }
  void freed(const DeviceMemory&, const Block& b, bool replaced) override {
    add(replaced ? "replaced" : "free", b.address, b.size);
  }
  void add(const char* what, std::uint64_t a, std::uint64_t n) {
    events.push_back(std::string(what) + " " + std::to_string(a) + "+" + std::to_string(n));
  }
  void expect_invariant() {
    for (const auto& [address, b] : model.blocks()) {
      const auto inside = model.device(b.device).mapped.intersect(address, address + b.size);
      std::uint64_t covered = 0;
      for (const AddressRange& r : inside) covered += r.size();
      EXPECT_EQ(covered, b.size) << "block " << address << " not mapped";
    }
  }
  MemoryModel& model;
  std::vector<std::string> events;
};

Block block(std::uint64_t address, std::uint64_t size, std::int16_t device = 0) {
  Block b;
  b.address = address;
  b.size = size;
  b.requested = size;
  b.device = device;
  return b;
}

using Lines = std::vector<std::string>;

TEST(MemoryModel, BlocksInsideArenaRangesMapNothing) {
  MemoryModel m;
  Log log(m);
  m.map(0, 1000, 1000);
  m.allocate(block(1000, 100));
  EXPECT_TRUE(m.free(1000));
  EXPECT_FALSE(m.free(1000));
  EXPECT_EQ(log.events, (Lines{"map 1000+1000", "alloc 1000+100", "free 1000+100"}));
  EXPECT_EQ(m.device(0).live, 0u);
  EXPECT_EQ(m.device(0).mapped.bytes(), 1000u);
}

TEST(MemoryModel, ABlockOutsideEveryRangeMapsItsOwnAndUnmapsItWhenFreed) {
  MemoryModel m;
  Log log(m);
  m.map(0, 1000, 100);
  m.allocate(block(1050, 100));  // half inside
  log.expect_invariant();
  m.free(1050);
  EXPECT_EQ(log.events, (Lines{"map 1000+100", "map 1100+50", "alloc 1050+100", "free 1050+100",
                               "unmap 1100+50"}));
  EXPECT_EQ(m.device(0).mapped.bytes(), 100u);
}

TEST(MemoryModel, AnUnmapUnderALiveBlockWaitsForItsFree) {
  MemoryModel m;
  Log log(m);
  m.map(0, 0, 1000);
  m.allocate(block(200, 100));
  m.unmap(0, 0, 1000);
  log.expect_invariant();
  EXPECT_EQ(m.device(0).mapped.bytes(), 100u);
  m.free(200);
  EXPECT_EQ(log.events, (Lines{"map 0+1000", "alloc 200+100", "unmap 0+200", "unmap 300+700",
                               "free 200+100", "unmap 200+100"}));
  EXPECT_EQ(m.device(0).mapped.bytes(), 0u);
}

TEST(MemoryModel, AnOverlappingAllocationReplacesTheLiveOnes) {
  MemoryModel m;
  Log log(m);
  m.map(0, 0, 1000);
  m.allocate(block(100, 100));
  m.allocate(block(250, 100));
  m.allocate(block(150, 150));  // overlaps both: their frees were lost
  log.expect_invariant();
  EXPECT_EQ(m.blocks().size(), 1u);
  EXPECT_EQ(m.device(0).live, 150u);
  EXPECT_EQ(m.device(0).live_count, 1u);
  EXPECT_EQ(log.events[3], "replaced 100+100");
  EXPECT_EQ(log.events[4], "replaced 250+100");
}

TEST(MemoryModel, ArenaRangesOverHeldMemoryStayAfterTheBlock) {
  MemoryModel m;
  Log log(m);
  m.allocate(block(0, 100));  // no arena range yet: mapped for the block
  m.map(0, 0, 400);           // the arena maps it and more
  m.free(0);
  EXPECT_EQ(log.events, (Lines{"map 0+100", "alloc 0+100", "map 100+300", "free 0+100"}));
  EXPECT_EQ(m.device(0).mapped.bytes(), 400u);
}

TEST(MemoryModel, DevicesAreKeptApart) {
  MemoryModel m;
  Log log(m);
  m.map(1, 0, 100);
  m.allocate(block(1000, 10, 0));
  EXPECT_EQ(m.device(0).mapped.bytes(), 10u);
  EXPECT_EQ(m.device(1).mapped.bytes(), 100u);
  EXPECT_TRUE(m.device(1).has_arena_ranges);
  EXPECT_FALSE(m.device(0).has_arena_ranges);
}

}  // namespace
}  // namespace cudefrag::analyzer
