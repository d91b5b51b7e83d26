// The arena under many threads and several streams, checked against a simple model:
// - no two live blocks overlap, and allocation_range() finds each block whole;
// - every byte written to a block is still there when it is freed, whatever the arena remapped,
//   joined or stitched meanwhile;
// - memory is never reused against the stream rules: before each free, a "kernel" queued on the
//   stream (or still running at cudaFree) writes the block again after a delay; if the arena hands
//   the block to another stream or to cudaMalloc too early, the new owner's bytes get overwritten
//   and its own check fails;
// - the statistics add up and the limit holds at every step.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include "shim/arena/arena.hpp"
#include "tests/shim/arena/arena_test_support.hpp"

namespace cudefrag::arena {
namespace {

using testing::backend_stats;
using testing::HostArenaConfig;
using testing::make_host_arena;
using testing::Patterns;

struct Block {
  DevicePtr p;
  Bytes size;
  std::uint64_t id;
  int stream;  // index into the streams, or -1: allocated with cudaMalloc
};

class Model {
 public:
  // False when the block overlaps a live one.
  bool add(const Block& b) {
    std::lock_guard lock(mu_);
    auto next = by_address_.lower_bound(b.p.value);
    if (next != by_address_.end() && next->first < b.p.value + b.size.value) return false;
    if (next != by_address_.begin()) {
      const Block& prev = blocks_[std::prev(next)->second];
      if (prev.p.value + prev.size.value > b.p.value) return false;
    }
    by_address_.emplace(b.p.value, blocks_.size());
    blocks_.push_back(b);
    requested_ += b.size;
    return true;
  }
  std::optional<Block> take_random(std::mt19937_64& rng) {
    std::lock_guard lock(mu_);
    if (blocks_.empty()) return std::nullopt;
    const std::size_t i = rng() % blocks_.size();
    const Block b = blocks_[i];
    by_address_.erase(b.p.value);
    if (i + 1 != blocks_.size()) {
      blocks_[i] = blocks_.back();
      by_address_[blocks_[i].p.value] = i;
    }
    blocks_.pop_back();
    requested_ -= b.size;
    return b;
  }
  void remove(DevicePtr p) {
    std::lock_guard lock(mu_);
    auto it = by_address_.find(p.value);
    const std::size_t i = it->second;
    by_address_.erase(it);
    requested_ -= blocks_[i].size;
    if (i + 1 != blocks_.size()) {
      blocks_[i] = blocks_.back();
      by_address_[blocks_[i].p.value] = i;
    }
    blocks_.pop_back();
  }
  std::vector<Block> all() {
    std::lock_guard lock(mu_);
    return blocks_;
  }
  Bytes requested() {
    std::lock_guard lock(mu_);
    return requested_;
  }

