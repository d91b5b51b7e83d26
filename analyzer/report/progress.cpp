#include "analyzer/report/progress.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include "analyzer/report/text_units.hpp"

namespace cudefrag::analyzer {

std::uint64_t file_size(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
}

Progress::Progress(std::FILE* out, std::uint64_t file_bytes)
    : out_(out),
      file_bytes_(file_bytes),
      enabled_(file_bytes >= kMinimumBytes && isatty(fileno(out)) == 1),
      next_(std::chrono::steady_clock::now() + std::chrono::milliseconds(500)) {}

Progress::~Progress() {
  done();
}

void Progress::show(std::uint64_t offset) {
  const auto now = std::chrono::steady_clock::now();
  if (now < next_) return;
  next_ = now + std::chrono::milliseconds(250);
  std::fprintf(out_, "\rcudefrag report: reading %3.0f%% (%s of %s)\033[K",
               100.0 * static_cast<double>(offset) / static_cast<double>(file_bytes_),
               bytes_text(offset).c_str(), bytes_text(file_bytes_).c_str());
  std::fflush(out_);
  shown_ = true;
}

void Progress::done() {
  if (!shown_) return;
  std::fputs("\r\033[K", out_);
  std::fflush(out_);
  shown_ = false;
}

}  // namespace cudefrag::analyzer
