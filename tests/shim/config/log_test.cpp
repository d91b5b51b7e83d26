// The logging facade: threshold, destination file, and the fall-back to stderr with one message
// when the file cannot be written.
#include "shim/config/log.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

namespace cudefrag::log {
namespace {

std::string slurp(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// A fresh path: a file that an earlier run of the same pid left behind is removed first.
std::string temp_path(const char* name) {
  const char* dir = std::getenv("TMPDIR");
  const std::string path = std::string(dir != nullptr ? dir : "/tmp") + "/cudefrag-log-test-" +
                           std::to_string(getpid()) + "-" + name;
  std::remove(path.c_str());
  return path;
}

// Runs `body` with stderr redirected to a file; returns what it wrote.
template <typename Body>
std::string capture_stderr(Body body) {
  const std::string path = temp_path("stderr");
  std::fflush(stderr);
  const int saved = dup(STDERR_FILENO);
  FILE* f = std::fopen(path.c_str(), "w");
  dup2(fileno(f), STDERR_FILENO);
  body();
  std::fflush(stderr);
  dup2(saved, STDERR_FILENO);
  close(saved);
  std::fclose(f);
  const std::string out = slurp(path);
  std::remove(path.c_str());
  return out;
}

TEST(Log, WritesAtOrAboveTheThresholdToTheFile) {
  const std::string path = temp_path("file");
  configure(LogLevel::kInfo, path);
  debug("hidden %d", 1);
  info("shown %d", 2);
  error("also %s", "shown");
  EXPECT_FALSE(enabled(LogLevel::kDebug));
  EXPECT_TRUE(enabled(LogLevel::kWarn));
  const std::string text = slurp(path);
  EXPECT_EQ(text.find("hidden"), std::string::npos) << text;
  EXPECT_NE(text.find("info: shown 2"), std::string::npos) << text;
  EXPECT_NE(text.find("error: also shown"), std::string::npos) << text;
  std::remove(path.c_str());
}

TEST(Log, OffWritesNothing) {
  const std::string path = temp_path("off");
  configure(LogLevel::kOff, path);
  error("nothing");
  EXPECT_FALSE(enabled(LogLevel::kError));
  EXPECT_EQ(slurp(path), "");
  std::remove(path.c_str());
}

TEST(Log, UnwritableFileFallsBackToStderrWithOneMessage) {
  const std::string err = capture_stderr([] {
    configure(LogLevel::kWarn, "/dev/null/cannot/be/a/directory.log");
    warn("after the fall-back");
  });
  EXPECT_NE(err.find("cannot write the log file '/dev/null/cannot/be/a/directory.log'"),
            std::string::npos)
      << err;
  EXPECT_NE(err.find("after the fall-back"), std::string::npos) << err;
  configure(LogLevel::kWarn, "");
}

}  // namespace
}  // namespace cudefrag::log
