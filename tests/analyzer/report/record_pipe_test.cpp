// RecordPipe delivers every record in file order across threads, and stops cleanly when its
// consumer leaves early.
#include "analyzer/report/record_pipe.hpp"

#include <gtest/gtest.h>

#include "tests/analyzer/report/trace_builder.hpp"
#include "tests/shim/trace/trace_files.hpp"

namespace cudefrag::analyzer {
namespace {

using trace::testing::TempDir;

std::string make_trace(const TempDir& dir, std::uint64_t events) {
  const std::string path = dir.file("t.trace");
  testing::TraceBuilder t(path);
  t.process(1, 0, 0, 0, "/bin/prog", {"prog"});
  for (std::uint64_t i = 0; i < events; ++i) {
    t.alloc(7, 1000 + i, 0, 0, 0x1000 + i * 512, 512, 512, 0);
    if (i % 1000 == 999) t.pass();
  }
  t.end(1'000'000);
  return path;
}

TEST(RecordPipe, DeliversEveryRecordInOrder) {
  TempDir dir;
  const std::string path = make_trace(dir, 10'000);
  TraceReader reader(path);
  std::uint64_t records = 0;
  std::uint64_t next_time = 1000;
  {
    RecordPipe pipe(reader);
    while (RecordPipe::Batch* batch = pipe.next()) {
      batch->for_each(
          [&](Record& r) {
            ++records;
            EXPECT_FALSE(std::holds_alternative<format::MemoryRecord>(r));
            // The end record comes after every allocation.
            if (std::holds_alternative<format::EndRecord>(r)) {
              EXPECT_EQ(next_time, 11'000u);
            }
          },
          [&](const Event& e) {
            ++records;
            EXPECT_EQ(e.kind, EventKind::kAlloc);
            EXPECT_EQ(e.time_ns, next_time++);
          });
    }
    EXPECT_EQ(pipe.next(), nullptr) << "the end stays the end";
  }
  EXPECT_EQ(records, 10'002u);  // process, allocations, end
  EXPECT_EQ(next_time, 11'000u);
  EXPECT_EQ(reader.ending(), Ending::kComplete);
  EXPECT_EQ(reader.records_read(), records);
}

TEST(RecordPipe, ConsumerMayLeaveEarly) {
  TempDir dir;
  const std::string path = make_trace(dir, 30'000);
  TraceReader reader(path);
  RecordPipe pipe(reader);
  ASSERT_NE(pipe.next(), nullptr);
  // Destroying the pipe now must stop the reading thread, which is blocked on a full pipe.
}

TEST(RecordPipe, ErrorEndsThePipe) {
  TempDir dir;
  TraceReader reader(dir.file("missing"));
  RecordPipe pipe(reader);
  EXPECT_EQ(pipe.next(), nullptr);
  EXPECT_EQ(reader.ending(), Ending::kError);
}

}  // namespace
}  // namespace cudefrag::analyzer
