#include "analyzer/read/reader.hpp"

#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <span>

#include "shim/trace/crc32c.hpp"
#include "shim/trace/zstd.hpp"

namespace cudefrag::analyzer {
namespace {

template <typename T>
std::span<const std::byte> bytes_of(const T& value) {
  return std::as_bytes(std::span(&value, 1));
}

std::string hex(std::uint64_t value) {
  char text[24];
  std::snprintf(text, sizeof text, "0x%llx", static_cast<unsigned long long>(value));
  return text;
}

std::string first_bytes(std::span<const std::byte> bytes) {
  std::string text;
  for (std::size_t i = 0; i < bytes.size() && i < 8; ++i) {
    char b[4];
    std::snprintf(b, sizeof b, "%02x ", static_cast<unsigned>(bytes[i]));
    text += b;
  }
  if (!text.empty()) text.pop_back();
  return text;
}

// Copies the fixed part of a record; false when the record is shorter than it.
template <typename T>
bool fixed_part(std::span<const std::byte> bytes, T& out) {
  if (bytes.size() < sizeof(T)) return false;
  std::memcpy(&out, bytes.data(), sizeof(T));
  return true;
}

std::string text_after(std::span<const std::byte> bytes, std::size_t fixed) {
  const auto rest = bytes.subspan(fixed);
  return {reinterpret_cast<const char*>(rest.data()), rest.size()};
}

std::vector<std::string> split_nul(std::string_view text) {
  std::vector<std::string> parts;
  while (!text.empty()) {
    const std::size_t end = text.find('\0');
    parts.emplace_back(text.substr(0, end));
    if (end == std::string_view::npos) break;
    text.remove_prefix(end + 1);
  }
  return parts;
}

}  // namespace

TraceReader::TraceReader(const std::string& path) : path_(path) {
  file_.open(path, std::ios::binary);
  if (!file_) {
    fail(0, std::string("cannot open: ") + std::strerror(errno));
    return;
  }
  // A directory opens and a pipe cannot seek; both would otherwise read as zeros and be
  // called "not a cudefrag trace", which sends the user looking in the wrong place.
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    fail(0, "is a directory, not a trace file");
    return;
  }
  file_.seekg(0, std::ios::end);
  const std::streamoff end = file_.tellg();
  if (end < 0) {
    fail(0,
         "not a regular file (a pipe?): the reader needs to know the file's size; "
         "save the trace to a file first");
    return;
  }
  file_size_ = static_cast<std::uint64_t>(end);
  file_.seekg(0);
  read_header();
}

void TraceReader::fail(std::uint64_t offset, const std::string& problem) {
  error_ = Diagnostic{offset, path_ + ": offset " + std::to_string(offset) + ": " + problem};
  ending_ = Ending::kError;
}

void TraceReader::truncated(std::uint64_t offset, const std::string& problem) {
  warning_ = Diagnostic{offset, path_ + ": offset " + std::to_string(offset) + ": " + problem +
                                    "; the trace was read up to this offset"};
  ending_ = Ending::kTruncated;
}

