// The trace reader against damaged, foreign and future files: it must say what is wrong and
// where, deliver every record before the damage, and never crash.
#include "analyzer/read/reader.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "shim/trace/crc32c.hpp"
#include "shim/trace/recorder.hpp"
#include "tests/shim/trace/trace_files.hpp"

namespace cudefrag::analyzer {
namespace {

using trace::testing::read_trace;
using trace::testing::TempDir;

std::vector<char> file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  std::vector<char> bytes(static_cast<std::size_t>(in.tellg()));
  in.seekg(0);
  in.read(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return bytes;
}

void write_bytes(const std::string& path, const std::vector<char>& bytes, std::size_t size) {
  // A new file each time: truncating a just-written file makes ext4 flush it on close
  // (auto_da_alloc), which turns this loop into seconds of disk waits.
  std::remove(path.c_str());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(size));
}

// A small real trace of several uncompressed blocks: 4 groups of events, flushed separately.
std::string make_trace(const TempDir& dir) {
  trace::Options o;
  o.path = dir.file("good.trace");
  o.compress = false;
  o.entry_points = {"cudaMalloc"};
  auto recorder = trace::Recorder::open(o);
  for (int group = 0; group < 4; ++group) {
    for (int i = 0; i < 3; ++i) {
      recorder->record_alloc({trace::EntryPoint{0},
                              DeviceOrdinal{0},
                              nullptr,
                              DevicePtr{static_cast<std::uintptr_t>(group * 10 + i + 1)},
                              Bytes{1},
                              Bytes{1},
                              0,
                              {}});
    }
    recorder->record_mark("group " + std::to_string(group));
    recorder->flush_sync();
  }
  recorder->close();
  return recorder->path();
}

// Hand-made files, for what the writer never produces.
class FileBuilder {
 public:
  explicit FileBuilder(std::uint16_t major = format::kVersionMajor,
                       std::uint16_t minor = format::kVersionMinor) {
    format::FileHeader h{format::kFileMagic, major, minor, sizeof(format::FileHeader), 0, 0};
    h.crc = trace::crc32c(std::as_bytes(std::span(&h, 1)).first(offsetof(format::FileHeader, crc)));
    append(std::as_bytes(std::span(&h, 1)));
  }

  // A block of raw records; record_count and sequence may lie.
  FileBuilder& block(const std::vector<std::byte>& records, std::uint32_t record_count,
                     std::optional<std::uint32_t> sequence = std::nullopt) {
    format::BlockHeader h{format::kBlockMagic,
                          format::Codec::kNone,
                          0,
                          0,
                          static_cast<std::uint32_t>(records.size()),
                          static_cast<std::uint32_t>(records.size()),
                          record_count,
                          sequence.value_or(next_sequence_),
                          trace::crc32c(records),
                          0};
    h.header_crc = trace::crc32c(
        std::as_bytes(std::span(&h, 1)).first(offsetof(format::BlockHeader, header_crc)));
    append(std::as_bytes(std::span(&h, 1)));
    append(records);
    ++next_sequence_;
    return *this;
  }

  // A block whose header says what `h` says about codec, sizes and record count (they may
  // lie); magic, sequence and both checksums are right.
  FileBuilder& block_with(format::BlockHeader h, const std::vector<std::byte>& payload) {
    h.magic = format::kBlockMagic;
    h.sequence = next_sequence_++;
    h.payload_crc = trace::crc32c(payload);
    h.header_crc = trace::crc32c(
        std::as_bytes(std::span(&h, 1)).first(offsetof(format::BlockHeader, header_crc)));
    append(std::as_bytes(std::span(&h, 1)));
    append(payload);
    return *this;
  }

  void write(const std::string& path) const {
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(reinterpret_cast<const char*>(bytes_.data()),
              static_cast<std::streamsize>(bytes_.size()));
  }

