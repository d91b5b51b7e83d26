// The shim's logging facade. spdlog stays behind it (log.cpp) so that no header of the shim pulls
// spdlog in, and so that spdlog and fmt are hidden inside libcudefrag.so.
//
// Not for hot paths: callers log on slow paths, failures and once-only events. Safe to call at
// any time, from any thread, before configure() (messages then go to stderr at level warn) and
// during process exit (the logger is never destroyed).
#pragma once

#include <string_view>

#include "shim/config/options.hpp"

namespace cudefrag::log {

using config::LogLevel;

// Sets the threshold and the destination (empty path: stderr). If the file cannot be opened,
// messages go to stderr and one message says why. Safe to call more than once.
void configure(LogLevel threshold, std::string_view file) noexcept;

bool enabled(LogLevel level) noexcept;

void write(LogLevel level, std::string_view message) noexcept;

// printf-style; formats only when the level is enabled. Messages longer than 1 KiB are cut.
void trace(const char* format, ...) noexcept __attribute__((format(printf, 1, 2)));
void debug(const char* format, ...) noexcept __attribute__((format(printf, 1, 2)));
void info(const char* format, ...) noexcept __attribute__((format(printf, 1, 2)));
void warn(const char* format, ...) noexcept __attribute__((format(printf, 1, 2)));
void error(const char* format, ...) noexcept __attribute__((format(printf, 1, 2)));

}  // namespace cudefrag::log