 private:
  std::mutex mu_;
  std::vector<Block> blocks_;
  std::map<std::uintptr_t, std::size_t> by_address_;
  Bytes requested_;
};

// ThreadSanitizer checks every byte the patterns copy and compare: fewer operations there.
#if defined(__SANITIZE_THREAD__)
constexpr int kOpsScale = 3;
#else
constexpr int kOpsScale = 1;
#endif

struct Config {
  int threads = 4;
  int ops_per_thread = 1500 / kOpsScale;
  int streams = 3;
  Bytes granularity = KiB(64);
  Bytes limit = MiB(24);
  Bytes small_threshold = MiB(1);
  // Share of requests (percent) of 1-3 MiB, above the slabs: these press on the limit.
  int large_percent = 10;
  // Most allocations (percent of all operations) that may fail for want of memory: how many do
  // depends on how many blocks the threads hold at once, so the bound leaves room.
  int max_failure_percent = 10;
  std::uint64_t seed = 1;
  // Whether the run must have reclaimed: with every request in slabs, pages dissolve into the
  // large cache only when all their slots are free, which depends on the threads' timing.
  bool expect_reclaims = true;
};

void run_random(const Config& cfg) {
  HostArenaConfig host;
  host.capacity = MiB(64);
  host.granularity = cfg.granularity;
  host.options.limit = cfg.limit;
  host.options.small_threshold = cfg.small_threshold;
  auto arena = make_host_arena(host);
  ASSERT_NE(arena, nullptr);
  const Patterns patterns(MiB(4));
  std::vector<std::unique_ptr<vmm::HostStream>> streams;
  for (int i = 0; i < cfg.streams; ++i) streams.push_back(std::make_unique<vmm::HostStream>());
  Model model;
  std::atomic<std::uint64_t> next_id{1};
  std::atomic<std::uint64_t> corrupted{0};
  std::atomic<std::uint64_t> overlaps{0};
  std::atomic<std::uint64_t> bad_ranges{0};
  std::atomic<std::uint64_t> bad_frees{0};
  std::atomic<std::uint64_t> over_limit{0};
  std::atomic<std::uint64_t> failures{0};

  const auto report = [&](const Block& b, const char* where) {
    if (corrupted.fetch_add(1) < 5) {
      std::fprintf(stderr, "corrupted (%s): block %lu at %#lx, %lu bytes, stream %d\n", where, b.id,
                   b.p.value, b.size.value, b.stream);
    }
  };
  const auto late_writer = [&](const Block& b, std::uint64_t delay_us) {
    return [&patterns, &report, b, delay_us] {
      if (!patterns.check(b.p, b.size, b.id)) report(b, "late writer");
      std::this_thread::sleep_for(std::chrono::microseconds(delay_us));
      patterns.fill(b.p, b.size, b.id);
    };
  };

  const auto worker = [&](int t) {
    std::mt19937_64 rng(cfg.seed * 1000 + static_cast<std::uint64_t>(t));
    for (int op = 0; op < cfg.ops_per_thread; ++op) {
      const std::uint64_t dice = rng() % 100;
      if (dice < 50) {
        const std::uint64_t kind = rng() % 100;
        Bytes size;
        const auto small_percent = static_cast<std::uint64_t>((100 - cfg.large_percent) * 2 / 3);
        if (kind < small_percent) {
          size = Bytes{1 + rng() % KiB(16).value};
        } else if (kind < static_cast<std::uint64_t>(100 - cfg.large_percent)) {
          size = Bytes{KiB(16).value + rng() % KiB(512).value};
        } else {
          size = Bytes{MiB(1).value + rng() % MiB(2).value};
        }
        const bool legacy = rng() % 5 == 0;
        const int s = legacy ? -1 : static_cast<int>(rng() % streams.size());
        const vmm::StreamRef ref =
            legacy ? vmm::StreamRef{} : streams[static_cast<std::size_t>(s)]->ref();
        const AllocResult r =
            arena->allocate(size, ref, legacy ? AllocKind::kLegacy : AllocKind::kStreamOrdered);
        if (!r.ok()) {
          failures.fetch_add(1);
          continue;
        }
        const Block b{r.ptr, size, next_id.fetch_add(1), s};
        const auto range = arena->allocation_range(r.ptr + Bytes{size.value - 1});
        if (!range || range->base != r.ptr || range->size != size ||
            !Bytes{r.ptr.value}.is_aligned(Bytes{256})) {
          bad_ranges.fetch_add(1);
        }
        // Written (or queued) before the model shows the block to other threads' frees.
        if (legacy) {
          patterns.fill(b.p, b.size, b.id);
        } else {
          streams[static_cast<std::size_t>(s)]->enqueue(
              [&patterns, b] { patterns.fill(b.p, b.size, b.id); });
        }
        if (!model.add(b)) overlaps.fetch_add(1);
      } else if (dice < 99) {
        const std::optional<Block> b = model.take_random(rng);
        if (!b) continue;
        const std::uint64_t delay = rng() % 200;
        FreeKind kind = FreeKind::kStreamOrdered;
        std::size_t fs = 0;
        if (b->stream < 0) {
          // cudaMalloc'd: checked now; a kernel on some stream may still write it at cudaFree.
          if (!patterns.check(b->p, b->size, b->id)) report(*b, "cudaFree");
          fs = rng() % streams.size();
          kind = rng() % 2 == 0 ? FreeKind::kLegacy : FreeKind::kStreamOrdered;
        } else if (rng() % 8 == 0) {
          // Freed on another stream: the program orders it after the block's own stream.
          streams[static_cast<std::size_t>(b->stream)]->synchronize();
          fs = rng() % streams.size();
        } else {
          fs = static_cast<std::size_t>(b->stream);
        }
        streams[fs]->enqueue(late_writer(*b, delay));
        const vmm::StreamRef ref =
            kind == FreeKind::kLegacy ? vmm::StreamRef{} : streams[fs]->ref();
        if (arena->free(b->p, ref, kind) != FreeResult::kOk) bad_frees.fetch_add(1);
      } else {
        (void)arena->trim(MiB(rng() % 16));
      }
      if (backend_stats(*arena).device_bytes > cfg.limit) over_limit.fetch_add(1);
    }
  };

  std::vector<std::thread> threads;
  for (int t = 0; t < cfg.threads; ++t) threads.emplace_back(worker, t);
  for (auto& th : threads) th.join();
  for (auto& s : streams) s->synchronize();

  EXPECT_EQ(corrupted.load(), 0u);
  EXPECT_EQ(overlaps.load(), 0u);
  EXPECT_EQ(bad_ranges.load(), 0u);
  EXPECT_EQ(bad_frees.load(), 0u);
  EXPECT_EQ(over_limit.load(), 0u);

  const std::vector<Block> left = model.all();
  ArenaStats s = arena->stats();
  EXPECT_EQ(s.live_allocations, left.size());
  EXPECT_EQ(s.requested, model.requested());
  EXPECT_GE(s.live, s.requested);
  EXPECT_EQ(s.physical, backend_stats(*arena).device_bytes);
  EXPECT_LE(s.peak_physical, cfg.limit);
  // The run exercised what it is meant to.
  if (cfg.expect_reclaims) {
    EXPECT_GT(s.reclaims, 0u);
  }
  EXPECT_GT(s.events_recorded, 0u);
  EXPECT_GT(s.device_syncs, 0u);
  EXPECT_LT(failures.load(), static_cast<std::uint64_t>(cfg.threads * cfg.ops_per_thread *
                                                        cfg.max_failure_percent / 100))
      << "allocations failed (out of memory)";

  for (const Block& b : left) {
    EXPECT_TRUE(patterns.check(b.p, b.size, b.id)) << b.id;
    EXPECT_EQ(arena->free(b.p, {}, FreeKind::kLegacy), FreeResult::kOk);
  }
  ASSERT_EQ(arena->trim(Bytes{0}), vmm::Status::kOk);
  s = arena->stats();
  EXPECT_EQ(s.live, Bytes{0});
  EXPECT_EQ(s.requested, Bytes{0});
  EXPECT_EQ(s.physical, Bytes{0});
  const vmm::HostBackendStats b = backend_stats(*arena);
  EXPECT_EQ(b.live_handles, 0u);
  EXPECT_EQ(b.live_mappings, 0u);
  std::printf(
      "random run: %lu allocations (%lu slow, %lu failed), %lu stitches, %lu joins, "
      "%lu reclaims, %lu events, %lu event waits, %lu device syncs\n",
      s.allocations, s.slow_allocations, failures.load(), s.stitches, s.joins, s.reclaims,
      s.events_recorded, s.event_waits, s.device_syncs);
}

TEST(ArenaConcurrent, RandomOperationsKeepEveryPromise) {
  run_random(Config{});
}

TEST(ArenaConcurrent, RandomOperationsOnTwoMegabytePages) {
  Config cfg;
  cfg.granularity = MiB(2);
  cfg.limit = MiB(20);
  // Pressed hard enough that the cache is reclaimed many times in any interleaving of the
  // threads (with one request in ten this large, some runs under ThreadSanitizer reclaimed
  // once or never).
  cfg.large_percent = 30;
  // Which fails more often: 21-55 of 1064 operations failed under ThreadSanitizer in 10 runs.
  cfg.max_failure_percent = 25;
  cfg.seed = 2;
  cfg.ops_per_thread = 800 / kOpsScale;
  run_random(cfg);
}

// The shim's default (CUDEFRAG_SMALL_MAX=8MiB): every request of the run is a slab slot, in
// 8 MiB slab pages.
TEST(ArenaConcurrent, RandomOperationsWithEightMegabyteSlabs) {
  Config cfg;
  cfg.granularity = MiB(2);
  cfg.limit = MiB(32);
  cfg.small_threshold = MiB(8);
  cfg.seed = 3;
  cfg.expect_reclaims = false;
  cfg.ops_per_thread = 800 / kOpsScale;
  run_random(cfg);
}

TEST(ArenaConcurrent, AtTheLimitAnotherStreamWaitsForThePendingFree) {
  HostArenaConfig host;
  host.capacity = MiB(16);
  auto arena = make_host_arena(host);
  vmm::HostStream s1;
  vmm::HostStream s2;
  const Patterns patterns(MiB(16));
  const AllocResult a = arena->allocate(MiB(16), s1.ref(), AllocKind::kStreamOrdered);
  ASSERT_TRUE(a.ok());
  std::atomic<bool> kernel_done{false};
  s1.enqueue([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
    patterns.fill(a.ptr, MiB(16), 1);
    kernel_done = true;
  });
  ASSERT_EQ(arena->free(a.ptr, s1.ref(), FreeKind::kStreamOrdered), FreeResult::kOk);
  const AllocResult b = arena->allocate(MiB(16), s2.ref(), AllocKind::kStreamOrdered);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(b.ptr, a.ptr);
  EXPECT_TRUE(kernel_done.load());
  EXPECT_EQ(arena->stats().device_syncs, 0u);
  EXPECT_EQ(arena->stats().event_waits, 1u);
}

TEST(ArenaConcurrent, FastPathsOnManyThreadsNeverOverlap) {
  HostArenaConfig host;
  host.capacity = MiB(256);
  auto arena = make_host_arena(host);
  Model model;
  std::atomic<std::uint64_t> overlaps{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      vmm::HostStream s;
      std::mt19937_64 rng(static_cast<std::uint64_t>(t));
      std::vector<Block> mine;
      for (int op = 0; op < 3000; ++op) {
        if (mine.size() < 16 && rng() % 2 == 0) {
          const Bytes size{rng() % 4 == 0 ? MiB(2 + rng() % 3).value : 64 + rng() % 4096};
          const AllocResult r = arena->allocate(size, s.ref(), AllocKind::kStreamOrdered);
          ASSERT_TRUE(r.ok());
          mine.push_back(Block{r.ptr, size, 0, t});
          if (!model.add(mine.back())) overlaps.fetch_add(1);
        } else if (!mine.empty()) {
          const Block b = mine[rng() % mine.size()];
          std::erase_if(mine, [&](const Block& m) { return m.p == b.p; });
          model.remove(b.p);
          ASSERT_EQ(arena->free(b.p, s.ref(), FreeKind::kStreamOrdered), FreeResult::kOk);
        }
      }
      for (const Block& b : mine) {
        model.remove(b.p);
        ASSERT_EQ(arena->free(b.p, s.ref(), FreeKind::kStreamOrdered), FreeResult::kOk);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(arena->stats().live, Bytes{0});
}

}  // namespace
}  // namespace cudefrag::arena
