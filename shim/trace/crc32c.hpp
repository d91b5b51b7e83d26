// CRC32C (Castagnoli), the checksum of trace blocks. Software only (slicing by 8): it runs on
// the background writer and in the offline reader, never on the allocating thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

namespace cudefrag::trace {

// CRC32C of `bytes`, continuing from `crc` (0 to start). crc32c("123456789") == 0xE3069283.
std::uint32_t crc32c(std::span<const std::byte> bytes, std::uint32_t crc = 0);

}  // namespace cudefrag::trace
