#include "analyzer/report/record_pipe.hpp"

namespace cudefrag::analyzer {

RecordPipe::RecordPipe(TraceReader& reader) : reader_(reader), batches_(kBatches) {
  for (Batch& b : batches_) {
    b.events.reserve(kBatchRecords);
    b.records.resize(1);
    b.before.resize(1);
    empty_.push_back(&b);
  }
  thread_ = std::thread([this] { run(); });
}

RecordPipe::~RecordPipe() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  changed_.notify_all();
  thread_.join();
}

void RecordPipe::run() {
  for (;;) {
    Batch* batch = nullptr;
    {
      std::unique_lock lock(mutex_);
      changed_.wait(lock, [&] { return stop_ || !empty_.empty(); });
      if (stop_) return;
      batch = empty_.back();
      empty_.pop_back();
    }
    batch->events.clear();
    batch->count = 0;
    bool last = false;
    Event event;
    while (batch->events.size() + batch->count < kBatchRecords) {
      Record& slot = batch->records[batch->count];
      if (!reader_.next(slot, &batch->offset)) {
        last = true;
        break;
      }
      if (simple_event(slot, event)) {
        batch->events.push_back(event);
        continue;
      }
      batch->before[batch->count] = batch->events.size();
      if (++batch->count == batch->records.size()) {
        batch->records.emplace_back();
        batch->before.emplace_back();
      }
    }
    {
      std::lock_guard lock(mutex_);
      if (batch->count + batch->events.size() != 0) {
        full_.push_back(batch);
      } else {
        empty_.push_back(batch);
      }
      finished_ = last;
    }
    changed_.notify_all();
    if (last) return;
  }
}

RecordPipe::Batch* RecordPipe::next() {
  std::unique_lock lock(mutex_);
  if (consuming_ != nullptr) {
    empty_.push_back(consuming_);
    consuming_ = nullptr;
    changed_.notify_all();
  }
  changed_.wait(lock, [&] { return finished_ || !full_.empty(); });
  if (full_.empty()) return nullptr;
  consuming_ = full_.front();
  full_.pop_front();
  return consuming_;
}

}  // namespace cudefrag::analyzer
