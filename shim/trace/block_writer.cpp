#include "shim/trace/block_writer.hpp"

#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "shim/trace/crc32c.hpp"
#include "shim/trace/format.hpp"

namespace cudefrag::trace {
namespace {

// Level 1: the writer thread compresses every block, so speed matters more than the last few
// percent (docs/trace-format.md has the measurement).
constexpr int kZstdLevel = 1;

template <typename T>
std::span<const std::byte> bytes_of(const T& value) {
  return std::as_bytes(std::span(&value, 1));
}

}  // namespace

BlockWriter::BlockWriter(int fd, bool compress) : fd_(fd) {
  if (compress && zstd_available()) zstd_.emplace(kZstdLevel);
  raw_.reserve(kBlockBytes);
}

BlockWriter::~BlockWriter() {
  close();
}

void BlockWriter::abandon() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  error_ = "abandoned";
}

bool BlockWriter::write_file_header() {
  format::FileHeader header{format::kFileMagic,
                            format::kVersionMajor,
                            format::kVersionMinor,
                            sizeof(format::FileHeader),
                            0,
                            0};
  header.crc = crc32c(bytes_of(header).first(offsetof(format::FileHeader, crc)));
  return write_all(bytes_of(header), {});
}

void BlockWriter::add(std::span<const std::byte> record) {
  if (failed()) return;
  if (raw_.size() + record.size() > kBlockBytes) flush();
  raw_.insert(raw_.end(), record.begin(), record.end());
  ++raw_records_;
}

void BlockWriter::add_records(std::span<const std::byte> records) {
  while (records.size() >= sizeof(format::RecordHeader)) {
    format::RecordHeader header;
    std::memcpy(&header, records.data(), sizeof header);
    const std::size_t size = std::min<std::size_t>(header.size, records.size());
    if (size < sizeof header) return;  // cannot happen with records we built
    add(records.first(size));
    records = records.subspan(size);
  }
}

void BlockWriter::flush() {
  if (raw_records_ == 0 || failed()) return;
  std::span<const std::byte> payload = raw_;
  format::Codec codec = format::Codec::kNone;
  if (zstd_ && zstd_->compress(raw_, packed_) && packed_.size() < raw_.size()) {
    payload = packed_;
    codec = format::Codec::kZstd;
  }
  format::BlockHeader header{format::kBlockMagic,
                             codec,
                             0,
                             0,
                             static_cast<std::uint32_t>(payload.size()),
                             static_cast<std::uint32_t>(raw_.size()),
                             raw_records_,
                             sequence_,
                             crc32c(payload),
                             0};
  header.header_crc = crc32c(bytes_of(header).first(offsetof(format::BlockHeader, header_crc)));
  if (write_all(bytes_of(header), payload)) {
    ++sequence_;
    records_written_ += raw_records_;
  }
  raw_.clear();
  raw_records_ = 0;
}

void BlockWriter::close() {
  flush();
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
}

bool BlockWriter::write_all(std::span<const std::byte> a, std::span<const std::byte> b) {
  if (failed()) return false;
  iovec parts[2] = {{const_cast<std::byte*>(a.data()), a.size()},
                    {const_cast<std::byte*>(b.data()), b.size()}};
  int first = 0;
  const int count = b.empty() ? 1 : 2;
  std::size_t left = a.size() + b.size();
  while (left > 0) {
    const ssize_t n = ::writev(fd_, parts + first, count - first);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      error_ = n < 0 ? std::strerror(errno) : "write returned 0";
      // Cut a partly written block off, so the file ends on a whole block (best effort: not
      // possible on a pipe or a device).
      if (::ftruncate(fd_, static_cast<off_t>(offset_)) == 0) {
        ::lseek(fd_, static_cast<off_t>(offset_), SEEK_SET);
      }
      return false;
    }
    auto done = static_cast<std::size_t>(n);
    left -= done;
    while (first < count && done >= parts[first].iov_len) done -= parts[first++].iov_len;
    if (first < count) {
      parts[first].iov_base = static_cast<std::byte*>(parts[first].iov_base) + done;
      parts[first].iov_len -= done;
    }
  }
  offset_ += a.size() + b.size();
  return true;
}

}  // namespace cudefrag::trace
