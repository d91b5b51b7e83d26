// Native stack capture, deduplication and symbolization, with both unwinders.
// The test executable exports its symbols (ENABLE_EXPORTS) so that dladdr can name them.
#include "shim/trace/native_stack.hpp"

#include <dlfcn.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <array>

#include "shim/trace/recorder.hpp"
#include "tests/shim/trace/trace_files.hpp"

// Call sites with known names. noinline and a statement after the call keep each frame real
// (no inlining, no tail call).
extern "C" [[gnu::noinline]] void cudefrag_test_site_a(cudefrag::trace::Recorder& r, int i) {
  r.record_alloc({cudefrag::trace::EntryPoint{0},
                  cudefrag::DeviceOrdinal{0},
                  nullptr,
                  cudefrag::DevicePtr{static_cast<std::uintptr_t>(0x1000 + i)},
                  cudefrag::Bytes{1},
                  cudefrag::Bytes{1},
                  0,
                  {}});
  asm volatile("" ::: "memory");
}

extern "C" [[gnu::noinline]] void cudefrag_test_site_b(cudefrag::trace::Recorder& r, int i) {
  r.record_alloc({cudefrag::trace::EntryPoint{0},
                  cudefrag::DeviceOrdinal{0},
                  nullptr,
                  cudefrag::DevicePtr{static_cast<std::uintptr_t>(0x2000 + i)},
                  cudefrag::Bytes{1},
                  cudefrag::Bytes{1},
                  0,
                  {}});
  asm volatile("" ::: "memory");
}

extern "C" [[gnu::noinline]] std::size_t cudefrag_test_capture(
    const cudefrag::trace::NativeStacks& stacks, std::span<std::uint64_t> out) {
  const std::size_t n = stacks.capture(out, 0);
  asm volatile("" ::: "memory");
  return n;
}

// Two call paths to the same leaf (cudefrag_test_site_a): only a frame further out differs.
extern "C" [[gnu::noinline]] void cudefrag_test_path_x(cudefrag::trace::Recorder& r, int i) {
  cudefrag_test_site_a(r, i);
  asm volatile("" ::: "memory");
}

extern "C" [[gnu::noinline]] void cudefrag_test_path_y(cudefrag::trace::Recorder& r, int i) {
  cudefrag_test_site_a(r, i);
  asm volatile("" ::: "memory");
}

// A capture `depth` calls below cudefrag_test_stop_outer, made twice through one call site: all
// frames, then ending at `stop`.
extern "C" [[gnu::noinline]] void cudefrag_test_recurse(const cudefrag::trace::NativeStacks& stacks,
                                                        int depth, cudefrag::trace::CodeRange stop,
                                                        std::span<std::uint64_t> all,
                                                        std::span<std::uint64_t> cut,
                                                        std::size_t counts[2]) {
  if (depth > 0) {
    cudefrag_test_recurse(stacks, depth - 1, stop, all, cut, counts);
    asm volatile("" ::: "memory");
    return;
  }
  for (int k = 0; k < 2; ++k) {
    counts[k] = stacks.capture(k == 0 ? all : cut, 0, k == 0 ? cudefrag::trace::CodeRange{} : stop);
  }
  asm volatile("" ::: "memory");
}

extern "C" [[gnu::noinline]] void cudefrag_test_stop_outer(
    const cudefrag::trace::NativeStacks& stacks, int depth, cudefrag::trace::CodeRange stop,
    std::span<std::uint64_t> all, std::span<std::uint64_t> cut, std::size_t counts[2]) {
  cudefrag_test_recurse(stacks, depth, stop, all, cut, counts);
  asm volatile("" ::: "memory");
}

namespace cudefrag::trace {
namespace {

using testing::read_trace;
using testing::TempDir;

std::string name_of(std::uint64_t address) {
  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(address - 1), &info) == 0 || info.dli_sname == nullptr)
    return {};
  return info.dli_sname;
}

// The first `n` frames of two captures made one after the other in cudefrag_test_recurse are the
// same, but for the first one's return address (the compiler may unroll the loop into two calls).
bool same_after_first(std::span<const std::uint64_t> a, std::span<const std::uint64_t> b,
                      std::size_t n) {
  return n > 0 && name_of(a[0]) == "cudefrag_test_recurse" &&
         name_of(b[0]) == "cudefrag_test_recurse" &&
         std::equal(a.begin() + 1, a.begin() + static_cast<std::ptrdiff_t>(n), b.begin() + 1);
}

