// "reading 45% (1.2 GiB of 2.6 GiB)" on stderr while a large trace is read, only when stderr
// is a terminal; the line is erased when done. At most a few updates a second.
#pragma once

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

namespace cudefrag::analyzer {

// The size of the file at `path`, for Progress; 0 (no progress shown) when it cannot be stat'd.
std::uint64_t file_size(const std::string& path);

class Progress {
 public:
  static constexpr std::uint64_t kMinimumBytes = std::uint64_t{64} << 20;

  // Shows progress only when `out` is a terminal and the file is at least kMinimumBytes.
  Progress(std::FILE* out, std::uint64_t file_bytes);
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  // Cheap enough to call often (at most one clock read per call).
  void update(std::uint64_t offset) {
    if (enabled_) show(offset);
  }
  void done();

 private:
  void show(std::uint64_t offset);

  std::FILE* out_;
  std::uint64_t file_bytes_;
  bool enabled_ = false;
  bool shown_ = false;
  std::chrono::steady_clock::time_point next_;
};

}  // namespace cudefrag::analyzer
