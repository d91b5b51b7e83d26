// Per-thread record buffers: the only thing an allocating thread touches when it records.
//
// A ThreadBuffer is a single-producer single-consumer byte ring. The producer is the thread
// that owns it; the consumer is whoever holds the recorder's write lock (the writer thread, or
// a thread inside flush_sync()). Records are contiguous in the ring: one that does not fit
// before the end is preceded by a padding marker and placed at the start.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <span>
#include <vector>

#include "shim/trace/format.hpp"

namespace cudefrag::trace {

class ThreadBuffer {
 public:
  // capacity: a power of two, at least twice format::kMaxRecordBytes.
  ThreadBuffer(std::size_t capacity, std::uint32_t thread_id);

  // Producer only. Appends one record made of `head` followed by `tail`; their total must be at
  // most format::kMaxRecordBytes. False, and nothing appended, when the ring is full.
  bool try_append(std::span<const std::byte> head, std::span<const std::byte> tail = {});

  // Producer only: true once per drain when the ring is more than half full, so the producer
  // wakes the writer early instead of waiting for its next tick.
  bool should_wake_writer();
  // Producer only. A record that did not fit; from then until the next drain the producer
  // should not wait for space again (dropping() is true), so a stalled writer costs the
  // program one wait, not one per record.
  void count_dropped() {
    dropped_.fetch_add(1, std::memory_order_relaxed);
    dropping_.store(true, std::memory_order_relaxed);
  }
  bool dropping() const { return dropping_.load(std::memory_order_relaxed); }

  // Consumer only. Position up to which records are committed; pass it to drain().
  std::uint64_t committed() const { return head_.load(std::memory_order_acquire); }
  // Calls sink(std::span<const std::byte>) on every record before `until`, in order, then
  // releases their space to the producer.
  template <typename Sink>
  void drain(std::uint64_t until, Sink&& sink);
  std::uint64_t take_dropped() { return dropped_.exchange(0, std::memory_order_relaxed); }
  bool empty() const {
    return tail_.load(std::memory_order_relaxed) == head_.load(std::memory_order_acquire);
  }

  // Set by the owning thread when it exits (or moves to another recorder); the consumer frees
  // the buffer once it is drained.
  void mark_orphaned() { orphaned_.store(true, std::memory_order_release); }
  bool orphaned() const { return orphaned_.load(std::memory_order_acquire); }

  std::uint32_t thread_id() const { return thread_id_; }

 private:
  static constexpr std::size_t kHeaderBytes = sizeof(format::RecordHeader);

  std::unique_ptr<std::byte[]> data_;
  std::size_t capacity_;
  std::uint32_t thread_id_;
  // Producer side.
  alignas(64) std::atomic<std::uint64_t> head_{0};
  std::uint64_t tail_seen_ = 0;  // the producer's last look at tail_
  // Consumer side.
  alignas(64) std::atomic<std::uint64_t> tail_{0};
  std::atomic<bool> wake_sent_{false};
  std::atomic<std::uint64_t> dropped_{0};
  std::atomic<bool> dropping_{false};
  std::atomic<bool> orphaned_{false};
};

template <typename Sink>
void ThreadBuffer::drain(std::uint64_t until, Sink&& sink) {
  std::uint64_t t = tail_.load(std::memory_order_relaxed);
  while (t < until) {
    const std::size_t offset = t & (capacity_ - 1);
    const std::size_t to_end = capacity_ - offset;
    if (to_end < kHeaderBytes) {
      t += to_end;
      continue;
    }
    format::RecordHeader header;
    std::memcpy(&header, data_.get() + offset, sizeof header);
    if (header.type == format::RecordType::kPadding) {
      t += to_end;
      continue;
    }
    sink(std::span<const std::byte>(data_.get() + offset, header.size));
    t += header.size;
  }
  wake_sent_.store(false, std::memory_order_relaxed);
  dropping_.store(false, std::memory_order_relaxed);
  tail_.store(t, std::memory_order_release);
}

// Every live ThreadBuffer of one recorder. Threads register on their first record; the consumer
// snapshots the list on each drain and frees the buffers of threads that have gone.
class BufferRegistry {
 public:
  explicit BufferRegistry(std::size_t capacity) : capacity_(capacity) {}

  // A new buffer for the calling thread. The registry and the thread share it, so that neither
  // a thread outliving the recorder nor a recorder outliving the thread touches freed memory.
  std::shared_ptr<ThreadBuffer> add(std::uint32_t thread_id);

  struct Pending {
    std::shared_ptr<ThreadBuffer> buffer;
    std::uint64_t until;  // committed() when the snapshot was taken
  };
  // Consumer only: every buffer with its committed position (out is cleared first).
  void snapshot(std::vector<Pending>& out);
  // Consumer only: frees the buffers whose thread has gone and that are drained.
  void reclaim();

 private:
  std::size_t capacity_;
  std::mutex mutex_;
  std::vector<std::shared_ptr<ThreadBuffer>> buffers_;
};

}  // namespace cudefrag::trace
