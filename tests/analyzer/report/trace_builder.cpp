#include "tests/analyzer/report/trace_builder.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <stdexcept>
#include <tuple>

#include "shim/trace/header_records.hpp"

namespace cudefrag::analyzer::testing {
namespace {

template <typename T>
std::span<const std::byte> bytes_of(const T& value) {
  return std::as_bytes(std::span(&value, 1));
}

template <typename T>
void put(std::vector<std::byte>& out, const T& record, std::string_view text = {}) {
  trace::append_record(bytes_of(record), text, out);
}

int open_file(const std::string& path) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) throw std::runtime_error("cannot create " + path);
  return fd;
}

}  // namespace

TraceBuilder::TraceBuilder(const std::string& path) : writer_(open_file(path), false) {
  writer_.write_file_header();
}

TraceBuilder::~TraceBuilder() {
  close();
}

void TraceBuilder::process(std::uint32_t pid, std::uint64_t wall_ns, std::uint64_t mono_ns,
                           std::uint8_t stack_mode, const std::string& program,
                           const std::vector<std::string>& args) {
  const format::ProcessRecord r{
      {format::RecordType::kProcess, 0},          pid, wall_ns, mono_ns, stack_mode, 0,
      static_cast<std::uint16_t>(program.size()), 0};
  std::string text = program;
  for (std::size_t i = 0; i < args.size(); ++i)
    text += (i == 0 ? "" : std::string(1, '\0')) + args[i];
  put(opening_, r, text);
}

void TraceBuilder::config(const std::string& key, const std::string& value) {
  put(opening_, format::RecordHeader{format::RecordType::kConfig, 0}, key + "=" + value);
}

void TraceBuilder::entry_point(std::uint16_t id, const std::string& name) {
  put(opening_, format::EntryPointRecord{{format::RecordType::kEntryPoint, 0}, id, 0}, name);
}

void TraceBuilder::device(std::int32_t ordinal, const std::string& name, std::uint64_t total) {
  format::DeviceRecord r{{format::RecordType::kDevice, 0}, ordinal, total, {}};
  for (std::size_t i = 0; i < r.uuid.size(); ++i) {
    r.uuid[i] = static_cast<std::uint8_t>(0x10 * ordinal + static_cast<int>(i));
  }
  put(opening_, r, name);
}

void TraceBuilder::runtime(std::int32_t driver, std::int32_t runtime) {
  put(opening_, format::RuntimeRecord{{format::RecordType::kRuntime, 0}, driver, runtime, 0});
}

std::uint32_t TraceBuilder::string(const std::string& text, std::vector<std::byte>& out) {
  const auto [it, added] =
      strings_.try_emplace(text, static_cast<std::uint32_t>(strings_.size() + 1));
  if (added) put(out, format::StringRecord{{format::RecordType::kString, 0}, it->second}, text);
  return it->second;
}

void TraceBuilder::symbol(std::uint64_t address, NativeSymbol symbol) {
  symbols_[address] = std::move(symbol);
}

std::uint32_t TraceBuilder::stack(const std::vector<std::uint64_t>& native,
                                  const std::vector<PyFrame>& python) {
  std::vector<std::tuple<std::string, std::string, int>> key;
  for (const PyFrame& f : python) key.emplace_back(f.file, f.function, f.line);
  const auto [it, added] =
      stacks_.try_emplace({native, key}, static_cast<std::uint32_t>(stacks_.size() + 1));
  if (!added) return it->second;
  std::vector<format::PythonFrame> frames;
  for (const PyFrame& f : python) {
    frames.push_back({string(f.file, definitions_), string(f.function, definitions_), f.line, 0});
  }
  const format::StackRecord header{
      {format::RecordType::kStack,
       static_cast<std::uint16_t>(sizeof(format::StackRecord) + native.size() * 8 +
                                  frames.size() * sizeof(format::PythonFrame))},
      it->second,
      static_cast<std::uint16_t>(native.size()),
      static_cast<std::uint16_t>(frames.size()),
      0};
  const auto h = bytes_of(header);
  definitions_.insert(definitions_.end(), h.begin(), h.end());
  const auto n = std::as_bytes(std::span(native));
  definitions_.insert(definitions_.end(), n.begin(), n.end());
  const auto p = std::as_bytes(std::span(frames));
  definitions_.insert(definitions_.end(), p.begin(), p.end());
  // The writer symbolizes each new address after the records of the pass.
  for (const std::uint64_t address : native) {
    if (symbol_written_[address]) continue;
    symbol_written_[address] = true;
    const auto s = symbols_.find(address);
    if (s == symbols_.end()) continue;  // no symbol record: the analyzer shows the address
    const std::uint32_t module = s->second.module.empty() ? 0 : string(s->second.module, trailing_);
    const std::uint32_t name = s->second.symbol.empty() ? 0 : string(s->second.symbol, trailing_);
    put(trailing_, format::SymbolRecord{{format::RecordType::kSymbol, sizeof(format::SymbolRecord)},
                                        module,
                                        address,
                                        s->second.module_offset,
                                        name,
                                        0x10});
  }
  return it->second;
}