bool TraceReader::read_header() {
  if (file_size_ == 0) {
    fail(0, "empty file, not a cudefrag trace");
    return false;
  }
  const std::size_t have =
      static_cast<std::size_t>(std::min<std::uint64_t>(file_size_, sizeof header_));
  std::array<std::byte, sizeof(format::FileHeader)> raw{};
  file_.read(reinterpret_cast<char*>(raw.data()), static_cast<std::streamsize>(have));
  if (static_cast<std::size_t>(file_.gcount()) != have) {
    fail(0, std::string("read error: ") + std::strerror(errno));
    return false;
  }
  const std::size_t magic_bytes = std::min(have, format::kFileMagic.size());
  if (std::memcmp(raw.data(), format::kFileMagic.data(), magic_bytes) != 0) {
    fail(0,
         "not a cudefrag trace (it starts with " + first_bytes(std::span(raw).first(have)) + ")");
    return false;
  }
  if (have < sizeof header_) {
    fail(0, "file header cut short (" + std::to_string(have) + " of " +
                std::to_string(sizeof header_) + " bytes): nothing was recorded");
    return false;
  }
  std::memcpy(&header_, raw.data(), sizeof header_);
  const std::uint32_t crc = trace::crc32c(std::span(raw).first(offsetof(format::FileHeader, crc)));
  if (crc != header_.crc) {
    fail(0, "file header checksum mismatch (stored " + hex(header_.crc) + ", computed " + hex(crc) +
                "): the file is corrupted");
    return false;
  }
  if (header_.version_major > format::kVersionMajor || header_.version_major == 0) {
    fail(8, "trace format version " + std::to_string(header_.version_major) + "." +
                std::to_string(header_.version_minor) + " is not readable by this reader (" +
                std::to_string(format::kVersionMajor) + "." +
                std::to_string(format::kVersionMinor) + "); use the cudefrag that wrote it");
    return false;
  }
  if (header_.header_size < sizeof header_ || header_.header_size > file_size_) {
    fail(12, "file header size " + std::to_string(header_.header_size) + " is invalid");
    return false;
  }
  offset_ = header_.header_size;
  return true;
}

bool TraceReader::load_block() {
  if (offset_ == file_size_) {
    if (blocks_read_ == 0) {
      truncated(offset_, "no block after the file header: the program stopped right after it");
    } else {
      ending_ = seen_end_ ? Ending::kComplete : Ending::kUnfinished;
    }
    return false;
  }
  const std::uint64_t left = file_size_ - offset_;
  const std::string block_name = "block " + std::to_string(expected_sequence_);
  if (left < sizeof(format::BlockHeader)) {
    truncated(offset_, block_name + " header cut short (" + std::to_string(left) + " of " +
                           std::to_string(sizeof(format::BlockHeader)) + " bytes)");
    return false;
  }
  format::BlockHeader header;
  file_.seekg(static_cast<std::streamoff>(offset_));
  file_.read(reinterpret_cast<char*>(&header), sizeof header);
  if (!file_) {
    fail(offset_, "read error");
    return false;
  }
  if (header.magic != format::kBlockMagic) {
    fail(offset_, "no block header here (found " + hex(header.magic) + "): the file is corrupted");
    return false;
  }
  const std::uint32_t header_crc =
      trace::crc32c(bytes_of(header).first(offsetof(format::BlockHeader, header_crc)));
  if (header_crc != header.header_crc) {
    fail(offset_, block_name + " header checksum mismatch: the file is corrupted");
    return false;
  }
  if (header.sequence != expected_sequence_) {
    fail(offset_, "block sequence number " + std::to_string(header.sequence) + " where " +
                      std::to_string(expected_sequence_) + " was expected: the file is corrupted");
    return false;
  }
  const bool known_codec =
      header.codec == format::Codec::kNone || header.codec == format::Codec::kZstd;
  if (!known_codec) {
    fail(offset_, block_name + " uses unknown compression " +
                      std::to_string(static_cast<unsigned>(header.codec)));
    return false;
  }
  if (header.raw_size == 0 || header.raw_size > format::kMaxBlockRawBytes ||
      header.stored_size == 0 || header.stored_size > format::kMaxBlockStoredBytes ||
      header.record_count == 0 ||
      (header.codec == format::Codec::kNone && header.stored_size != header.raw_size)) {
    fail(offset_, block_name + " has impossible sizes (stored " +
                      std::to_string(header.stored_size) + ", raw " +
                      std::to_string(header.raw_size) + ", records " +
                      std::to_string(header.record_count) + ")");
    return false;
  }
  if (left - sizeof header < header.stored_size) {
    truncated(offset_, block_name + " cut short (" + std::to_string(left - sizeof header) + " of " +
                           std::to_string(header.stored_size) +
                           " payload bytes): the program stopped while writing it");
    return false;
  }
  stored_.resize(header.stored_size);
  file_.read(reinterpret_cast<char*>(stored_.data()), static_cast<std::streamsize>(stored_.size()));
  if (!file_) {
    fail(offset_, "read error");
    return false;
  }
  const std::uint32_t payload_crc = trace::crc32c(stored_);
  if (payload_crc != header.payload_crc) {
    fail(offset_, block_name + " payload checksum mismatch (stored " + hex(header.payload_crc) +
                      ", computed " + hex(payload_crc) + "): the file is corrupted");
    return false;
  }
  if (header.codec == format::Codec::kZstd) {
    block_.resize(header.raw_size);
    if (const std::string problem = trace::zstd_decompress(stored_, block_); !problem.empty()) {
      fail(offset_, block_name + " cannot be decompressed: " + problem);
      return false;
    }
  } else {
    block_.swap(stored_);
  }
  block_offset_ = offset_;
  offset_ += sizeof header + header.stored_size;
  position_ = 0;
  records_left_ = header.record_count;
  ++expected_sequence_;
  ++blocks_read_;
  return true;
}

