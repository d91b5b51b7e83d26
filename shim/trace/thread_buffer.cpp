#include "shim/trace/thread_buffer.hpp"

namespace cudefrag::trace {

ThreadBuffer::ThreadBuffer(std::size_t capacity, std::uint32_t thread_id)
    : data_(std::make_unique_for_overwrite<std::byte[]>(capacity)),
      capacity_(capacity),
      thread_id_(thread_id) {}

bool ThreadBuffer::try_append(std::span<const std::byte> head, std::span<const std::byte> tail) {
  const std::size_t size = head.size() + tail.size();
  const std::uint64_t pos = head_.load(std::memory_order_relaxed);
  const std::size_t offset = pos & (capacity_ - 1);
  const std::size_t skip = offset + size > capacity_ ? capacity_ - offset : 0;
  const std::size_t need = skip + size;
  if (pos + need - tail_seen_ > capacity_) {
    tail_seen_ = tail_.load(std::memory_order_acquire);
    if (pos + need - tail_seen_ > capacity_) return false;
  }
  std::byte* at = data_.get() + offset;
  if (skip != 0) {
    if (skip >= kHeaderBytes) {
      const format::RecordHeader padding{format::RecordType::kPadding, 0};
      std::memcpy(at, &padding, sizeof padding);
    }
    at = data_.get();
  }
  std::memcpy(at, head.data(), head.size());
  if (!tail.empty()) std::memcpy(at + head.size(), tail.data(), tail.size());
  head_.store(pos + need, std::memory_order_release);
  return true;
}

bool ThreadBuffer::should_wake_writer() {
  const std::uint64_t used = head_.load(std::memory_order_relaxed) - tail_seen_;
  if (used * 2 < capacity_) return false;
  // tail_seen_ may be stale: look at the real tail before bothering the writer.
  tail_seen_ = tail_.load(std::memory_order_acquire);
  if ((head_.load(std::memory_order_relaxed) - tail_seen_) * 2 < capacity_) return false;
  return !wake_sent_.exchange(true, std::memory_order_relaxed);
}

std::shared_ptr<ThreadBuffer> BufferRegistry::add(std::uint32_t thread_id) {
  auto buffer = std::make_shared<ThreadBuffer>(capacity_, thread_id);
  std::lock_guard lock(mutex_);
  buffers_.push_back(buffer);
  return buffer;
}

void BufferRegistry::snapshot(std::vector<Pending>& out) {
  out.clear();
  std::lock_guard lock(mutex_);
  for (const auto& buffer : buffers_) out.push_back({buffer, buffer->committed()});
}

void BufferRegistry::reclaim() {
  std::lock_guard lock(mutex_);
  std::erase_if(buffers_, [](const auto& b) { return b->orphaned() && b->empty(); });
}

}  // namespace cudefrag::trace
