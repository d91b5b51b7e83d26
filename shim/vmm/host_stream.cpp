#include <unordered_map>
#include <utility>

#include "shim/vmm/host_backend.hpp"
#include "shim/vmm/host_stream_queue.hpp"

namespace cudefrag::vmm {
namespace detail {

HostStreamQueue::HostStreamQueue() : worker_([this] { run(); }) {
  worker_id_ = worker_.get_id();
}

HostStreamQueue::~HostStreamQueue() {
  stop();
}

bool HostStreamQueue::enqueue(std::function<void()> work) {
  {
    std::lock_guard lock(mu_);
    if (stopping_) return false;
    queue_.push_back(std::move(work));
    ++enqueued_;
  }
  work_cv_.notify_one();
  return true;
}

void HostStreamQueue::synchronize() {
  if (on_worker()) return;
  std::unique_lock lock(mu_);
  const std::uint64_t target = enqueued_;
  done_cv_.wait(lock, [&] { return done_ >= target; });
}

void HostStreamQueue::stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  work_cv_.notify_one();
  std::lock_guard join_lock(join_mu_);
  if (worker_.joinable()) worker_.join();
}

void HostStreamQueue::run() {
  std::unique_lock lock(mu_);
  for (;;) {
    work_cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
    if (queue_.empty()) return;  // stopping, and everything queued has run
    std::function<void()> work = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    work();
    work = nullptr;  // captured state dies before the work counts as done
    lock.lock();
    ++done_;
    done_cv_.notify_all();
  }
}

namespace {

// Leaked on purpose: a HostStream with static storage may be destroyed after any other static.
struct StreamRegistry {
  std::mutex mu;
  std::unordered_map<const void*, LiveStream> live;
};

StreamRegistry& registry() {
  static auto* r = new StreamRegistry;
  return *r;
}

}  // namespace

LiveStream find_live_stream(const void* stream) {
  StreamRegistry& r = registry();
  std::lock_guard lock(r.mu);
  auto it = r.live.find(stream);
  if (it == r.live.end()) return {};
  return it->second;
}

std::vector<std::shared_ptr<HostStreamQueue>> live_streams(DeviceOrdinal device) {
  StreamRegistry& r = registry();
  std::lock_guard lock(r.mu);
  std::vector<std::shared_ptr<HostStreamQueue>> out;
  for (const auto& [key, stream] : r.live) {
    if (stream.device == device) out.push_back(stream.queue);
  }
  return out;
}

}  // namespace detail

HostStream::HostStream(DeviceOrdinal device)
    : device_(device), queue_(std::make_shared<detail::HostStreamQueue>()) {
  detail::StreamRegistry& r = detail::registry();
  std::lock_guard lock(r.mu);
  r.live.emplace(this, detail::LiveStream{queue_, device_});
}

HostStream::~HostStream() {
  {
    detail::StreamRegistry& r = detail::registry();
    std::lock_guard lock(r.mu);
    r.live.erase(this);
  }
  queue_->stop();
}

void HostStream::enqueue(std::function<void()> work) {
  queue_->enqueue(std::move(work));
}

void HostStream::synchronize() {
  queue_->synchronize();
}

}  // namespace cudefrag::vmm
