// Writes records to the trace file in blocks (format.hpp): fills a block, compresses it with
// zstd when that is available and makes it smaller, checksums it and writes header and payload
// with one writev, so a killed process leaves only whole blocks or a truncated last one.
// Used by one thread at a time (the recorder's write lock).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "shim/trace/zstd.hpp"

namespace cudefrag::trace {

class BlockWriter {
 public:
  // Raw bytes per block. Larger blocks compress better; 256 KiB holds ~4000 events and is
  // written at least every flush interval anyway.
  static constexpr std::size_t kBlockBytes = std::size_t{256} << 10;

  // Takes ownership of `fd` (closes it).
  BlockWriter(int fd, bool compress);
  ~BlockWriter();
  BlockWriter(const BlockWriter&) = delete;
  BlockWriter& operator=(const BlockWriter&) = delete;

  bool write_file_header();
  // Adds one record; writes the current block first when the record would not fit.
  void add(std::span<const std::byte> record);
  // Adds consecutive records (each sized by its header).
  void add_records(std::span<const std::byte> records);
  // Writes the records added since the last block, if any.
  void flush();
  // Flushes and closes the file.
  void close();

  // After the first write error everything is dropped; error() says what happened.
  bool failed() const { return !error_.empty(); }
  const std::string& error() const { return error_; }

  std::uint64_t bytes_written() const { return offset_; }
  std::uint64_t blocks_written() const { return sequence_; }
  std::uint64_t records_written() const { return records_written_; }

  // Closes the descriptor without writing: for a forked child, whose copy must not write.
  void abandon();

 private:
  bool write_all(std::span<const std::byte> a, std::span<const std::byte> b);

  int fd_;
  std::optional<ZstdCompressor> zstd_;
  std::vector<std::byte> raw_;
  std::vector<std::byte> packed_;
  std::uint32_t raw_records_ = 0;
  std::uint32_t sequence_ = 0;
  std::uint64_t offset_ = 0;
  std::uint64_t records_written_ = 0;
  std::string error_;
};

}  // namespace cudefrag::trace
