// Puts the events of a trace back in time order with bounded memory.
//
// Why a window is enough: each thread's records are in the file in the order the thread made
// them (a record found out of order within its thread is moved back into place), and the
// writer writes the threads' buffers one after another about every 50 ms
// (docs/trace-format.md). A record can therefore only be overtaken by records of other
// threads written in the same pass, or by one whose time was taken just before the pass began.
// Events are kept in one queue per thread (each already in order) and merged by time; the
// earliest is released once the newest time seen is `window` past it.
//
// The window starts at one second (twenty writer passes: the recorder's own traces at a million
// events a second show 10 ms at most, but a writer thread can be descheduled on a busy machine)
// and grows to four times the largest lateness seen, up to 10 s. Memory stays bounded by
// `max_pending` events (2^18 by default, 14 MiB: a quarter of a second at a million events a
// second); past that the earliest is released anyway. An event that still arrives
// after a later one was released is released at once and counted in late(): its consumer sees
// time go back.
//
// Contract: push() events in file order; pop_ready() returns them in time order as soon as no
// event still to come can precede them; pop_any() drains the rest at the end of the trace. Ties
// keep the order of the threads' first appearance.
#pragma once

#include <cstddef>
#include <cstdint>
#include <unordered_map>
#include <utility>
#include <vector>

#include "analyzer/report/event.hpp"

namespace cudefrag::analyzer {

class TimeOrder {
 public:
  static constexpr std::uint64_t kInitialWindowNs = 1'000'000'000;
  static constexpr std::uint64_t kMaxWindowNs = 10'000'000'000;
  static constexpr std::size_t kDefaultMaxPending = std::size_t{1} << 18;  // 14 MiB of events
  // Farthest a record found out of order within its thread is moved back (see Queue::push).
  static constexpr std::size_t kMaxMoveBack = 1024;

  explicit TimeOrder(std::uint64_t window_ns = kInitialWindowNs,
                     std::uint64_t max_window_ns = kMaxWindowNs,
                     std::size_t max_pending = kDefaultMaxPending);

  void push(const Event& event);
  bool pop_ready(Event& out) {
    if (heads_.empty()) return false;
    if (newest_ns_ - heads_.front().time_ns < window_ns_ && pending_ <= max_pending_) return false;
    out = pop_front();
    return true;
  }
  bool pop_any(Event& out);

  std::size_t pending() const { return pending_; }
  std::uint64_t window_ns() const { return window_ns_; }
  // Events released after an event with a later time.
  std::uint64_t late() const { return late_; }

 private:
  // A FIFO of one thread's events (a ring that grows by doubling).
  class Queue {
   public:
    bool empty() const { return size_ == 0; }
    const Event& front() const { return ring_[head_]; }
    void push(const Event& event) {
      if (size_ == ring_.size()) grow();
      const std::size_t mask = ring_.size() - 1;
      // A thread's records are in time order; should one not be, it moves back to its place
      // (except before the first, whose time the merge heap already holds), but by at most
      // kMaxMoveBack places: a crafted file whose thread runs backwards would otherwise cost a
      // walk of the whole queue per record. Beyond that it stays out of order and is counted
      // late when released.
      std::size_t at = size_;
      const std::size_t stop = size_ > kMaxMoveBack + 1 ? size_ - kMaxMoveBack : 1;
      while (at > stop && ring_[(head_ + at - 1) & mask].time_ns > event.time_ns) {
        ring_[(head_ + at) & mask] = ring_[(head_ + at - 1) & mask];
        --at;
      }
      ring_[(head_ + at) & mask] = event;
      ++size_;
    }
    const Event& pop() {
      const Event& event = ring_[head_];
      head_ = (head_ + 1) & (ring_.size() - 1);
      --size_;
      return event;  // valid until the next push
    }

   private:
    void grow();

    std::vector<Event> ring_;
    std::size_t head_ = 0;
    std::size_t size_ = 0;
  };

  struct Head {
    std::uint64_t time_ns;
    std::uint32_t queue;
  };

  std::uint32_t queue_of(std::uint32_t thread) {
    // Records come in long runs of one thread (a buffer at a time): one comparison mostly.
    if (thread == last_thread_ && last_queue_ != UINT32_MAX) return last_queue_;
    return find_queue(thread);
  }
  std::uint32_t find_queue(std::uint32_t thread);
  Event pop_front();
  void sift_down();

  std::uint64_t window_ns_;
  std::uint64_t max_window_ns_;
  std::size_t max_pending_;
  std::vector<Queue> queues_;
  std::unordered_map<std::uint32_t, std::uint32_t> queue_of_thread_;
  std::uint32_t last_thread_ = 0;
  std::uint32_t last_queue_ = UINT32_MAX;
  std::vector<Head> heads_;  // min-heap of the non-empty queues' first times
  std::size_t pending_ = 0;
  std::uint64_t newest_ns_ = 0;
  std::uint64_t released_ns_ = 0;
  bool released_any_ = false;
  std::uint64_t late_ = 0;
};

}  // namespace cudefrag::analyzer