std::vector<std::byte>& TraceBuilder::thread_buffer(std::uint32_t thread) {
  for (auto& [id, buffer] : threads_) {
    if (id == thread) return buffer;
  }
  threads_.emplace_back(thread, std::vector<std::byte>());
  return threads_.back().second;
}

void TraceBuilder::alloc(std::uint32_t thread, std::uint64_t time_ns, std::uint16_t entry,
                         int device, std::uint64_t address, std::uint64_t requested,
                         std::uint64_t granted, std::uint32_t stack, std::int32_t result,
                         std::uint64_t stream) {
  put(thread_buffer(thread), format::MemoryRecord{{format::RecordType::kAlloc, 0},
                                                  entry,
                                                  static_cast<std::int16_t>(device),
                                                  thread,
                                                  result,
                                                  time_ns,
                                                  address,
                                                  requested,
                                                  granted,
                                                  stream,
                                                  stack,
                                                  0});
}

void TraceBuilder::free(std::uint32_t thread, std::uint64_t time_ns, std::uint16_t entry,
                        int device, std::uint64_t address, std::uint64_t size,
                        std::uint64_t stream) {
  put(thread_buffer(thread), format::MemoryRecord{{format::RecordType::kFree, 0},
                                                  entry,
                                                  static_cast<std::int16_t>(device),
                                                  thread,
                                                  0,
                                                  time_ns,
                                                  address,
                                                  0,
                                                  size,
                                                  stream,
                                                  0,
                                                  0});
}

void TraceBuilder::arena(std::uint32_t thread, std::uint64_t time_ns, format::ArenaEventKind kind,
                         int device, std::uint64_t address, std::uint64_t bytes,
                         std::uint64_t bytes2, std::uint32_t count) {
  put(thread_buffer(thread), format::ArenaRecord{{format::RecordType::kArena, 0},
                                                 kind,
                                                 0,
                                                 static_cast<std::int16_t>(device),
                                                 thread,
                                                 count,
                                                 time_ns,
                                                 address,
                                                 bytes,
                                                 bytes2});
}

void TraceBuilder::oom(std::uint32_t thread, std::uint64_t time_ns, std::uint16_t entry, int device,
                       std::uint64_t requested, std::uint32_t stack,
                       const format::ArenaStateFields& state, std::int32_t result,
                       std::uint64_t stream) {
  put(thread_buffer(thread), format::OomRecord{{format::RecordType::kOom, 0},
                                               entry,
                                               static_cast<std::int16_t>(device),
                                               thread,
                                               result,
                                               time_ns,
                                               requested,
                                               stream,
                                               stack,
                                               0,
                                               state});
}

void TraceBuilder::counters(std::uint64_t time_ns, int device, std::uint64_t live_allocations,
                            const format::ArenaStateFields& state) {
  put(trailing_, format::CountersRecord{{format::RecordType::kCounters, 0},
                                        static_cast<std::int16_t>(device),
                                        0,
                                        time_ns,
                                        live_allocations,
                                        state});
}

void TraceBuilder::mark(std::uint32_t thread, std::uint64_t time_ns, std::string_view text) {
  put(thread_buffer(thread), format::MarkRecord{{format::RecordType::kMark, 0}, thread, time_ns},
      text);
}

void TraceBuilder::dropped(std::uint32_t thread, std::uint64_t time_ns, std::uint64_t count) {
  put(trailing_, format::DroppedRecord{{format::RecordType::kDropped, 0}, thread, time_ns, count});
}

void TraceBuilder::end(std::uint64_t time_ns) {
  end_.clear();
  put(end_, format::EndRecord{{format::RecordType::kEnd, 0}, 0, time_ns});
}

void TraceBuilder::pass() {
  if (!opening_.empty()) {
    writer_.add_records(opening_);
    opening_.clear();
    writer_.flush();
  }
  writer_.add_records(definitions_);
  definitions_.clear();
  for (auto& [thread, buffer] : threads_) {
    writer_.add_records(buffer);
    buffer.clear();
  }
  writer_.add_records(trailing_);
  trailing_.clear();
  writer_.add_records(end_);
  end_.clear();
  writer_.flush();
}

void TraceBuilder::close() {
  pass();
  writer_.close();
}

}  // namespace cudefrag::analyzer::testing
