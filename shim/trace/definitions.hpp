// Definitions (strings, stacks, symbols) waiting for the writer, pushed by any thread on a cache
// miss. The consumer takes them right AFTER it has snapshotted the thread buffers and before it
// writes those buffers out: a record that refers to a definition was committed after the
// definition was pushed, so the definition always reaches the file first.
#pragma once

#include <cstddef>
#include <mutex>
#include <span>
#include <vector>

namespace cudefrag::trace {

class DefinitionQueue {
 public:
  // Appends one record made of `head` followed by `tail`.
  void push(std::span<const std::byte> head, std::span<const std::byte> tail = {}) {
    std::lock_guard lock(mutex_);
    pending_.insert(pending_.end(), head.begin(), head.end());
    pending_.insert(pending_.end(), tail.begin(), tail.end());
  }

  // Moves everything pushed so far into `out` (cleared first).
  void take(std::vector<std::byte>& out) {
    out.clear();
    std::lock_guard lock(mutex_);
    out.swap(pending_);
  }

 private:
  std::mutex mutex_;
  std::vector<std::byte> pending_;
};

}  // namespace cudefrag::trace