class NativeStackTest : public ::testing::TestWithParam<NativeUnwinder> {};

TEST_P(NativeStackTest, CaptureStartsAtTheCallerAndNamesKnownFunctions) {
  NativeStacks stacks(GetParam());
  std::array<std::uint64_t, 64> frames{};
  const std::size_t n = cudefrag_test_capture(stacks, frames);
  ASSERT_GE(n, 2u);
  // Skip 0 leaves out the unwinder and NativeStacks::capture itself: the first frame is the
  // function that called capture().
  std::string all;
  for (std::size_t i = 0; i < n; ++i) all += " " + name_of(frames[i]);
  EXPECT_EQ(name_of(frames[0]), "cudefrag_test_capture") << stacks.unwinder() << ":" << all;
  bool found_main = false;
  for (std::size_t i = 0; i < n; ++i) found_main = found_main || name_of(frames[i]) == "main";
  EXPECT_TRUE(found_main) << "the walk should reach main:" << all;
}

// A recorder of native stacks only, with the unwinder under test, writing into `dir`.
std::unique_ptr<Recorder> native_recorder(const TempDir& dir, NativeUnwinder unwinder) {
  Options o;
  o.path = dir.file("t.trace");
  o.stacks = StackMode::kNative;
  o.unwinder = unwinder;
  return Recorder::open(o);
}

TEST_P(NativeStackTest, RecorderDedupesCallSitesAndSymbolizesThem) {
  TempDir dir;
  auto recorder = native_recorder(dir, GetParam());
  ASSERT_NE(recorder, nullptr);
  for (int i = 0; i < 5; ++i) {
    cudefrag_test_site_a(*recorder, i);
    cudefrag_test_site_b(*recorder, i);
  }
  recorder->close();
  const auto trace = read_trace(recorder->path());
  ASSERT_EQ(trace.error, "");
  const auto allocs = trace.allocs();
  ASSERT_EQ(allocs.size(), 10u);
  std::set<std::uint32_t> ids_a;
  std::set<std::uint32_t> ids_b;
  for (const auto& a : allocs) (a.address < 0x2000 ? ids_a : ids_b).insert(a.stack);
  ASSERT_EQ(ids_a.size(), 1u) << "one call site, one stack";
  ASSERT_EQ(ids_b.size(), 1u);
  EXPECT_NE(*ids_a.begin(), *ids_b.begin()) << "different call sites, different stacks";
  EXPECT_NE(*ids_a.begin(), 0u);
  EXPECT_EQ(trace.all<analyzer::StackDef>().size(), 2u);

  const auto* stack_a = trace.stack(*ids_a.begin());
  const auto* stack_b = trace.stack(*ids_b.begin());
  ASSERT_NE(stack_a, nullptr);
  ASSERT_NE(stack_b, nullptr);
  ASSERT_FALSE(stack_a->native.empty());
  // The recorder's own frames are left out: the innermost frame is the caller of record_alloc.
  EXPECT_EQ(trace.symbol(stack_a->native[0]), "cudefrag_test_site_a");
  EXPECT_EQ(trace.symbol(stack_b->native[0]), "cudefrag_test_site_b");
  EXPECT_TRUE(stack_a->python.empty());
}

