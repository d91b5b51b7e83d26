#include "shim/trace/trace_file.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace cudefrag::trace {
namespace {

enum class Lock { kTaken, kHeld, kUnsupported };

Lock lock_file(int fd) {
  struct stat st {};
  // Devices (/dev/null) and pipes are shared by nature; only regular files are locked.
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return Lock::kUnsupported;
  if (::flock(fd, LOCK_EX | LOCK_NB) == 0) return Lock::kTaken;
  return errno == EWOULDBLOCK ? Lock::kHeld : Lock::kUnsupported;
}

int open_for_writing(const std::string& path) {
  int fd;
  do {
    fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
  } while (fd < 0 && errno == EINTR);
  return fd;
}

OpenedFile failure(const std::string& path, int error) {
  return {-1, path, "cannot open trace file '" + path + "': " + std::strerror(error)};
}

}  // namespace

std::string expand_trace_path(std::string_view pattern) {
  std::string path;
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    if (pattern[i] == '%' && i + 1 < pattern.size() && pattern[i + 1] == 'p') {
      path += std::to_string(::getpid());
      ++i;
    } else if (pattern[i] == '%' && i + 1 < pattern.size() && pattern[i + 1] == '%') {
      path += '%';
      ++i;
    } else {
      path += pattern[i];
    }
  }
  return path;
}

OpenedFile open_trace_file(std::string_view pattern) {
  std::string path = expand_trace_path(pattern);
  int fd = open_for_writing(path);
  if (fd < 0) return failure(path, errno);
  if (lock_file(fd) == Lock::kHeld) {
    ::close(fd);
    path += "." + std::to_string(::getpid());
    fd = open_for_writing(path);
    if (fd < 0) return failure(path, errno);
    if (lock_file(fd) == Lock::kHeld) {
      ::close(fd);
      return {-1, path, "trace file '" + path + "' is being written by another process"};
    }
  }
  // Only now, with the lock held, may an old trace be cut (devices refuse; that is fine).
  if (::ftruncate(fd, 0) != 0 && errno != EINVAL) {
    const int error = errno;
    ::close(fd);
    return failure(path, error);
  }
  return {fd, path, {}};
}

}  // namespace cudefrag::trace
