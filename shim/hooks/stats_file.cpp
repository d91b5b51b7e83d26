#include "shim/hooks/stats_file.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace cudefrag::stats {
namespace {

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

std::string describe(const std::string& what, const std::string& path) {
  return what + " '" + path + "': " + std::strerror(errno);
}

}  // namespace

void add_live(DeviceCounters& d, std::uint64_t n) noexcept {
  const std::uint64_t now =
      std::atomic_ref(d.live_bytes).fetch_add(n, std::memory_order_relaxed) + n;
  std::atomic_ref peak(d.peak_bytes);
  std::uint64_t seen = peak.load(std::memory_order_relaxed);
  while (now > seen && !peak.compare_exchange_weak(seen, now, std::memory_order_relaxed)) {
  }
}

void sub_live(DeviceCounters& d, std::uint64_t n) noexcept {
  std::atomic_ref(d.live_bytes).fetch_sub(n, std::memory_order_relaxed);
}

void initialize(StatsBlock& block) noexcept {
  std::memset(&block, 0, sizeof block);
  block.magic = kMagic;
  block.version = kVersion;
  block.size = static_cast<std::uint32_t>(sizeof(StatsBlock));
}

bool valid(const StatsBlock& block) noexcept {
  return block.magic == kMagic && block.version == kVersion && block.size == sizeof(StatsBlock);
}

bool create_file(const std::string& path, std::string& error) {
  const Fd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600));
  if (fd.get() < 0) {
    error = describe("cannot create the stats file", path);
    return false;
  }
  StatsBlock block;
  initialize(block);
  const auto* bytes = reinterpret_cast<const char*>(&block);
  std::size_t done = 0;
  while (done < sizeof block) {
    const ssize_t n = ::write(fd.get(), bytes + done, sizeof block - done);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      error = describe("cannot write the stats file", path);
      return false;
    }
    done += static_cast<std::size_t>(n);
  }
  return true;
}

bool read_file(const std::string& path, StatsBlock& out, std::string& error) {
  const Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (fd.get() < 0) {
    error = describe("cannot open the stats file", path);
    return false;
  }
  auto* bytes = reinterpret_cast<char*>(&out);
  std::size_t done = 0;
  while (done < sizeof out) {
    const ssize_t n = ::read(fd.get(), bytes + done, sizeof out - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      error = describe("cannot read the stats file", path);
      return false;
    }
    if (n == 0) break;
    done += static_cast<std::size_t>(n);
  }
  if (done != sizeof out || !valid(out)) {
    error = "the stats file '" + path + "' has a layout this launcher does not know";
    return false;
  }
  return true;
}

StatsBlock* map_file(const char* path, const char** why) noexcept {
  const Fd fd(::open(path, O_RDWR | O_CLOEXEC));
  if (fd.get() < 0) {
    *why = "cannot open it";
    return nullptr;
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0 || st.st_size != static_cast<off_t>(sizeof(StatsBlock))) {
    *why = "its size is not that of this version's layout";
    return nullptr;
  }
  void* p = ::mmap(nullptr, sizeof(StatsBlock), PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
  if (p == MAP_FAILED) {
    *why = "cannot map it";
    return nullptr;
  }
  auto* block = static_cast<StatsBlock*>(p);
  if (!valid(*block)) {
    ::munmap(p, sizeof(StatsBlock));
    *why = "its header is not that of this version's layout";
    return nullptr;
  }
  return block;
}

std::string_view entry_name(const EntryCounters& e) noexcept {
  return {e.name.data(), strnlen(e.name.data(), e.name.size())};
}

}  // namespace cudefrag::stats
