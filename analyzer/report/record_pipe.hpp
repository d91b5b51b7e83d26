// Reads a trace on a thread of its own and hands the records over in batches, so that reading
// (decompression, checksums, decoding: about half of the report's work) and the replay run on
// two cores at once. Alloc, free and arena records are turned into Events on the reading
// thread (simple_event()), which also makes the batches small; the other records travel as
// they are. Batches keep file order, so the report does not depend on timing.
//
// Contract: next() is called by one consumer thread; the TraceReader must not be touched by
// anyone else until next() has returned null (the end of the trace or its first error), after
// which the reader's state (ending, error, warning, counts) is final. Memory is bounded by
// kBatches batches of kBatchRecords records.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include "analyzer/read/reader.hpp"
#include "analyzer/report/event.hpp"

namespace cudefrag::analyzer {

class RecordPipe {
 public:
  static constexpr std::size_t kBatchRecords = 4096;
  static constexpr std::size_t kBatches = 4;

  // One batch in file order: the other records are interleaved with the events at the
  // positions given, and for_each() walks both in file order.
  struct Batch {
    std::vector<Event> events;        // alloc, free and arena records
    std::vector<Record> records;      // the others: records[0, count)
    std::vector<std::size_t> before;  // records[i] came before events[before[i]]
    std::size_t count = 0;
    std::uint64_t offset = 0;  // file offset of the block holding the last record

    template <typename OnRecord, typename OnEvent>
    void for_each(OnRecord&& on_record, OnEvent&& on_event) {
      std::size_t r = 0;
      for (std::size_t e = 0; e < events.size(); ++e) {
        for (; r < count && before[r] == e; ++r) on_record(records[r]);
        on_event(events[e]);
      }
      for (; r < count; ++r) on_record(records[r]);
    }
  };

  explicit RecordPipe(TraceReader& reader);
  ~RecordPipe();
  RecordPipe(const RecordPipe&) = delete;
  RecordPipe& operator=(const RecordPipe&) = delete;

  // The next batch (its records may be moved from); null at the end. The batch returned before
  // goes back to the reading thread.
  Batch* next();

 private:
  void run();

  TraceReader& reader_;
  std::mutex mutex_;
  std::condition_variable changed_;
  std::deque<Batch*> full_;
  std::vector<Batch*> empty_;
  std::vector<Batch> batches_;
  Batch* consuming_ = nullptr;
  bool finished_ = false;  // the reading thread has handed over its last batch
  bool stop_ = false;      // the consumer went away early
  std::thread thread_;
};

}  // namespace cudefrag::analyzer
