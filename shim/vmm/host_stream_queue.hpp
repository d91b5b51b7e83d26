// Internals of HostStream shared with the host backend: the work queue behind a stream, and the
// process-wide registry of live streams through which a backend turns a StreamRef into a queue
// (and refuses a pointer that is not a live stream instead of dereferencing it).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "shim/common/units.hpp"

namespace cudefrag::vmm {
class HostStream;
}

namespace cudefrag::vmm::detail {

// A FIFO of work run by one worker thread.
class HostStreamQueue {
 public:
  HostStreamQueue();
  // Stops and joins the worker if stop() was not called.
  ~HostStreamQueue();
  HostStreamQueue(const HostStreamQueue&) = delete;
  HostStreamQueue& operator=(const HostStreamQueue&) = delete;

  // False (and `work` dropped) once stop() has begun.
  bool enqueue(std::function<void()> work);
  // Blocks until everything enqueued before the call has run; returns at once on the worker.
  void synchronize();
  // Runs what is queued, then joins the worker. Idempotent. Must not be called from the worker
  // (a stream cannot be destroyed from its own work).
  void stop();
  bool on_worker() const { return std::this_thread::get_id() == worker_id_; }

 private:
  void run();

  std::mutex mu_;
  std::condition_variable work_cv_;
  std::condition_variable done_cv_;
  std::deque<std::function<void()>> queue_;
  std::uint64_t enqueued_ = 0;
  std::uint64_t done_ = 0;
  bool stopping_ = false;
  std::mutex join_mu_;  // serialises stop() callers around join()
  std::thread worker_;
  std::thread::id worker_id_;
};

// The queue of the live HostStream at `stream` with its device, or nullptr when `stream` is not a
// live HostStream.
struct LiveStream {
  std::shared_ptr<HostStreamQueue> queue;
  DeviceOrdinal device;
};
LiveStream find_live_stream(const void* stream);

// Queues of every live HostStream of `device`.
std::vector<std::shared_ptr<HostStreamQueue>> live_streams(DeviceOrdinal device);

}  // namespace cudefrag::vmm::detail
