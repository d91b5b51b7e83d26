// The trace behind the hooks, without a GPU: the hooks linked into this test in front of the fake
// libcudart and libcuda, arenas on the host backend, CUDEFRAG_TRACE naming a file. What the
// program allocated and freed, served by the arena or by CUDA, and the arena's refusal with its
// state, must come back out of the analyzer's reader.
#include <dlfcn.h>
#include <gtest/gtest.h>
#include <stdlib.h>
#include <unistd.h>

#include <filesystem>
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
    }
  }
  t.ending = reader.ending();
  EXPECT_FALSE(reader.error()) << reader.error()->message;
  return t;
}

const format::MemoryRecord* find(const std::vector<format::MemoryRecord>& records, const void* p) {
  for (const auto& r : records) {
    if (r.address == reinterpret_cast<std::uintptr_t>(p)) return &r;
  }
  return nullptr;
}

TEST(TraceHooks, AllocationsFreesAndTheArenasRefusalReachTheTrace) {
  char dir_template[] = "/tmp/cudefrag_trace_hooks_XXXXXX";
  ASSERT_NE(mkdtemp(dir_template), nullptr);
  const std::string dir = dir_template;
  const std::string path = dir + "/run.trace";
  // Read once, when the shim sets itself up on the first hook call below.
  setenv("CUDEFRAG_TRACE", path.c_str(), 1);
  setenv("CUDEFRAG_STACKS", "none", 1);
  ASSERT_NE(dlopen(CUDEFRAG_TEST_FAKE_DIR "/libcuda.so.1", RTLD_NOW | RTLD_GLOBAL), nullptr)
      << dlerror();
  fake_cudart_reset();  // also keeps the linked fake runtime, which the hooks forward to
  set_backend_factory_for_testing(&host_backend);
  set_limit_for_testing(MiB(64));
  set_mode_for_testing(config::Mode::kArena);

  void* big = nullptr;
  void* small = nullptr;
  ASSERT_EQ(cudaMalloc(&big, 3 * kMiB), cudaSuccess);
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
  EXPECT_EQ(a->requested, 3 * kMiB);
  EXPECT_EQ(a->granted, 4 * kMiB);
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

  // The arena's mappings are in the trace too.
  bool mapped = false;
  for (const auto& e : t.arena) mapped |= e.kind == format::ArenaEventKind::kMap;
  EXPECT_TRUE(mapped);
  ASSERT_EQ(t.marks.size(), 1U);
  EXPECT_EQ(t.marks[0], "between");

  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
}

}  // namespace
}  // namespace cudefrag::hooks
