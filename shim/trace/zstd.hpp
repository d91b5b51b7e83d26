// Block compression with zstd, loaded at run time with dlopen("libzstd.so.1").
//
// Why at run time: a preloaded library with a missing dependency stops the host program from
// starting, and the build machine has no zstd headers. libzstd.so.1 is present on Debian 12 and
// Ubuntu 24.04 (apt needs it); where it is missing the writer stores blocks uncompressed and the
// reader reports compressed blocks as unreadable, by name.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <vector>

namespace cudefrag::trace {

// True when libzstd.so.1 was loaded and has every function used here.
bool zstd_available();

// One compression context, reused across blocks (creating a context per block costs more than
// compressing a small block). Not thread-safe; the writer owns one.
class ZstdCompressor {
 public:
  explicit ZstdCompressor(int level);
  ~ZstdCompressor();
  ZstdCompressor(const ZstdCompressor&) = delete;
  ZstdCompressor& operator=(const ZstdCompressor&) = delete;

  // Compresses `in` into `out` (resized to the compressed size). False when zstd is missing or
  // failed; `out` is then unspecified.
  bool compress(std::span<const std::byte> in, std::vector<std::byte>& out);

 private:
  void* context_ = nullptr;
  int level_;
};

// Decompresses one zstd frame into exactly out.size() bytes. Returns an empty string on
// success, otherwise what went wrong.
std::string zstd_decompress(std::span<const std::byte> in, std::span<std::byte> out);

}  // namespace cudefrag::trace