bool TraceReader::next(Record& out, std::uint64_t* block_offset) {
  if (ending_ != Ending::kReading) return false;
  while (records_left_ == 0) {
    if (position_ != block_.size()) {
      fail(block_offset_, "block " + std::to_string(expected_sequence_ - 1) + " has " +
                              std::to_string(block_.size() - position_) +
                              " bytes after its last record");
      return false;
    }
    if (!load_block()) return false;
  }
  const std::span<const std::byte> rest = std::span(block_).subspan(position_);
  format::RecordHeader header{};
  if (rest.size() >= sizeof header) std::memcpy(&header, rest.data(), sizeof header);
  if (rest.size() < sizeof header || header.size < sizeof header || header.size > rest.size()) {
    fail(block_offset_, "record at byte " + std::to_string(position_) + " of block " +
                            std::to_string(expected_sequence_ - 1) + " runs past the block");
    return false;
  }
  const auto bytes = rest.first(header.size);
  if (!decode(bytes, out)) return false;
  if (records_read_ == 0 && !std::holds_alternative<ProcessInfo>(out)) {
    fail(block_offset_, "the first record is of type " +
                            std::to_string(static_cast<unsigned>(header.type)) +
                            ", not the process record");
    return false;
  }
  position_ += header.size;
  --records_left_;
  ++records_read_;
  if (block_offset != nullptr) *block_offset = block_offset_;
  return true;
}

