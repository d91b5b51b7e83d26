// A small library that python3 loads with ctypes in python_stack_test and python_capture_test:
// it records allocations through a recorder of its own, as the hooks would inside a Python
// program, and captures Python frames directly.
#include <array>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "shim/trace/definitions.hpp"
#include "shim/trace/python_stack.hpp"
#include "shim/trace/recorder.hpp"
#include "shim/trace/string_table.hpp"

namespace {
std::unique_ptr<cudefrag::trace::Recorder> g_recorder;
}

extern "C" [[gnu::visibility("default")]] int probe_start(const char* path, const char* stacks) {
  cudefrag::trace::Options o;
  o.path = path;
  o.stacks = cudefrag::trace::parse_stack_mode(stacks).value_or(cudefrag::trace::StackMode::kNone);
  g_recorder = cudefrag::trace::Recorder::open(o);
  return g_recorder ? 0 : 1;
}

extern "C" [[gnu::visibility("default")]] void probe_alloc(unsigned long address) {
  if (g_recorder) {
    g_recorder->record_alloc({cudefrag::trace::EntryPoint{0},
                              cudefrag::DeviceOrdinal{0},
                              nullptr,
                              cudefrag::DevicePtr{address},
                              cudefrag::Bytes{1},
                              cudefrag::Bytes{1},
                              0,
                              {}});
  }
}

extern "C" [[gnu::visibility("default")]] void probe_stop() {
  g_recorder.reset();
}

// For the process-wide recorder (cudefrag_mark through ctypes.CDLL(None)).
extern "C" [[gnu::visibility("default")]] void probe_configure(const char* path) {
  cudefrag::trace::Options o;
  o.path = path;
  cudefrag::trace::configure(o);
}

namespace {

// `stacks`' capture on the calling thread, as lines "function|file|line" (texts: every string
// defined so far, by id), then each note as "!note". -1 if `out` is too small.
int render_capture(cudefrag::trace::PythonStacks& stacks,
                   cudefrag::trace::DefinitionQueue& definitions,
                   std::map<std::uint32_t, std::string>& texts,
                   const std::vector<std::string>& notes, char* out, int out_size) {
  using namespace cudefrag::trace;
  std::array<format::PythonFrame, 128> frames{};
  const std::size_t n = stacks.capture(frames);

  std::vector<std::byte> records;
  definitions.take(records);
  for (std::size_t at = 0; at + sizeof(format::StringRecord) <= records.size();) {
    format::StringRecord record;
    std::memcpy(&record, records.data() + at, sizeof record);
    const auto* text = reinterpret_cast<const char*>(records.data() + at + sizeof record);
    texts[record.id].assign(text, record.header.size - sizeof record);
    at += record.header.size;
  }
  std::string rendered;
  for (std::size_t i = 0; i < n; ++i) {
    rendered += texts[frames[i].function] + "|" + texts[frames[i].file] + "|" +
                std::to_string(frames[i].line) + "\n";
  }
  for (const auto& note : notes) rendered += "!" + note + "\n";
  if (rendered.size() >= static_cast<std::size_t>(out_size)) return -1;
  std::memcpy(out, rendered.c_str(), rendered.size() + 1);
  return static_cast<int>(n);
}

}  // namespace

// Captures the calling thread's Python frames with a PythonStacks of its own and writes them to
// `out` as render_capture does. assume_major 0: the detected version. Returns the number of
// frames, or -1 if `out` is too small.
extern "C" [[gnu::visibility("default")]] int probe_capture(int assume_major, int assume_minor,
                                                            char* out, int out_size) {
  using namespace cudefrag::trace;
  static std::vector<std::string> notes;  // one capture at a time: the callers are tests
  notes.clear();
  DefinitionQueue definitions;
  StringTable strings(definitions);
  PythonStackOptions options;
  options.messages = [](std::string_view note) { notes.emplace_back(note); };
  if (assume_major != 0) options.assume_version = pyframes::Version{assume_major, assume_minor};
  PythonStacks stacks(strings, options);
  std::map<std::uint32_t, std::string> texts;
  return render_capture(stacks, definitions, texts, notes, out, out_size);
}

// As probe_capture, with one PythonStacks kept from call to call (and its caches with it), as
// the recorder keeps one: what a cache remembers of a code object must not outlive it.
extern "C" [[gnu::visibility("default")]] int probe_capture_kept(char* out, int out_size) {
  using namespace cudefrag::trace;
  static std::vector<std::string> notes;
  static DefinitionQueue definitions;
  static StringTable strings(definitions);
  static PythonStacks stacks(strings,
                             {.messages = [](std::string_view note) { notes.emplace_back(note); }});
  static std::map<std::uint32_t, std::string> texts;
  notes.clear();
  return render_capture(stacks, definitions, texts, notes, out, out_size);
}

// probe_capture's frame count from a thread this library starts, which Python never saw.
extern "C" [[gnu::visibility("default")]] int probe_capture_in_new_thread() {
  int count = -1;
  char text[4096];
  std::thread([&] { count = probe_capture(0, 0, text, sizeof text); }).join();
  return count;
}
