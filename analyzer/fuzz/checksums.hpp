// Makes the checksums of a (mutated) trace file right again, so that the fuzzer's mutations
// reach the record decoder and the report instead of stopping at the first CRC32C check: almost
// every random change to a block would otherwise be caught by its payload checksum.
//
// Contract: walks the file as the reader does (file header, then blocks from header_size on)
// and rewrites, in place, the file header CRC and, for each block whose magic is right, its
// payload CRC (when the payload is whole) and its header CRC. Stops at the first block whose
// magic is wrong or whose payload runs past the end. Everything else is left as it is,
// including sizes and sequence numbers: those the reader must check by itself.
#pragma once

#include <cstddef>
#include <span>

namespace cudefrag::analyzer::fuzz {

// True when anything was changed.
bool fix_checksums(std::span<std::byte> file);

}  // namespace cudefrag::analyzer::fuzz