bool TraceReader::decode(std::span<const std::byte> bytes, Record& out) {
  format::RecordHeader header;
  std::memcpy(&header, bytes.data(), sizeof header);
  bool ok = true;
  std::size_t needed = sizeof header;
  using format::RecordType;
  switch (header.type) {
    case RecordType::kProcess: {
      format::ProcessRecord r;
      needed = sizeof r;
      ok = fixed_part(bytes, r) && r.program_size <= bytes.size() - sizeof r;
      if (!ok) break;
      const std::string text = text_after(bytes, sizeof r);
      out = ProcessInfo{r.pid,
                        r.start_wall_ns,
                        r.start_mono_ns,
                        r.stack_mode,
                        text.substr(0, r.program_size),
                        split_nul(text.substr(r.program_size))};
      break;
    }
    case RecordType::kConfig: {
      const std::string text = text_after(bytes, sizeof header);
      const std::size_t eq = text.find('=');
      out = ConfigEntry{text.substr(0, eq), eq == std::string::npos ? "" : text.substr(eq + 1)};
      break;
    }
    case RecordType::kEntryPoint: {
      format::EntryPointRecord r;
      needed = sizeof r;
      if ((ok = fixed_part(bytes, r))) out = EntryPointName{r.id, text_after(bytes, sizeof r)};
      break;
    }
    case RecordType::kDevice: {
      format::DeviceRecord r;
      needed = sizeof r;
      if ((ok = fixed_part(bytes, r))) {
        out = DeviceInfo{r.ordinal, r.total_memory, r.uuid, text_after(bytes, sizeof r)};
      }
      break;
    }
    case RecordType::kRuntime: {
      format::RuntimeRecord r;
      needed = sizeof r;
      if ((ok = fixed_part(bytes, r))) out = RuntimeInfo{r.driver_version, r.runtime_version};
      break;
    }
    case RecordType::kString: {
      format::StringRecord r;
      needed = sizeof r;
      if ((ok = fixed_part(bytes, r))) out = StringDef{r.id, text_after(bytes, sizeof r)};
      break;
    }
    case RecordType::kStack: {
      format::StackRecord r;
      needed = sizeof r;
      ok = fixed_part(bytes, r) && sizeof r + r.native_count * std::size_t{8} +
                                           r.python_count * sizeof(format::PythonFrame) <=
                                       bytes.size();
      if (!ok) break;
      StackDef stack{r.id, std::vector<std::uint64_t>(r.native_count),
                     std::vector<format::PythonFrame>(r.python_count)};
      const std::byte* frames = bytes.data() + sizeof r;
      if (!stack.native.empty()) std::memcpy(stack.native.data(), frames, stack.native.size() * 8);
      if (!stack.python.empty()) {
        std::memcpy(stack.python.data(), frames + stack.native.size() * 8,
                    stack.python.size() * sizeof(format::PythonFrame));
      }
      out = std::move(stack);
      break;
    }
    case RecordType::kSymbol: {
      format::SymbolRecord r;
      needed = sizeof r;
      if ((ok = fixed_part(bytes, r))) out = r;
      break;
    }
    case RecordType::kAlloc:
    case RecordType::kFree: {
      format::MemoryRecord r;
      needed = sizeof r;
      if ((ok = fixed_part(bytes, r))) out = r;
      break;
    }
    case RecordType::kArena: {
      format::ArenaRecord r;
      needed = sizeof r;
      if ((ok = fixed_part(bytes, r))) out = r;
      break;
    }
    case RecordType::kOom: {
      format::OomRecord r;
      needed = sizeof r;
      if ((ok = fixed_part(bytes, r))) out = r;
      break;
    }
    case RecordType::kCounters: {
      format::CountersRecord r;
      needed = sizeof r;
      if ((ok = fixed_part(bytes, r))) out = r;
      break;
    }
    case RecordType::kMark: {
      format::MarkRecord r;
      needed = sizeof r;
      if ((ok = fixed_part(bytes, r))) out = Mark{r.thread, r.time_ns, text_after(bytes, sizeof r)};
      break;
    }
    case RecordType::kDropped: {
      format::DroppedRecord r;
      needed = sizeof r;
      if ((ok = fixed_part(bytes, r))) out = r;
      break;
    }
    case RecordType::kEnd: {
      format::EndRecord r;
      needed = sizeof r;
      if ((ok = fixed_part(bytes, r))) {
        out = r;
        seen_end_ = true;
      }
      break;
    }
    case RecordType::kPadding:
      ok = false;
      break;
    default:
      // A newer minor version's record: skipped by consumers, not an error.
      out = UnknownRecord{static_cast<std::uint16_t>(header.type), header.size};
      break;
  }
  if (!ok) {
    fail(block_offset_, "record of type " + std::to_string(static_cast<unsigned>(header.type)) +
                            " at byte " + std::to_string(position_) + " of block " +
                            std::to_string(expected_sequence_ - 1) + " is malformed (" +
                            std::to_string(bytes.size()) + " bytes, fixed part " +
                            std::to_string(needed) + ")");
  }
  return ok;
}

}  // namespace cudefrag::analyzer
