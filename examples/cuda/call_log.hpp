// What an example program asked of CUDA: calls and bytes per entry point, printed in a form that
// scripts/gpu_check.sh compares with the launcher's summary of what the shim saw.
//
// Output contract (one line per entry point, sorted by name, then a verdict):
//   [program] call <entry point> count=<calls> bytes=<bytes requested>
//   [program] RESULT PASS|FAIL
// A call is counted when the program makes it, whatever it returns, because the shim counts
// calls, not successes.
#pragma once

#include <cstdint>
#include <cstdio>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>

namespace cudefrag::examples {

class CallLog {
 public:
  explicit CallLog(std::string program) : program_(std::move(program)) {}

  // Thread-safe: the stress example counts from many threads.
  void add(std::string_view entry_point, std::uint64_t bytes = 0) {
    const std::lock_guard lock(mutex_);
    Tally& t = tallies_[std::string(entry_point)];
    ++t.count;
    t.bytes += bytes;
  }

  std::uint64_t count(std::string_view entry_point) const {
    const std::lock_guard lock(mutex_);
    const auto it = tallies_.find(entry_point);
    return it == tallies_.end() ? 0 : it->second.count;
  }

  void print() const {
    const std::lock_guard lock(mutex_);
    for (const auto& [name, t] : tallies_) {
      std::printf("[%s] call %s count=%llu bytes=%llu\n", program_.c_str(), name.c_str(),
                  static_cast<unsigned long long>(t.count),
                  static_cast<unsigned long long>(t.bytes));
    }
    std::fflush(stdout);
  }

  void verdict(bool pass) const {
    std::printf("[%s] RESULT %s\n", program_.c_str(), pass ? "PASS" : "FAIL");
    std::fflush(stdout);
  }

  const std::string& program() const { return program_; }

 private:
  struct Tally {
    std::uint64_t count = 0;
    std::uint64_t bytes = 0;
  };
  std::string program_;
  mutable std::mutex mutex_;
  std::map<std::string, Tally, std::less<>> tallies_;
};

}  // namespace cudefrag::examples
