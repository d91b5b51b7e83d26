// Native stack capture, deduplication and symbolization, with both unwinders.
// The test executable exports its symbols (ENABLE_EXPORTS) so that dladdr can name them.
#include "shim/trace/native_stack.hpp"

#include <dlfcn.h>
#include <gtest/gtest.h>

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

TEST_P(NativeStackTest, RecorderDedupesCallSitesAndSymbolizesThem) {
  TempDir dir;
  Options o;
  o.path = dir.file("t.trace");
  o.stacks = StackMode::kNative;
  o.unwinder = GetParam();
  auto recorder = Recorder::open(o);
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
