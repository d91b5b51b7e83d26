// Call sites: the first frame outside the allocator machinery, the Python frame when there is
// one, one site per entry point without stacks; the site filter.
#include "analyzer/report/stack_table.hpp"

#include <gtest/gtest.h>

#include "analyzer/report/call_site.hpp"

namespace cudefrag::analyzer {
namespace {

class StackTableTest : public ::testing::Test {
 protected:
  void SetUp() override {
    table.add_entry_point({0, "cudaMalloc"});
    table.add_entry_point({1, "cudaMallocAsync"});
    const char* strings[] = {"",
                             "/lib/libcudefrag.so",
                             "cudaMalloc",
                             "/lib/libc10_cuda.so",
                             "c10::cuda::CUDACachingAllocator::malloc()",
                             "/app/libmodel.so",
                             "Model::forward()",
                             "/app/train.py",
                             "step"};
    for (std::uint32_t id = 1; id < std::size(strings); ++id) table.add_string({id, strings[id]});
  }
  void symbol(std::uint64_t address, std::uint32_t module, std::uint32_t name) {
    table.add_symbol({{format::RecordType::kSymbol, 32}, module, address, 0x10, name, 0});
  }

  StackTable table;
};

TEST(CallSite, KnowsTheAllocatorMachinery) {
  EXPECT_TRUE(is_allocator_internal("/opt/lib/libcudefrag.so", "cudaMalloc"));
  EXPECT_TRUE(is_allocator_internal("/usr/local/cuda/lib64/libcudart.so.13", ""));
  EXPECT_TRUE(is_allocator_internal("/usr/lib/libcuda.so.1", "cuMemAlloc_v2"));
  EXPECT_TRUE(is_allocator_internal("/x/libtorch_cuda.so", "at::native::empty_cuda(...)"));
  EXPECT_TRUE(is_allocator_internal("", "c10::cuda::CUDACachingAllocator::Native::malloc"));
  EXPECT_FALSE(is_allocator_internal("/x/libtorch_cuda.so", "at::native::matmul(...)"));
  EXPECT_FALSE(is_allocator_internal("/app/a.out", "main"));
  EXPECT_EQ(base_name("/a/b/libc.so.6"), "libc.so.6");
}

TEST_F(StackTableTest, NativeSiteSkipsTheMachinery) {
  symbol(0x100, 1, 2);
  symbol(0x200, 3, 4);
  symbol(0x300, 5, 6);
  table.add_stack({1, {0x100, 0x200, 0x300, 0x400}, {}});
  const SiteInfo site = table.site(table.stack_index(1, 0));
  EXPECT_EQ(site.label, "Model::forward() [libmodel.so]");
  EXPECT_EQ(site.frames, (std::vector<std::string>{"Model::forward() [libmodel.so]", "0x400"}));
}

TEST_F(StackTableTest, PythonFrameIsTheSite) {
  symbol(0x100, 1, 2);
  symbol(0x300, 5, 6);
  table.add_stack({1, {0x100, 0x300}, {{7, 8, 12, 0}}});
  const SiteInfo site = table.site(table.stack_index(1, 0));
  EXPECT_EQ(site.label, "step (/app/train.py:12)");
  EXPECT_EQ(site.frames, (std::vector<std::string>{"step (/app/train.py:12)",
                                                   "Model::forward() [libmodel.so]"}));
}

TEST_F(StackTableTest, AllMachineryShowsTheOutermostFrame) {
  symbol(0x100, 1, 2);
  symbol(0x200, 3, 4);
  table.add_stack({1, {0x100, 0x200}, {}});
  EXPECT_EQ(table.site(table.stack_index(1, 0)).label,
            "c10::cuda::CUDACachingAllocator::malloc() [libc10_cuda.so]");
}

TEST_F(StackTableTest, NoStackGroupsByEntryPoint) {
  const std::uint32_t a = table.stack_index(0, 0);
  const std::uint32_t b = table.stack_index(0, 1);
  EXPECT_NE(a, b);
  EXPECT_EQ(table.stack_index(0, 0), a);
  EXPECT_EQ(table.site(a).label, "cudaMalloc (no stack recorded)");
  EXPECT_EQ(table.site(table.stack_index(77, 0)).label, "stack 77 (not defined in the trace)");
  EXPECT_NE(table.stack_index(1u << 30, 0), table.stack_index((1u << 30) + 1, 0));
}

TEST_F(StackTableTest, SiteFilterWaitsForSymbols) {
  table.set_filter("forward");
  table.add_stack({1, {0x100, 0x300}, {}});
  const std::uint32_t s = table.stack_index(1, 0);
  EXPECT_FALSE(table.matches(s)) << "no symbols yet";
  symbol(0x100, 1, 2);
  symbol(0x300, 5, 6);
  EXPECT_TRUE(table.matches(s)) << "asked again once symbols arrived";
  table.set_filter("libmodel");
  EXPECT_TRUE(table.matches(s));
  table.set_filter("cudefrag");
  EXPECT_FALSE(table.matches(s)) << "machinery frames do not count";
  table.set_filter("Async");
  EXPECT_TRUE(table.matches(table.stack_index(0, 1)));
  EXPECT_FALSE(table.matches(table.stack_index(0, 0)));
}

}  // namespace
}  // namespace cudefrag::analyzer
