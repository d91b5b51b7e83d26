// The counters file shared by the shim and the launcher: created by one side, mapped and updated
// by the other, read back whole; foreign or damaged files are refused.
#include "shim/hooks/stats_file.hpp"

#include <gtest/gtest.h>
#include <sys/mman.h>

#include <fstream>
#include <thread>
#include <vector>

#include "tests/shim/hooks/support/subprocess.hpp"

namespace cudefrag::stats {
namespace {

TEST(StatsFile, CreatedMappedUpdatedAndReadBack) {
  test_support::TempDir dir;
  const std::string path = dir.file("stats");
  std::string error;
  ASSERT_TRUE(create_file(path, error)) << error;
  const char* why = "";
  StatsBlock* block = map_file(path.c_str(), &why);
  ASSERT_NE(block, nullptr) << why;
  add(block->entries[3].calls, 7);
  add(block->entries[3].bytes, 1 << 20);
  add_live(block->devices[1], 100);
  add_live(block->devices[1], 50);
  sub_live(block->devices[1], 120);
  add_live(block->devices[1], 10);
  block->mode_effective = ReportedMode::kPassthrough;

  StatsBlock read{};
  ASSERT_TRUE(read_file(path, read, error)) << error;
  EXPECT_EQ(read.entries[3].calls, 7U);
  EXPECT_EQ(read.entries[3].bytes, 1U << 20);
  EXPECT_EQ(read.devices[1].live_bytes, 40U);
  EXPECT_EQ(read.devices[1].peak_bytes, 150U);
  EXPECT_EQ(read.mode_effective, ReportedMode::kPassthrough);
  munmap(block, sizeof(StatsBlock));
}

TEST(StatsFile, PeakIsTheHighestLiveValueUnderConcurrency) {
  StatsBlock block;
  initialize(block);
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&block] {
      for (int i = 0; i < 1000; ++i) {
        add_live(block.devices[0], 10);
        sub_live(block.devices[0], 10);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(block.devices[0].live_bytes, 0U);
  EXPECT_GE(block.devices[0].peak_bytes, 10U);
  EXPECT_LE(block.devices[0].peak_bytes, 80U);
}

TEST(StatsFile, ForeignFilesAreRefused) {
  test_support::TempDir dir;
  const std::string path = dir.file("stats");
  std::string error;
  const char* why = "";
  EXPECT_EQ(map_file(dir.file("missing").c_str(), &why), nullptr);
  std::ofstream(path) << "not a stats file";
  EXPECT_EQ(map_file(path.c_str(), &why), nullptr);
  EXPECT_NE(std::string(why).find("size"), std::string::npos);
  StatsBlock read{};
  EXPECT_FALSE(read_file(path, read, error));
  EXPECT_NE(error.find("layout"), std::string::npos);

  // Right size, wrong version.
  StatsBlock other;
  initialize(other);
  other.version = kVersion + 1;
  std::ofstream(path, std::ios::binary | std::ios::trunc)
      .write(reinterpret_cast<const char*>(&other), sizeof other);
  EXPECT_EQ(map_file(path.c_str(), &why), nullptr);
  EXPECT_FALSE(read_file(path, read, error));
  EXPECT_FALSE(create_file(dir.file("no/such/dir"), error));
  EXPECT_NE(error.find("no/such/dir"), std::string::npos);
}

}  // namespace
}  // namespace cudefrag::stats
