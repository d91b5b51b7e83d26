#include "analyzer/fuzz/checksums.hpp"

#include <cstdint>
#include <cstring>

#include "shim/trace/crc32c.hpp"
#include "shim/trace/format.hpp"

namespace cudefrag::analyzer::fuzz {
namespace {

namespace format = trace::format;

// Writes `crc` at `at` if it differs from what is there.
bool store_crc(std::span<std::byte> file, std::size_t at, std::uint32_t crc) {
  std::uint32_t old = 0;
  std::memcpy(&old, file.data() + at, sizeof old);
  if (old == crc) return false;
  std::memcpy(file.data() + at, &crc, sizeof crc);
  return true;
}

}  // namespace

bool fix_checksums(std::span<std::byte> file) {
  format::FileHeader header;
  if (file.size() < sizeof header) return false;
  std::memcpy(&header, file.data(), sizeof header);
  bool changed = store_crc(file, offsetof(format::FileHeader, crc),
                           trace::crc32c(file.first(offsetof(format::FileHeader, crc))));
  if (header.header_size < sizeof header || header.header_size > file.size()) return changed;

  std::size_t offset = header.header_size;
  while (file.size() - offset >= sizeof(format::BlockHeader)) {
    format::BlockHeader block;
    std::memcpy(&block, file.data() + offset, sizeof block);
    if (block.magic != format::kBlockMagic) break;
    const std::size_t payload = offset + sizeof block;
    const bool whole = block.stored_size <= file.size() - payload;
    if (whole) {
      changed |= store_crc(file, offset + offsetof(format::BlockHeader, payload_crc),
                           trace::crc32c(file.subspan(payload, block.stored_size)));
    }
    changed |=
        store_crc(file, offset + offsetof(format::BlockHeader, header_crc),
                  trace::crc32c(file.subspan(offset, offsetof(format::BlockHeader, header_crc))));
    if (!whole) break;
    offset = payload + block.stored_size;
  }
  return changed;
}

}  // namespace cudefrag::analyzer::fuzz
