#include "analyzer/export/memory_viz.hpp"

#include <algorithm>
#include <vector>

namespace cudefrag::analyzer {
namespace {

constexpr std::size_t kSpillBytes = std::size_t{1} << 16;

// PyTorch's small pool holds blocks of up to 1 MiB in 2 MiB segments; larger ones are "large".
constexpr std::uint64_t kSmallSegment = std::uint64_t{2} << 20;

bool write_all(std::FILE* f, const std::string& bytes) {
  return bytes.empty() || std::fwrite(bytes.data(), 1, bytes.size(), f) == bytes.size();
}

}  // namespace

MemoryVizSink::~MemoryVizSink() {
  for (auto& [device, d] : devices_) {
    if (d->spill != nullptr) std::fclose(d->spill);
  }
}

MemoryVizSink::DeviceTrace& MemoryVizSink::trace(std::int16_t device) {
  auto& slot = devices_[device];
  if (!slot) {
    slot = std::make_unique<DeviceTrace>();
    slot->spill = std::tmpfile();
    if (slot->spill == nullptr) failed_ = true;
    slot->pickle.mark();
  }
  return *slot;
}

void MemoryVizSink::spill(DeviceTrace& d, bool all) {
  std::string& bytes = d.pickle.buffer();
  if (!all && bytes.size() < kSpillBytes) return;
  if (d.spill == nullptr || !write_all(d.spill, bytes)) failed_ = true;
  bytes.clear();
}

void MemoryVizSink::frames(DeviceTrace& d, const ExportContext& c, std::uint32_t stack) {
  frames(d.pickle, c, stack, &d.memo_of_stack);
}

void MemoryVizSink::frames(PickleWriter& w, const ExportContext& c, std::uint32_t stack,
                           std::map<std::uint32_t, std::uint32_t>* memo) {
  if (stack != 0 && memo != nullptr) {
    if (const auto it = memo->find(stack); it != memo->end()) {
      w.get(it->second);
      return;
    }
  }
  bool complete = false;
  const std::vector<Frame> list = c.frames.frames(stack, &complete);
  w.empty_list();
  if (!list.empty()) {
    w.mark();
    for (const Frame& f : list) {
      w.empty_dict();
      w.mark();
      w.item("filename", std::string_view(f.filename));
      w.item("line", f.line);
      w.item("name", std::string_view(f.name));
      w.setitems();
    }
    w.appends();
  }
  // Shared once every name is known; until then a later event may get better names.
  if (stack != 0 && memo != nullptr && complete) {
    w.put(next_memo_);
    (*memo)[stack] = next_memo_++;
  }
}

void MemoryVizSink::name(DeviceTrace& d, std::string_view text) {
  if (const auto it = d.memo_of_name.find(text); it != d.memo_of_name.end()) {
    d.pickle.get(it->second);
    return;
  }
  d.pickle.str(text);
  if (next_name_memo_ < 256) {
    d.pickle.put(next_name_memo_);
    d.memo_of_name.emplace(text, next_name_memo_++);
  }
}

void MemoryVizSink::begin_event(DeviceTrace& d, std::string_view action, std::uint64_t stream,
                                std::uint64_t t, const ExportContext& c) {
  PickleWriter& w = d.pickle;
  w.empty_dict();
  w.mark();
  name(d, "action");
  name(d, action);
  name(d, "stream");
  w.integer(stream);
  name(d, "time_us");
  w.integer(c.wall_us(t));
}

void MemoryVizSink::end_event(DeviceTrace& d) {
  d.pickle.setitems();
  if (++d.in_batch == PickleWriter::kBatch) {
    d.pickle.appends();
    d.pickle.mark();
    d.in_batch = 0;
  }
  spill(d, false);
}

void MemoryVizSink::segment_event(const ExportContext& c, const DeviceMemory& dev,
                                  std::string_view action, AddressRange r, std::uint64_t t) {
  DeviceTrace& d = trace(dev.device);
  begin_event(d, action, 0, t, c);
  name(d, "addr");
  d.pickle.integer(r.begin);
  name(d, "size");
  d.pickle.integer(r.size());
  name(d, "frames");
  d.pickle.empty_list();
  end_event(d);
}

void MemoryVizSink::mapped(const ExportContext& c, const DeviceMemory& d, AddressRange r,
                           std::uint64_t t) {
  segment_event(c, d, "segment_map", r, t);
}

void MemoryVizSink::unmapped(const ExportContext& c, const DeviceMemory& d, AddressRange r,
                             std::uint64_t t) {
  segment_event(c, d, "segment_unmap", r, t);
}

void MemoryVizSink::block_event(const ExportContext& c, std::string_view action, const Block& b,
                                std::uint64_t t) {
  DeviceTrace& d = trace(b.device);
  begin_event(d, action, b.stream, t, c);
  name(d, "addr");
  d.pickle.integer(b.address);
  name(d, "size");
  d.pickle.integer(b.size);
  name(d, "frames");
  frames(d, c, b.stack);
  end_event(d);
}

void MemoryVizSink::allocated(const ExportContext& c, const Block& b, std::uint64_t t) {
  block_event(c, "alloc", b, t);
}

void MemoryVizSink::freed(const ExportContext& c, const Block& b, bool, std::uint64_t t) {
  // The frames of a free are those of the allocation, as PyTorch records them. The free is
  // complete at once: the viewer folds the pair into one "free".
  block_event(c, "free_requested", b, t);
  block_event(c, "free_completed", b, t);
}

void MemoryVizSink::oom(const ExportContext& c, const format::OomRecord& r, std::uint64_t t) {
  DeviceTrace& d = trace(r.device);
  begin_event(d, "oom", r.stream, t, c);
  name(d, "size");
  d.pickle.integer(r.requested);
  name(d, "device_free");
  d.pickle.integer(r.state.driver_free);
  name(d, "frames");
  frames(d, c, r.stack);
  end_event(d);
}

void MemoryVizSink::write_segments(PickleWriter& w, const ExportContext& c, int unknown_slot) {
  std::vector<const DeviceMemory*> devices;
  for (const auto& d : c.memory.devices()) {
    if (devices_.contains(d->device)) devices.push_back(d.get());
  }
  std::sort(devices.begin(), devices.end(),
            [](const DeviceMemory* a, const DeviceMemory* b) { return a->device < b->device; });
  const auto& blocks = c.memory.blocks();
  std::size_t in_batch = 0;
  w.mark();
  for (const DeviceMemory* d : devices) {
    auto* memo = &devices_.at(d->device)->memo_of_stack;
    for (const auto& [begin, end] : d->mapped.ranges()) {
      std::uint64_t allocated = 0;
      std::uint64_t requested = 0;
      std::vector<const Block*> inside;
      for (auto it = blocks.lower_bound(begin); it != blocks.end() && it->first < end; ++it) {
        if (it->second.device != d->device) continue;
        inside.push_back(&it->second);
        allocated += it->second.size;
        requested += it->second.requested;
      }
      w.empty_dict();
      w.mark();
      w.item("device", d->device >= 0 ? static_cast<int>(d->device) : unknown_slot);
      w.item("address", begin);
      w.item("total_size", end - begin);
      w.item("allocated_size", allocated);
      w.item("active_size", allocated);
      w.item("requested_size", requested);
      w.item("stream", 0);
      w.item("segment_type", std::string_view(end - begin <= kSmallSegment ? "small" : "large"));
      w.str("segment_pool_id");
      w.mark();
      w.integer(0);
      w.integer(0);
      w.tuple();
      w.item("is_expandable", d->has_arena_ranges);
      w.str("frames");
      w.empty_list();
      w.str("blocks");
      w.empty_list();
      w.mark();
      std::size_t block_batch = 0;
      const auto add_block = [&](std::uint64_t at, std::uint64_t size, const Block* b) {
        w.empty_dict();
        w.mark();
        w.item("address", at);
        w.item("size", size);
        w.item("requested_size", b != nullptr ? b->requested : 0);
        w.item("state", std::string_view(b != nullptr ? "active_allocated" : "inactive"));
        w.str("frames");
        if (b != nullptr) {
          frames(w, c, b->stack, memo);
        } else {
          w.empty_list();
        }
        w.setitems();
        if (++block_batch == PickleWriter::kBatch) {
          w.appends();
          w.mark();
          block_batch = 0;
        }
      };
      std::uint64_t at = begin;
      for (const Block* b : inside) {
        if (at < b->address) add_block(at, b->address - at, nullptr);
        add_block(b->address, b->size, b);
        at = b->address + b->size;
      }
      if (at < end) add_block(at, end - at, nullptr);
      w.appends();
      w.setitems();
      if (++in_batch == PickleWriter::kBatch) {
        w.appends();
        w.mark();
        in_batch = 0;
      }
      if (w.buffer().size() >= kSpillBytes) {
        if (!write_all(out_, w.buffer())) failed_ = true;
        w.buffer().clear();
      }
    }
  }
  w.appends();
}

bool MemoryVizSink::finish(const ExportContext& c, std::uint64_t) {
  int max_ordinal = -1;
  for (const auto& [device, d] : devices_) max_ordinal = std::max<int>(max_ordinal, device);
  // Events of an unknown device (-1) get the slot after the last known device.
  const int unknown_slot = max_ordinal + 1;
  std::vector<std::FILE*> slots(devices_.empty() ? 0
                                                 : static_cast<std::size_t>(unknown_slot) +
                                                       (devices_.contains(-1) ? 1 : 0));
  for (auto& [device, d] : devices_) {
    d->pickle.appends();
    spill(*d, true);
    slots[device >= 0 ? static_cast<std::size_t>(device) : static_cast<std::size_t>(unknown_slot)] =
        d->spill;
  }

  PickleWriter w;
  w.proto();
  w.empty_dict();
  w.mark();
  w.str("device_traces");
  w.empty_list();
  w.mark();
  for (std::FILE* spill : slots) {
    w.empty_list();
    if (!write_all(out_, w.buffer())) failed_ = true;
    w.buffer().clear();
    if (spill == nullptr) continue;
    std::rewind(spill);
    char chunk[1 << 15];
    std::size_t n = 0;
    while ((n = std::fread(chunk, 1, sizeof chunk, spill)) != 0) {
      if (std::fwrite(chunk, 1, n, out_) != n) failed_ = true;
    }
    if (std::ferror(spill) != 0) failed_ = true;
  }
  w.appends();
  w.str("segments");
  w.empty_list();
  write_segments(w, c, unknown_slot);
  w.str("allocator_settings");
  w.empty_dict();
  w.setitems();
  w.stop();
  if (!write_all(out_, w.buffer()) || std::fflush(out_) != 0) failed_ = true;
  return !failed_;
}

}  // namespace cudefrag::analyzer
