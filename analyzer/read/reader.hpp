// Streaming reader of cudefrag traces (format: shim/trace/format.hpp, docs/trace-format.md).
//
// It holds one block in memory at a time, checks everything it reads (magic, version, CRC32C of
// the file header, of each block header and of each payload, block sequence, record sizes) and
// stops at the first problem:
// - a file cut short (the program died while a block was being written) ends reading with a
//   warning naming the offset of the last good block; every record before it was delivered;
// - anything else (not a trace, a newer major version, a checksum or size that does not add up)
//   is an error naming the byte offset and the problem.
// Records of different threads may appear out of time order (each thread's buffer is written in
// turn); consumers that need one timeline order by time_ns.
#pragma once

#include <array>
#include <cstdint>
#include <fstream>
#include <optional>
#include <span>
#include <string>
#include <variant>
#include <vector>

#include "shim/trace/format.hpp"

namespace cudefrag::analyzer {

namespace format = trace::format;

struct ProcessInfo {
  std::uint32_t pid = 0;
  std::uint64_t start_wall_ns = 0;
  std::uint64_t start_mono_ns = 0;
  std::uint8_t stack_mode = 0;  // trace::StackMode
  std::string program;
  std::vector<std::string> command_line;
};

struct ConfigEntry {
  std::string key;
  std::string value;
};

struct EntryPointName {
  std::uint16_t id = 0;
  std::string name;
};

struct DeviceInfo {
  std::int32_t ordinal = 0;
  std::uint64_t total_memory = 0;
  std::array<std::uint8_t, 16> uuid{};
  std::string name;
};

struct RuntimeInfo {
  std::int32_t driver_version = 0;
  std::int32_t runtime_version = 0;
};

struct StringDef {
  std::uint32_t id = 0;
  std::string text;
};

struct StackDef {
  std::uint32_t id = 0;
  std::vector<std::uint64_t> native;        // return addresses, innermost first
  std::vector<format::PythonFrame> python;  // innermost first
};

struct Mark {
  std::uint32_t thread = 0;
  std::uint64_t time_ns = 0;
  std::string text;
};

struct UnknownRecord {
  std::uint16_t type = 0;
  std::uint16_t size = 0;
};

// One record. Alloc and free share MemoryRecord: header.type tells them apart.
using Record = std::variant<ProcessInfo, ConfigEntry, EntryPointName, DeviceInfo, RuntimeInfo,
                            StringDef, StackDef, format::SymbolRecord, format::MemoryRecord,
                            format::ArenaRecord, format::OomRecord, format::CountersRecord, Mark,
                            format::DroppedRecord, format::EndRecord, UnknownRecord>;

struct Diagnostic {
  std::uint64_t offset = 0;  // byte offset in the file
  std::string message;       // "<path>: offset N: problem"
};

enum class Ending {
  kReading,     // next() has not returned false yet
  kComplete,    // the end record was read: the trace was closed cleanly
  kUnfinished,  // every block is whole but there is no end record: the program was killed,
                // or is still running
  kTruncated,   // the last block is cut short: see warning()
  kError,       // see error()
};

class TraceReader {
 public:
  // Opens the file and checks its header; on failure error() is set and next() returns false.
  explicit TraceReader(const std::string& path);

  // The next record, and the file offset of the block that holds it. False at the end of the
  // trace or at the first error; ending() says which.
  bool next(Record& out, std::uint64_t* block_offset = nullptr);

  Ending ending() const { return ending_; }
  const std::optional<Diagnostic>& error() const { return error_; }
  const std::optional<Diagnostic>& warning() const { return warning_; }

  std::uint16_t version_major() const { return header_.version_major; }
  std::uint16_t version_minor() const { return header_.version_minor; }
  std::uint64_t blocks_read() const { return blocks_read_; }
  std::uint64_t records_read() const { return records_read_; }

 private:
  bool read_header();
  bool load_block();  // false at the end or on a problem (ending_ set)
  bool decode(std::span<const std::byte> bytes, Record& out);
  void fail(std::uint64_t offset, const std::string& problem);
  void truncated(std::uint64_t offset, const std::string& problem);

  std::string path_;
  std::ifstream file_;
  std::uint64_t file_size_ = 0;
  std::uint64_t offset_ = 0;  // of the next block
  format::FileHeader header_{};

  std::vector<std::byte> stored_;
  std::vector<std::byte> block_;  // the current block's records
  std::size_t position_ = 0;      // in block_
  std::uint32_t records_left_ = 0;
  std::uint64_t block_offset_ = 0;

  std::uint32_t expected_sequence_ = 0;
  std::uint64_t blocks_read_ = 0;
  std::uint64_t records_read_ = 0;
  bool seen_end_ = false;
  Ending ending_ = Ending::kReading;
  std::optional<Diagnostic> error_;
  std::optional<Diagnostic> warning_;
};

}  // namespace cudefrag::analyzer
