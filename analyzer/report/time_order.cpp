#include "analyzer/report/time_order.hpp"

#include <algorithm>

namespace cudefrag::analyzer {
namespace {

// Min-heap order on (time, queue): the earliest time first, ties by queue creation order.
bool later(const auto& a, const auto& b) {
  return a.time_ns != b.time_ns ? a.time_ns > b.time_ns : a.queue > b.queue;
}

}  // namespace

void TimeOrder::Queue::grow() {
  std::vector<Event> bigger(std::max<std::size_t>(16, ring_.size() * 2));
  for (std::size_t i = 0; i < size_; ++i) bigger[i] = ring_[(head_ + i) & (ring_.size() - 1)];
  ring_.swap(bigger);
  head_ = 0;
}

TimeOrder::TimeOrder(std::uint64_t window_ns, std::uint64_t max_window_ns, std::size_t max_pending)
    : window_ns_(window_ns),
      max_window_ns_(std::max(max_window_ns, window_ns)),
      max_pending_(std::max<std::size_t>(max_pending, 1)) {}

std::uint32_t TimeOrder::find_queue(std::uint32_t thread) {
  auto [it, added] =
      queue_of_thread_.try_emplace(thread, static_cast<std::uint32_t>(queues_.size()));
  if (added) queues_.emplace_back();
  last_thread_ = thread;
  last_queue_ = it->second;
  return it->second;
}

void TimeOrder::push(const Event& event) {
  const std::uint32_t q = queue_of(event.thread);
  Queue& queue = queues_[q];
  if (queue.empty()) {
    heads_.push_back({event.time_ns, q});
    std::push_heap(heads_.begin(), heads_.end(),
                   [](const Head& a, const Head& b) { return later(a, b); });
  }
  queue.push(event);
  ++pending_;
  if (event.time_ns < newest_ns_) {
    const std::uint64_t lag = newest_ns_ - event.time_ns;
    if (lag > window_ns_ / 2) window_ns_ = std::min(max_window_ns_, std::max(window_ns_, lag * 4));
  }
  newest_ns_ = std::max(newest_ns_, event.time_ns);
}

void TimeOrder::sift_down() {
  // The first head changed (it is usually still the earliest: one comparison or two).
  std::size_t i = 0;
  for (;;) {
    const std::size_t left = 2 * i + 1;
    if (left >= heads_.size()) return;
    std::size_t child = left;
    if (left + 1 < heads_.size() && later(heads_[left], heads_[left + 1])) child = left + 1;
    if (!later(heads_[i], heads_[child])) return;
    std::swap(heads_[i], heads_[child]);
    i = child;
  }
}

Event TimeOrder::pop_front() {
  Queue& queue = queues_[heads_.front().queue];
  const Event event = queue.pop();  // copied before the queue changes
  if (!queue.empty()) {
    heads_.front().time_ns = queue.front().time_ns;
  } else {
    heads_.front() = heads_.back();
    heads_.pop_back();
  }
  sift_down();
  --pending_;
  if (released_any_ && event.time_ns < released_ns_) ++late_;
  released_ns_ = std::max(released_ns_, event.time_ns);
  released_any_ = true;
  return event;
}

bool TimeOrder::pop_any(Event& out) {
  if (heads_.empty()) return false;
  out = pop_front();
  return true;
}

}  // namespace cudefrag::analyzer