 private:
  void append(std::span<const std::byte> b) { bytes_.insert(bytes_.end(), b.begin(), b.end()); }
  std::vector<std::byte> bytes_;
  std::uint32_t next_sequence_ = 0;
};

template <typename T>
void add(std::vector<std::byte>& out, const T& record, std::string_view text = {}) {
  const auto b = std::as_bytes(std::span(&record, 1));
  const std::size_t at = out.size();
  out.insert(out.end(), b.begin(), b.end());
  const auto t = std::as_bytes(std::span(text));
  out.insert(out.end(), t.begin(), t.end());
  const auto size = static_cast<std::uint16_t>(b.size() + t.size());
  std::memcpy(out.data() + at + 2, &size, 2);
}

std::vector<std::byte> process_record() {
  std::vector<std::byte> out;
  add(out, format::ProcessRecord{{format::RecordType::kProcess, 0}, 42, 1, 2, 0, 0, 4, 0}, "prog");
  return out;
}

TEST(TraceReader, ReadsAGoodTraceToItsEndRecord) {
  TempDir dir;
  const auto trace = read_trace(make_trace(dir));
  EXPECT_EQ(trace.error, "");
  EXPECT_EQ(trace.warning, "");
  EXPECT_EQ(trace.ending, Ending::kComplete);
  EXPECT_EQ(trace.allocs().size(), 12u);
}

TEST(TraceReader, EmptyFile) {
  TempDir dir;
  write_bytes(dir.file("empty"), {}, 0);
  const auto trace = read_trace(dir.file("empty"));
  EXPECT_EQ(trace.ending, Ending::kError);
  EXPECT_NE(trace.error.find("offset 0: empty file"), std::string::npos) << trace.error;
}

TEST(TraceReader, MissingFile) {
  const auto trace = read_trace("/nonexistent/trace");
  EXPECT_EQ(trace.ending, Ending::kError);
  EXPECT_NE(trace.error.find("cannot open"), std::string::npos) << trace.error;
}

TEST(TraceReader, NotATrace) {
  TempDir dir;
  const std::string text = "#!/bin/sh\necho this is not a trace\n";
  write_bytes(dir.file("script"), {text.begin(), text.end()}, text.size());
  const auto trace = read_trace(dir.file("script"));
  EXPECT_EQ(trace.ending, Ending::kError);
  EXPECT_NE(trace.error.find("offset 0: not a cudefrag trace (it starts with 23 21 2f 62"),
            std::string::npos)
      << trace.error;
}

TEST(TraceReader, FutureMajorVersionIsRefusedByName) {
  TempDir dir;
  FileBuilder(2, 3).block(process_record(), 1).write(dir.file("future"));
  const auto trace = read_trace(dir.file("future"));
  EXPECT_EQ(trace.ending, Ending::kError);
  EXPECT_NE(trace.error.find("offset 8: trace format version 2.3 is not readable"),
            std::string::npos)
      << trace.error;
  EXPECT_TRUE(trace.records.empty());
}

TEST(TraceReader, NewerMinorVersionAndUnknownRecordsAreRead) {
  TempDir dir;
  auto records = process_record();
  add(records, format::RecordHeader{static_cast<format::RecordType>(999), 0}, "new kind of record");
  add(records, format::MarkRecord{{format::RecordType::kMark, 0}, 7, 9}, "after");
  FileBuilder(format::kVersionMajor, 9).block(records, 3).write(dir.file("minor"));
  const auto trace = read_trace(dir.file("minor"));
  EXPECT_EQ(trace.error, "");
  EXPECT_EQ(trace.ending, Ending::kUnfinished);
  ASSERT_EQ(trace.records.size(), 3u);
  EXPECT_EQ(std::get<UnknownRecord>(trace.records[1]).type, 999);
  EXPECT_EQ(std::get<Mark>(trace.records[2]).text, "after");
}

TEST(TraceReader, FileHeaderOnly) {
  TempDir dir;
  FileBuilder().write(dir.file("header-only"));
  const auto trace = read_trace(dir.file("header-only"));
  EXPECT_EQ(trace.error, "");
  EXPECT_EQ(trace.ending, Ending::kTruncated);
  EXPECT_NE(trace.warning.find("offset 24: no block"), std::string::npos) << trace.warning;
}

TEST(TraceReader, BlockOutOfSequence) {
  TempDir dir;
  auto marks = std::vector<std::byte>();
  add(marks, format::MarkRecord{{format::RecordType::kMark, 0}, 7, 9}, "m");
  FileBuilder().block(process_record(), 1).block(marks, 1, 5).write(dir.file("seq"));
  const auto trace = read_trace(dir.file("seq"));
  EXPECT_EQ(trace.ending, Ending::kError);
  EXPECT_EQ(trace.records.size(), 1u);
  EXPECT_NE(trace.error.find("block sequence number 5 where 1 was expected"), std::string::npos)
      << trace.error;
}

TEST(TraceReader, RecordCountThatDoesNotMatchThePayload) {
  TempDir dir;
  FileBuilder().block(process_record(), 2).write(dir.file("count"));
  const auto trace = read_trace(dir.file("count"));
  EXPECT_EQ(trace.ending, Ending::kError);
  EXPECT_NE(trace.error.find("runs past the block"), std::string::npos) << trace.error;

  auto records = process_record();
  add(records, format::MarkRecord{{format::RecordType::kMark, 0}, 7, 9}, "extra");
  FileBuilder().block(records, 1).write(dir.file("extra"));
  const auto extra = read_trace(dir.file("extra"));
  EXPECT_EQ(extra.ending, Ending::kError);
  EXPECT_NE(extra.error.find("bytes after its last record"), std::string::npos) << extra.error;
}

TEST(TraceReader, RecordShorterThanItsType) {
  TempDir dir;
  auto records = process_record();
  add(records, format::RecordHeader{format::RecordType::kAlloc, 0}, "short");
  FileBuilder().block(records, 2).write(dir.file("short"));
  const auto trace = read_trace(dir.file("short"));
  EXPECT_EQ(trace.ending, Ending::kError);
  EXPECT_NE(trace.error.find(
                "record of type 20 at byte 36 of block 0 is malformed (9 bytes, fixed part 64)"),
            std::string::npos)
      << trace.error;
}

TEST(TraceReader, FirstRecordMustBeTheProcess) {
  TempDir dir;
  std::vector<std::byte> records;
  add(records, format::MarkRecord{{format::RecordType::kMark, 0}, 7, 9}, "m");
  FileBuilder().block(records, 1).write(dir.file("noprocess"));
  const auto trace = read_trace(dir.file("noprocess"));
  EXPECT_EQ(trace.ending, Ending::kError);
  EXPECT_NE(trace.error.find("not the process record"), std::string::npos) << trace.error;
}

TEST(TraceReader, DirectoryIsRefusedByName) {
  TempDir dir;
  const auto trace = read_trace(dir.path().string());
  EXPECT_EQ(trace.ending, Ending::kError);
  EXPECT_NE(trace.error.find("offset 0: is a directory"), std::string::npos) << trace.error;
}

// `cudefrag report <(zcat run.trace.gz)`: a pipe has no size, so the reader cannot check block
// sizes against the file; it says so rather than calling the trace "not a cudefrag trace".
TEST(TraceReader, PipeIsRefusedWithTheReason) {
  TempDir dir;
  const auto bytes = file_bytes(make_trace(dir));
  int fds[2];
  ASSERT_EQ(::pipe(fds), 0);
  const std::size_t n = std::min<std::size_t>(bytes.size(), 4096);  // fits the pipe's buffer
  ASSERT_EQ(::write(fds[1], bytes.data(), n), static_cast<ssize_t>(n));
  ::close(fds[1]);
  const auto trace = read_trace("/proc/self/fd/" + std::to_string(fds[0]));
  ::close(fds[0]);
  EXPECT_EQ(trace.ending, Ending::kError);
  EXPECT_NE(trace.error.find("offset 0: not a regular file"), std::string::npos) << trace.error;
}

// Length fields are checked against the format's limits before anything is allocated for
// them: a block that claims gigabytes is refused even when its checksums are right.
TEST(TraceReader, AbsurdBlockSizesAreRefusedBeforeAllocating) {
  struct Case {
    format::Codec codec;
    std::uint32_t stored;
    std::uint32_t raw;
  };
  const Case cases[] = {{format::Codec::kNone, 0xFFFFFFFF, 0xFFFFFFFF},
                        {format::Codec::kZstd, 64, 0xFFFFFFFF},
                        {format::Codec::kZstd, format::kMaxBlockStoredBytes + 1, 64},
                        {format::Codec::kZstd, 64, format::kMaxBlockRawBytes + 1}};
  TempDir dir;
  for (const Case& c : cases) {
    format::BlockHeader h{};
    h.codec = c.codec;
    h.stored_size = c.stored;
    h.raw_size = c.raw;
    h.record_count = 1;
    FileBuilder().block_with(h, std::vector<std::byte>(64)).write(dir.file("absurd"));
    const auto trace = read_trace(dir.file("absurd"));
    EXPECT_EQ(trace.ending, Ending::kError) << c.stored << " " << c.raw;
    EXPECT_NE(trace.error.find("has impossible sizes"), std::string::npos) << trace.error;
  }
}

TEST(TraceReader, StackFrameCountsBeyondTheRecordAreMalformed) {
  TempDir dir;
  auto records = process_record();
  add(records, format::StackRecord{{format::RecordType::kStack, 0}, 1, 65535, 65535, 0});
  FileBuilder().block(records, 2).write(dir.file("stack"));
  const auto trace = read_trace(dir.file("stack"));
  EXPECT_EQ(trace.ending, Ending::kError);
  EXPECT_NE(trace.error.find("record of type 11 at byte 36 of block 0 is malformed"),
            std::string::npos)
      << trace.error;
}

// A program killed at any moment leaves a prefix of the file: every prefix must read as the
// complete blocks it holds, with a warning, never as an error (past the file header).
TEST(TraceReader, EveryTruncationReadsUpToTheLastWholeBlock) {
  TempDir dir;
  const auto bytes = file_bytes(make_trace(dir));
  const std::string cut = dir.file("cut");
  std::size_t previous_records = 0;
  for (std::size_t size = 0; size <= bytes.size(); ++size) {
    write_bytes(cut, bytes, size);
    const auto trace = read_trace(cut);
    if (size < sizeof(format::FileHeader)) {
      ASSERT_EQ(trace.ending, Ending::kError) << size;
      continue;
    }
    ASSERT_EQ(trace.error, "") << size;
    ASSERT_GE(trace.records.size(), previous_records) << size;
    previous_records = trace.records.size();
    if (size == bytes.size()) {
      EXPECT_EQ(trace.ending, Ending::kComplete);
    } else {
      ASSERT_TRUE(trace.ending == Ending::kTruncated || trace.ending == Ending::kUnfinished)
          << size;
      ASSERT_EQ(trace.ending == Ending::kTruncated, !trace.warning.empty()) << size;
    }
  }
  EXPECT_EQ(previous_records, read_trace(dir.file("good.trace")).records.size());
}

// Any single flipped bit is caught by a checksum: an error naming an offset, after the records
// of the blocks before it.
TEST(TraceReader, EveryFlippedBitIsAnError) {
  TempDir dir;
  const auto good = file_bytes(make_trace(dir));
  const std::string damaged = dir.file("damaged");
  for (std::size_t at = 0; at < good.size(); ++at) {
    auto bytes = good;
    bytes[at] = static_cast<char>(bytes[at] ^ (1 << (at % 8)));
    write_bytes(damaged, bytes, bytes.size());
    const auto trace = read_trace(damaged);
    ASSERT_EQ(trace.ending, Ending::kError) << "flip at " << at;
    ASSERT_NE(trace.error.find(": offset "), std::string::npos) << trace.error;
  }
}

}  // namespace
}  // namespace cudefrag::analyzer
