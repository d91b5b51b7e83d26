// The trace behind the hooks, without a GPU: the hooks linked into this test in front of the fake
// libcudart and libcuda, arenas on the host backend, CUDEFRAG_TRACE naming a file. What the
// program allocated and freed, served by the arena or by CUDA, the arena's refusal with its state,
// and every change the arena made to its memory must come back out of the analyzer's reader.
#include <dlfcn.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <map>
#include <string>
#include <variant>
#include <vector>

#include "analyzer/read/reader.hpp"
#include "shim/hooks/arenas.hpp"
#include "shim/hooks/exports.hpp"
#include "shim/hooks/hook_table.hpp"
#include "shim/hooks/shim_state.hpp"
#include "shim/vmm/host_backend.hpp"
#include "tests/shim/hooks/fake/fake_control.hpp"

extern "C" void cudefrag_flush(void);
extern "C" void cudefrag_mark(const char* text);

namespace cudefrag::hooks {
namespace {

constexpr std::size_t kMiB = std::size_t{1} << 20;
namespace format = trace::format;

std::unique_ptr<vmm::Backend> host_backend(DeviceOrdinal device, vmm::Status*) {
  vmm::HostBackendOptions o;
  o.device = device;
  o.capacity = MiB(256);
  return vmm::make_host_backend(o);
}

struct Trace {
  std::vector<format::MemoryRecord> allocs;
  std::vector<format::MemoryRecord> frees;
  std::vector<format::OomRecord> ooms;
  std::vector<format::ArenaRecord> arena;
  std::vector<std::string> entry_points;
  std::vector<std::string> marks;
  std::map<std::string, std::size_t> arena_at_mark;  // arena records before each mark
  analyzer::Ending ending = analyzer::Ending::kReading;
};

Trace read_trace(const std::string& path) {
  Trace t;
  analyzer::TraceReader reader(path);
  analyzer::Record r;
  while (reader.next(r)) {
    if (const auto* m = std::get_if<format::MemoryRecord>(&r)) {
      (m->header.type == format::RecordType::kAlloc ? t.allocs : t.frees).push_back(*m);
    } else if (const auto* o = std::get_if<format::OomRecord>(&r)) {
      t.ooms.push_back(*o);
    } else if (const auto* a = std::get_if<format::ArenaRecord>(&r)) {
      t.arena.push_back(*a);
    } else if (const auto* e = std::get_if<analyzer::EntryPointName>(&r)) {
      if (t.entry_points.size() <= e->id) t.entry_points.resize(e->id + 1u);
      t.entry_points[e->id] = e->name;
    } else if (const auto* k = std::get_if<analyzer::Mark>(&r)) {
      t.marks.push_back(k->text);
      t.arena_at_mark[k->text] = t.arena.size();
    }
  }
  t.ending = reader.ending();
  EXPECT_FALSE(reader.error()) << reader.error()->message;
  return t;
}

// The newest record at that address: the tests share one trace, and the arena may hand a test
// an address an earlier test (in whatever order gtest ran them) already used and freed.
const format::MemoryRecord* find(const std::vector<format::MemoryRecord>& records, const void* p) {
  for (auto r = records.rbegin(); r != records.rend(); ++r) {
    if (r->address == reinterpret_cast<std::uintptr_t>(p)) return &*r;
  }
  return nullptr;
}

// The shim reads its configuration once per process, so every test here shares one trace file
// and one arena (64 MiB limit on a 256 MiB host device); each test frees what it allocates.
class TraceHooks : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    char dir_template[] = "/tmp/cudefrag_trace_hooks_XXXXXX";
    ASSERT_NE(mkdtemp(dir_template), nullptr);
    dir_ = dir_template;
    path_ = dir_ + "/run.trace";
    // Read once, when the shim sets itself up on the first hook call.
    setenv("CUDEFRAG_TRACE", path_.c_str(), 1);
    setenv("CUDEFRAG_STACKS", "none", 1);
    ASSERT_NE(dlopen(CUDEFRAG_TEST_FAKE_DIR "/libcuda.so.1", RTLD_NOW | RTLD_GLOBAL), nullptr)
        << dlerror();
    fake_cudart_reset();  // also keeps the linked fake runtime, which the hooks forward to
    set_backend_factory_for_testing(&host_backend);
    set_limit_for_testing(MiB(64));
  }
  static void TearDownTestSuite() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  void SetUp() override { set_mode_for_testing(config::Mode::kArena); }

  static std::string dir_;
  static std::string path_;
};
std::string TraceHooks::dir_;
std::string TraceHooks::path_;

