#include "shim/config/log.hpp"

#include <fcntl.h>
#include <spdlog/logger.h>
#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace cudefrag::log {
namespace {

std::atomic<LogLevel> g_threshold{LogLevel::kWarn};
// Loggers are never destroyed: hooks may log while the process exits, after static destructors
// have run. A replaced logger is kept for the same reason (another thread may still use it).
std::atomic<spdlog::logger*> g_logger{nullptr};
constinit std::mutex g_mutex;

spdlog::level::level_enum to_spdlog(LogLevel l) {
  switch (l) {
    case LogLevel::kTrace:
      return spdlog::level::trace;
    case LogLevel::kDebug:
      return spdlog::level::debug;
    case LogLevel::kInfo:
      return spdlog::level::info;
    case LogLevel::kWarn:
      return spdlog::level::warn;
    case LogLevel::kError:
      return spdlog::level::err;
    case LogLevel::kOff:
      return spdlog::level::off;
  }
  return spdlog::level::off;
}

spdlog::logger* make_logger(spdlog::sink_ptr sink) {
  auto* l = new spdlog::logger("cudefrag", std::move(sink));
  l->set_pattern("cudefrag[%P] %l: %v");
  l->set_level(spdlog::level::trace);  // the threshold is ours, checked before formatting
  l->flush_on(spdlog::level::trace);   // messages are rare; a crash must not lose them
  return l;
}

spdlog::logger* make_stderr_logger() {
  return make_logger(std::make_shared<spdlog::sinks::stderr_sink_mt>());
}

// Last resort when spdlog itself fails (no memory): one plain write to stderr.
void raw_write(std::string_view message) noexcept {
  std::array<char, 1100> line{};
  const int n =
      std::snprintf(line.data(), line.size(), "cudefrag[%d]: %.*s\n", static_cast<int>(getpid()),
                    static_cast<int>(message.size()), message.data());
  if (n > 0) {
    const auto len =
        static_cast<std::size_t>(n) < line.size() ? static_cast<std::size_t>(n) : line.size() - 1;
    [[maybe_unused]] const ssize_t ignored = ::write(STDERR_FILENO, line.data(), len);
  }
}

spdlog::logger* logger() noexcept {
  if (auto* l = g_logger.load(std::memory_order_acquire)) return l;
  try {
    const std::lock_guard lock(g_mutex);
    if (auto* l = g_logger.load(std::memory_order_acquire)) return l;
    auto* l = make_stderr_logger();
    g_logger.store(l, std::memory_order_release);
    return l;
  } catch (...) {
    return nullptr;
  }
}

__attribute__((format(printf, 2, 0))) void vlog(LogLevel level, const char* format,
                                                va_list args) noexcept {
  if (!enabled(level)) return;
  std::array<char, 1024> buf{};
  const int n = std::vsnprintf(buf.data(), buf.size(), format, args);
  if (n < 0) return;
  const auto len =
      static_cast<std::size_t>(n) < buf.size() ? static_cast<std::size_t>(n) : buf.size() - 1;
  write(level, std::string_view(buf.data(), len));
}

}  // namespace

void configure(LogLevel threshold, std::string_view file) noexcept {
  g_threshold.store(threshold, std::memory_order_relaxed);
  std::string failure;
  try {
    const std::lock_guard lock(g_mutex);
    spdlog::logger* l = nullptr;
    if (!file.empty()) {
      const std::string path(file);
      // Opened here first because spdlog would create missing directories; a log path with a
      // typo should fail, not leave a directory tree behind.
      const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
      if (fd < 0) {
        failure = std::strerror(errno);
      } else {
        ::close(fd);
        try {
          l = make_logger(std::make_shared<spdlog::sinks::basic_file_sink_mt>(path));
        } catch (const std::exception& e) {
          failure = e.what();
        }
      }
    }
    if (l == nullptr) l = make_stderr_logger();
    if (spdlog::logger* old = g_logger.exchange(l, std::memory_order_acq_rel)) {
      // Kept, and kept reachable: another thread may be writing through it right now.
      static auto* const retired = new std::vector<spdlog::logger*>;
      retired->push_back(old);
    }
  } catch (...) {
    raw_write("cannot set up logging; messages go to stderr");
    return;
  }
  if (!failure.empty()) {
    warn("cannot write the log file '%.*s' (%s); logging to stderr instead",
         static_cast<int>(file.size()), file.data(), failure.c_str());
  }
}

bool enabled(LogLevel level) noexcept {
  const LogLevel threshold = g_threshold.load(std::memory_order_relaxed);
  return level != LogLevel::kOff && threshold != LogLevel::kOff && level >= threshold;
}

void write(LogLevel level, std::string_view message) noexcept {
  if (!enabled(level)) return;
  spdlog::logger* l = logger();
  if (l == nullptr) {
    raw_write(message);
    return;
  }
  try {
    l->log(to_spdlog(level), "{}", message);
  } catch (...) {
    raw_write(message);
  }
}

void trace(const char* format, ...) noexcept {
  va_list args;
  va_start(args, format);
  vlog(LogLevel::kTrace, format, args);
  va_end(args);
}

void debug(const char* format, ...) noexcept {
  va_list args;
  va_start(args, format);
  vlog(LogLevel::kDebug, format, args);
  va_end(args);
}

void info(const char* format, ...) noexcept {
  va_list args;
  va_start(args, format);
  vlog(LogLevel::kInfo, format, args);
  va_end(args);
}

void warn(const char* format, ...) noexcept {
  va_list args;
  va_start(args, format);
  vlog(LogLevel::kWarn, format, args);
  va_end(args);
}

void error(const char* format, ...) noexcept {
  va_list args;
  va_start(args, format);
  vlog(LogLevel::kError, format, args);
  va_end(args);
}

}  // namespace cudefrag::log
