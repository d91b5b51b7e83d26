#include "shim/trace/stack_table.hpp"

#include <gtest/gtest.h>

#include <cstring>
#include <set>
#include <vector>

#include "shim/trace/string_table.hpp"

namespace cudefrag::trace {
namespace {

// The types of the records queued, in order.
std::vector<format::RecordType> queued(DefinitionQueue& q) {
  std::vector<std::byte> bytes;
  q.take(bytes);
  std::vector<format::RecordType> types;
  for (std::size_t at = 0; at < bytes.size();) {
    format::RecordHeader h;
    std::memcpy(&h, bytes.data() + at, sizeof h);
    types.push_back(h.type);
    at += h.size;
  }
  return types;
}

TEST(StackTable, SameFramesSameIdOtherFramesOtherId) {
  DefinitionQueue q;
  StackTable table(q);
  const std::uint64_t a[] = {0x1000, 0x2000, 0x3000};
  const std::uint64_t b[] = {0x1000, 0x2000, 0x3001};
  const format::PythonFrame p1[] = {{1, 2, 10, 0}};
  const format::PythonFrame p2[] = {{1, 2, 11, 0}};
  const auto id_a = table.intern(a, {});
  EXPECT_NE(id_a, StackId{});
  EXPECT_EQ(table.intern(a, {}), id_a);
  EXPECT_NE(table.intern(b, {}), id_a);
  EXPECT_NE(table.intern(std::span(a).first(2), {}), id_a) << "a prefix is another stack";
  const auto id_p1 = table.intern({}, p1);
  EXPECT_NE(table.intern({}, p2), id_p1);
  EXPECT_NE(table.intern(a, p1), id_a);
  EXPECT_EQ(table.intern({}, p1), id_p1);
  EXPECT_EQ(table.intern({}, {}), StackId{});
  EXPECT_EQ(table.size(), 6u);
  EXPECT_EQ(queued(q), std::vector<format::RecordType>(6, format::RecordType::kStack));
  EXPECT_TRUE(queued(q).empty()) << "a known stack queues nothing";
}

// Long stacks that differ in one frame, at every position (each lane of the hash, each part of
// the compare), or only in length: all distinct; each again: the same id.
TEST(StackTable, LongStacksDifferingInOneFrameAreDistinct) {
  DefinitionQueue q;
  StackTable table(q);
  std::vector<std::uint64_t> base(61);
  for (std::size_t i = 0; i < base.size(); ++i) base[i] = 0x400000 + 0x40 * i;
  std::set<std::uint32_t> ids;
  const StackId base_id = table.intern(base, {});
  ids.insert(base_id.value);
  std::vector<StackId> variant_ids;
  for (std::size_t i = 0; i < base.size(); ++i) {
    auto variant = base;
    variant[i] += 1;
    variant_ids.push_back(table.intern(variant, {}));
    ids.insert(variant_ids.back().value);
  }
  for (std::size_t n = 1; n < base.size(); ++n) {
    ids.insert(table.intern(std::span(base).first(n), {}).value);
  }
  EXPECT_EQ(ids.size(), 2 * base.size());
  EXPECT_EQ(ids.count(0), 0u);
  EXPECT_EQ(table.intern(base, {}), base_id);
  for (std::size_t i = 0; i < base.size(); ++i) {
    auto variant = base;
    variant[i] += 1;
    EXPECT_EQ(table.intern(variant, {}), variant_ids[i]) << "frame " << i;
  }
}

TEST(StackTable, FullTableReturnsZeroAndCounts) {
  DefinitionQueue q;
  StackTable table(q, 16);  // takes 12
  for (std::uint64_t i = 1; i <= 12; ++i) EXPECT_NE(table.intern(std::span(&i, 1), {}), StackId{});
  const std::uint64_t extra = 99;
  EXPECT_EQ(table.intern(std::span(&extra, 1), {}), StackId{});
  EXPECT_EQ(table.not_stored(), 1u);
  const std::uint64_t known = 5;
  EXPECT_NE(table.intern(std::span(&known, 1), {}), StackId{}) << "known stacks still resolve";
}

TEST(StringTable, InternsOnceAndQueuesTheDefinition) {
  DefinitionQueue q;
  StringTable strings(q);
  const auto a = strings.intern("model.py");
  EXPECT_EQ(strings.intern("model.py"), a);
  EXPECT_NE(strings.intern("sampler.py"), a);
  EXPECT_EQ(queued(q).size(), 2u);
  const auto long_id = strings.intern(std::string(100000, 'x'));
  EXPECT_EQ(strings.intern(std::string(StringTable::kMaxBytes, 'x')), long_id)
      << "cut to the limit";
}

}  // namespace
}  // namespace cudefrag::trace