TEST_F(TraceHooks, AllocationsFreesAndTheArenasRefusalReachTheTrace) {
  const std::string& path = path_;

  void* big = nullptr;
  void* small = nullptr;
  ASSERT_EQ(cudaMalloc(&big, 19 * kMiB), cudaSuccess);  // past any slab size: a range
  ASSERT_EQ(cudaMallocAsync(&small, 1000, cudaStreamPerThread), cudaSuccess);
  cudefrag_mark("between");
  ASSERT_EQ(cudaFreeAsync(small, cudaStreamPerThread), cudaSuccess);
  ASSERT_EQ(cudaFree(big), cudaSuccess);
  void* refused = nullptr;
  ASSERT_EQ(cudaMalloc(&refused, 128 * kMiB), cudaErrorMemoryAllocation);
  set_mode_for_testing(config::Mode::kPassthrough);
  void* foreign = nullptr;
  ASSERT_EQ(cudaMalloc(&foreign, kMiB), cudaSuccess);
  ASSERT_EQ(cudaFree(foreign), cudaSuccess);
  cudefrag_flush();

  const Trace t = read_trace(path);
  EXPECT_NE(t.ending, analyzer::Ending::kError);
  const auto entry = [&](const format::MemoryRecord& r) {
    return r.entry < t.entry_points.size() ? t.entry_points[r.entry] : std::string("?");
  };

  const format::MemoryRecord* a = find(t.allocs, big);
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(entry(*a), "cudaMalloc");
  EXPECT_EQ(a->requested, 19 * kMiB);
  EXPECT_EQ(a->granted, 20 * kMiB);
  EXPECT_EQ(a->result, 0);
  EXPECT_EQ(a->device, 0);
  const format::MemoryRecord* s = find(t.allocs, small);
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(entry(*s), "cudaMallocAsync");
  EXPECT_EQ(s->requested, 1000U);
  EXPECT_EQ(s->stream, 2U);  // cudaStreamPerThread, as passed

  const format::MemoryRecord* fa = find(t.frees, big);
  ASSERT_NE(fa, nullptr);
  EXPECT_EQ(entry(*fa), "cudaFree");
  EXPECT_GE(fa->time_ns, a->time_ns);
  const format::MemoryRecord* fs = find(t.frees, small);
  ASSERT_NE(fs, nullptr);
  EXPECT_EQ(entry(*fs), "cudaFreeAsync");

  // Served by CUDA in passthrough: traced the same way.
  const format::MemoryRecord* fo = find(t.allocs, foreign);
  ASSERT_NE(fo, nullptr);
  EXPECT_EQ(fo->requested, kMiB);
  EXPECT_NE(find(t.frees, foreign), nullptr);

  ASSERT_EQ(t.ooms.size(), 1U);
  EXPECT_EQ(t.ooms[0].requested, 128 * kMiB);
  EXPECT_EQ(t.ooms[0].result, 2);
  EXPECT_EQ(t.ooms[0].state.limit, 64 * kMiB);
  EXPECT_LE(t.ooms[0].state.physical, 64 * kMiB);
  // The device's memory as the backend saw it at the refusal: the host device has 256 MiB, of
  // which the arena holds `physical`.
  EXPECT_EQ(t.ooms[0].state.driver_total, 256 * kMiB);
  EXPECT_EQ(t.ooms[0].state.driver_free, 256 * kMiB - t.ooms[0].state.physical);

  // The arena's mappings are in the trace too.
  bool mapped = false;
  for (const auto& e : t.arena) mapped |= e.kind == format::ArenaEventKind::kMap;
  EXPECT_TRUE(mapped);
  EXPECT_EQ(std::count(t.marks.begin(), t.marks.end(), "between"), 1);
}

std::uint64_t physical_now() {
  arena::Arena* a = existing_arena(DeviceOrdinal{0});
  return a != nullptr ? a->stats().physical.value : 0;
}

cudaMemPool_t default_pool() {
  cudaMemPool_t pool = nullptr;
  EXPECT_EQ(cudaDeviceGetDefaultMemPool(&pool, 0), cudaSuccess);
  return pool;
}

