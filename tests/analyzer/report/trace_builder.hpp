// Writes traces with chosen times, threads, addresses and stacks, through the recorder's own
// block writer (shim/trace/block_writer.hpp) and record layouts, so that golden traces are
// byte-for-byte reproducible. It writes like the recorder's writer thread does: in passes,
// each pass being the definitions made since the last one, then every thread's records thread
// by thread (so records of different threads come out of time order), then the symbols of the
// new stacks, then one block.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "shim/trace/block_writer.hpp"
#include "shim/trace/format.hpp"

namespace cudefrag::analyzer::testing {

namespace format = trace::format;

struct PyFrame {
  std::string file;
  std::string function;
  int line = 0;
};

struct NativeSymbol {
  std::string module;  // empty: dladdr knew nothing
  std::string symbol;  // empty: no symbol
  std::uint64_t module_offset = 0;
};

class TraceBuilder {
 public:
  explicit TraceBuilder(const std::string& path);
  ~TraceBuilder();
  TraceBuilder(const TraceBuilder&) = delete;
  TraceBuilder& operator=(const TraceBuilder&) = delete;

  // The opening records; the first pass writes them as block 0.
  void process(std::uint32_t pid, std::uint64_t wall_ns, std::uint64_t mono_ns,
               std::uint8_t stack_mode, const std::string& program,
               const std::vector<std::string>& args);
  void config(const std::string& key, const std::string& value);
  void entry_point(std::uint16_t id, const std::string& name);
  void device(std::int32_t ordinal, const std::string& name, std::uint64_t total);
  void runtime(std::int32_t driver, std::int32_t runtime);

  // What dladdr would say of a native return address; used when a stack first refers to it.
  void symbol(std::uint64_t address, NativeSymbol symbol);
  // The id of a stack (defined in the next pass the first time it is seen).
  std::uint32_t stack(const std::vector<std::uint64_t>& native, const std::vector<PyFrame>& python);

  void alloc(std::uint32_t thread, std::uint64_t time_ns, std::uint16_t entry, int device,
             std::uint64_t address, std::uint64_t requested, std::uint64_t granted,
             std::uint32_t stack, std::int32_t result = 0, std::uint64_t stream = 0);
  void free(std::uint32_t thread, std::uint64_t time_ns, std::uint16_t entry, int device,
            std::uint64_t address, std::uint64_t size, std::uint64_t stream = 0);
  void arena(std::uint32_t thread, std::uint64_t time_ns, format::ArenaEventKind kind, int device,
             std::uint64_t address, std::uint64_t bytes, std::uint64_t bytes2, std::uint32_t count);
  void oom(std::uint32_t thread, std::uint64_t time_ns, std::uint16_t entry, int device,
           std::uint64_t requested, std::uint32_t stack, const format::ArenaStateFields& state,
           std::int32_t result = 2, std::uint64_t stream = 0);
  // Counters come from the writer thread: written at the end of the pass.
  void counters(std::uint64_t time_ns, int device, std::uint64_t live_allocations,
                const format::ArenaStateFields& state);
  void mark(std::uint32_t thread, std::uint64_t time_ns, std::string_view text);
  void dropped(std::uint32_t thread, std::uint64_t time_ns, std::uint64_t count);
  void end(std::uint64_t time_ns);

  // Writes one pass as a block.
  void pass();
  // Bytes in the file so far.
  std::uint64_t bytes_written() const { return writer_.bytes_written(); }
  void close();

 private:
  std::uint32_t string(const std::string& text, std::vector<std::byte>& out);
  std::vector<std::byte>& thread_buffer(std::uint32_t thread);

  trace::BlockWriter writer_;
  std::vector<std::byte> opening_;
  std::vector<std::byte> definitions_;
  std::vector<std::byte> trailing_;  // symbols and counters, after the threads' records
  std::vector<std::pair<std::uint32_t, std::vector<std::byte>>> threads_;
  std::map<std::string, std::uint32_t> strings_;
  std::map<
      std::pair<std::vector<std::uint64_t>, std::vector<std::tuple<std::string, std::string, int>>>,
      std::uint32_t>
      stacks_;
  std::map<std::uint64_t, NativeSymbol> symbols_;
  std::map<std::uint64_t, bool> symbol_written_;
  std::vector<std::byte> end_;
};

}  // namespace cudefrag::analyzer::testing
