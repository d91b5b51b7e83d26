// Running a program from a test: arguments, environment changes, captured output, exit status.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace cudefrag::test_support {

// Environment changes on top of the test's own environment: a value sets, nullopt unsets.
using EnvChanges = std::vector<std::pair<std::string, std::optional<std::string>>>;

struct Outcome {
  int exit_code = -1;  // when it exited
  int signal = 0;      // when a signal ended it
  bool timed_out = false;
  std::string out;
  std::string err;
};

// A started program; its stdout and stderr are captured.
class Process {
 public:
  Process(const std::vector<std::string>& argv, const EnvChanges& env);
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;
  ~Process();

  pid_t pid() const { return pid_; }
  // Collects the output until the program ends (killing it after `timeout`).
  Outcome wait(std::chrono::seconds timeout = std::chrono::seconds(60));

 private:
  pid_t pid_ = -1;
  int out_fd_ = -1;
  int err_fd_ = -1;
  bool waited_ = false;
};

inline Outcome run(const std::vector<std::string>& argv, const EnvChanges& env = {},
                   std::chrono::seconds timeout = std::chrono::seconds(60)) {
  Process p(argv, env);
  return p.wait(timeout);
}

// A fresh empty directory under $TMPDIR (or /tmp), removed with its files at destruction.
class TempDir {
 public:
  TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  ~TempDir();
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

std::string read_file(const std::string& path);

}  // namespace cudefrag::test_support