// Everything the arena does to memory is in the trace: new physical memory and its mapping, a
// stitch of cached memory unmapped to make room, cached memory given back, and a trim.
TEST_F(TraceHooks, EveryArenaEventReachesTheTrace) {
  void* warm = nullptr;  // the arena starts on its first allocation
  ASSERT_EQ(cudaMalloc(&warm, kMiB), cudaSuccess);
  ASSERT_EQ(cudaFree(warm), cudaSuccess);
  // An empty arena, whatever ran before.
  ASSERT_EQ(cudaMemPoolTrimTo(default_pool(), 0), cudaSuccess);
  const std::uint64_t physical_before = physical_now();
  cudefrag_mark("arena events");

  // Three ranges of 20 MiB fill the 64 MiB limit to 60 MiB.
  void* a = nullptr;
  void* b = nullptr;
  void* c = nullptr;
  ASSERT_EQ(cudaMalloc(&a, 20 * kMiB), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&b, 20 * kMiB), cudaSuccess);
  ASSERT_EQ(cudaMalloc(&c, 20 * kMiB), cudaSuccess);
  ASSERT_EQ(cudaFree(a), cudaSuccess);
  ASSERT_EQ(cudaFree(c), cudaSuccess);
  // 30 MiB: neither cached range is large enough and they are not adjacent; new memory would
  // pass the limit. Both are unmapped, one is stitched with 10 MiB of new memory, the other
  // released.
  void* d = nullptr;
  ASSERT_EQ(cudaMalloc(&d, 30 * kMiB), cudaSuccess);
  ASSERT_EQ(cudaFree(b), cudaSuccess);
  ASSERT_EQ(cudaFree(d), cudaSuccess);
  const std::uint64_t physical_cached = physical_now();
  ASSERT_EQ(cudaMemPoolTrimTo(default_pool(), 0), cudaSuccess);
  const std::uint64_t physical_after = physical_now();
  cudefrag_mark("arena events done");
  cudefrag_flush();

  const Trace t = read_trace(path_);
  ASSERT_EQ(t.arena_at_mark.count("arena events"), 1U);
  ASSERT_EQ(t.arena_at_mark.count("arena events done"), 1U);
  const std::vector<format::ArenaRecord> events(
      t.arena.begin() + static_cast<std::ptrdiff_t>(t.arena_at_mark.at("arena events")),
      t.arena.begin() + static_cast<std::ptrdiff_t>(t.arena_at_mark.at("arena events done")));
  using Kind = format::ArenaEventKind;
  const auto of = [&](Kind kind) {
    std::vector<format::ArenaRecord> out;
    for (const auto& e : events) {
      if (e.kind == kind) out.push_back(e);
    }
    return out;
  };
  const auto bytes = [](const std::vector<format::ArenaRecord>& records) {
    std::uint64_t sum = 0;
    for (const auto& e : records) sum += e.bytes;
    return sum;
  };
  const auto has = [](const std::vector<format::ArenaRecord>& records, std::uint64_t size) {
    for (const auto& e : records) {
      if (e.bytes == size) return true;
    }
    return false;
  };

  const auto maps = of(Kind::kMap);
  ASSERT_EQ(maps.size(), 3U);
  for (const auto& m : maps) {
    EXPECT_EQ(m.bytes, 20 * kMiB);
    EXPECT_EQ(m.count, 1U);
    EXPECT_EQ(m.device, 0);
  }
  EXPECT_EQ(maps[0].address, reinterpret_cast<std::uintptr_t>(a));

  const auto stitches = of(Kind::kStitch);
  ASSERT_EQ(stitches.size(), 1U);
  EXPECT_EQ(stitches[0].address, reinterpret_cast<std::uintptr_t>(d));
  EXPECT_EQ(stitches[0].bytes, 30 * kMiB);
  EXPECT_EQ(stitches[0].count, 2U);  // 20 MiB reused + 10 MiB new

  const auto creates = of(Kind::kPhysicalCreate);
  ASSERT_EQ(creates.size(), 4U);  // a, b, c, and the stitch's new part
  EXPECT_EQ(bytes(creates), 70 * kMiB);
  EXPECT_TRUE(has(creates, 10 * kMiB));

  // Unmapped: a and c to make room, then b and d by the trim.
  const auto unmaps = of(Kind::kUnmap);
  EXPECT_EQ(unmaps.size(), 4U);
  EXPECT_EQ(bytes(unmaps), 90 * kMiB);

  // Every byte created is released again: the arena is empty after the trim.
  const auto releases = of(Kind::kPhysicalRelease);
  EXPECT_EQ(physical_after, 0U);
  EXPECT_EQ(physical_before + bytes(creates) - bytes(releases), physical_after);
  // All of it had been cached: the 20 MiB left over by the stitch, then b and d by the trim
  // (oldest first); bytes2 is what stays cached after each.
  const auto cache_releases = of(Kind::kCacheRelease);
  ASSERT_EQ(cache_releases.size(), 3U);
  EXPECT_EQ(cache_releases[0].bytes, 20 * kMiB);
  EXPECT_EQ(cache_releases[0].bytes2, 0U);
  EXPECT_EQ(cache_releases[1].bytes, 20 * kMiB);
  EXPECT_EQ(cache_releases[1].bytes2, 30 * kMiB);
  EXPECT_EQ(cache_releases[2].bytes, 30 * kMiB);
  EXPECT_EQ(cache_releases[2].bytes2, 0U);

  const auto trims = of(Kind::kTrim);
  ASSERT_EQ(trims.size(), 1U);
  EXPECT_EQ(trims[0].bytes, physical_cached - physical_after);
  EXPECT_EQ(trims[0].bytes2, 0U);  // the target
}

}  // namespace
}  // namespace cudefrag::hooks