TEST_P(NativeStackTest, PathsToOneLeafGetTheirOwnStacksAndRepeatsTheSame) {
  TempDir dir;
  auto recorder = native_recorder(dir, GetParam());
  ASSERT_NE(recorder, nullptr);
  // Interleaved, so that no capture can reuse the one just before it.
  for (int i = 0; i < 4; ++i) {
    cudefrag_test_path_x(*recorder, i);
    cudefrag_test_path_y(*recorder, 100 + i);
  }
  recorder->close();
  const auto trace = read_trace(recorder->path());
  ASSERT_EQ(trace.error, "");
  std::set<std::uint32_t> ids_x;
  std::set<std::uint32_t> ids_y;
  for (const auto& a : trace.allocs()) (a.address < 0x1000 + 100 ? ids_x : ids_y).insert(a.stack);
  ASSERT_EQ(ids_x.size(), 1u) << "one path, one stack";
  ASSERT_EQ(ids_y.size(), 1u);
  ASSERT_NE(*ids_x.begin(), *ids_y.begin()) << "the same leaf through another path";
  const auto* x = trace.stack(*ids_x.begin());
  const auto* y = trace.stack(*ids_y.begin());
  ASSERT_TRUE(x != nullptr && y != nullptr && x->native.size() >= 2 && y->native.size() >= 2);
  EXPECT_EQ(trace.symbol(x->native[0]), "cudefrag_test_site_a");
  EXPECT_EQ(trace.symbol(y->native[0]), "cudefrag_test_site_a");
  EXPECT_EQ(trace.symbol(x->native[1]), "cudefrag_test_path_x");
  EXPECT_EQ(trace.symbol(y->native[1]), "cudefrag_test_path_y");
}

// A walk told to stop at a function returns exactly the full walk cut after that function's
// frame, whatever depth this thread's earlier walks found it at (the unwinder remembers that
// depth to size its first try: deeper, shallower and equal depths all come up here).
TEST_P(NativeStackTest, StopEndsAtTheFunctionAndAgreesWithTheFullWalk) {
  NativeStacks stacks(GetParam());
  const CodeRange outer = function_range(reinterpret_cast<const void*>(&cudefrag_test_stop_outer));
  ASSERT_FALSE(outer.empty());
  for (const int depth : {2, 40, 2, 2, 40, 20, 0, 25, 25, 60}) {
    SCOPED_TRACE("depth " + std::to_string(depth));
    std::array<std::uint64_t, 128> all{};
    std::array<std::uint64_t, 128> cut{};
    std::size_t counts[2] = {0, 0};
    cudefrag_test_stop_outer(stacks, depth, outer, all, cut, counts);
    std::size_t at = 0;
    while (at < counts[0] && !outer.contains(all[at] - 1)) ++at;
    ASSERT_LT(at, counts[0]) << "the full walk passes through the outer function";
    ASSERT_EQ(counts[1], at + 1);
    EXPECT_TRUE(same_after_first(all, cut, counts[1]));
    EXPECT_EQ(name_of(cut[counts[1] - 1]), "cudefrag_test_stop_outer");
  }
  // A function that is not on the stack stops nothing.
  const CodeRange elsewhere = function_range(reinterpret_cast<const void*>(&cudefrag_test_site_b));
  ASSERT_FALSE(elsewhere.empty());
  std::array<std::uint64_t, 128> all{};
  std::array<std::uint64_t, 128> cut{};
  std::size_t counts[2] = {0, 0};
  cudefrag_test_stop_outer(stacks, 30, elsewhere, all, cut, counts);
  ASSERT_EQ(counts[1], counts[0]);
  EXPECT_TRUE(same_after_first(all, cut, counts[1]));
}

TEST(NativeStack, FunctionRangeCoversTheFunction) {
  const auto* f = reinterpret_cast<const void*>(&cudefrag_test_stop_outer);
  const CodeRange range = function_range(f);
  EXPECT_EQ(range.begin, reinterpret_cast<std::uintptr_t>(f));
  EXPECT_GT(range.end, range.begin);
  EXPECT_TRUE(function_range(nullptr).empty());
}

INSTANTIATE_TEST_SUITE_P(Unwinders, NativeStackTest,
                         ::testing::Values(NativeUnwinder::kAuto, NativeUnwinder::kLibgcc),
                         [](const auto& test) {
                           return test.param == NativeUnwinder::kAuto ? "auto" : "libgcc";
                         });

TEST(NativeStack, AutoUsesLibunwindWhenPresent) {
  const bool present = dlopen("libunwind.so.8", RTLD_NOW | RTLD_NOLOAD) != nullptr ||
                       dlopen("libunwind.so.8", RTLD_NOW) != nullptr;
  EXPECT_EQ(NativeStacks(NativeUnwinder::kAuto).unwinder(), present ? "libunwind" : "libgcc");
  EXPECT_EQ(NativeStacks(NativeUnwinder::kLibgcc).unwinder(), "libgcc");
}

}  // namespace
}  // namespace cudefrag::trace
