#include "shim/trace/python_stack.hpp"

#include <dlfcn.h>
#include <pthread.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <new>
#include <string>
#include <utility>

#include "shim/trace/python_frame_cache.hpp"
#include "shim/trace/python_frames_reader.hpp"

namespace cudefrag::trace {
namespace {

// Python objects are opaque here.
using PyObj = void;

struct PythonApi {
  int (*is_initialized)() = nullptr;
  int (*gil_check)() = nullptr;
  PyObj* (*this_thread_state)() = nullptr;     // PyGILState_GetThisThreadState
  PyObj* (*current_thread_state)() = nullptr;  // never fails, unlike PyThreadState_Get
  PyObj* (*thread_frame)(PyObj*) = nullptr;    // new reference
  PyObj* (*frame_back)(PyObj*) = nullptr;      // new reference
  PyObj* (*frame_code)(PyObj*) = nullptr;      // new reference
  int (*frame_line)(PyObj*) = nullptr;
  PyObj* (*get_attr)(PyObj*, const char*) = nullptr;  // new reference
  const char* (*as_utf8)(PyObj*) = nullptr;           // borrowed, owned by the str
  void (*inc_ref)(PyObj*) = nullptr;
  void (*dec_ref)(PyObj*) = nullptr;
  void (*err_fetch)(PyObj**, PyObj**, PyObj**) = nullptr;
  void (*err_restore)(PyObj*, PyObj*, PyObj*) = nullptr;

  // For the walk; any of these may be missing (then the C API alone is used).
  const unsigned long* version_hex = nullptr;  // Py_Version, 3.11+
  const char* (*version_text)() = nullptr;     // Py_GetVersion
  int (*is_finalizing)() = nullptr;            // Py_IsFinalizing (3.13), _Py_IsFinalizing before
  pyframes::Runtime runtime;

  bool complete() const {
    return is_initialized && gil_check && this_thread_state && current_thread_state &&
           thread_frame && frame_back && frame_code && frame_line && get_attr && as_utf8 &&
           inc_ref && dec_ref && err_fetch && err_restore;
  }
};

template <typename F>
void resolve(const char* name, F& fn) {
  fn = reinterpret_cast<F>(dlsym(RTLD_DEFAULT, name));
}

const PythonApi* load() {
  static PythonApi api;
  resolve("Py_IsInitialized", api.is_initialized);
  resolve("PyGILState_Check", api.gil_check);
  resolve("PyGILState_GetThisThreadState", api.this_thread_state);
  resolve("PyThreadState_GetUnchecked", api.current_thread_state);  // 3.13+
  if (api.current_thread_state == nullptr) {
    resolve("_PyThreadState_UncheckedGet", api.current_thread_state);  // 3.5 to 3.12
  }
  resolve("PyThreadState_GetFrame", api.thread_frame);
  resolve("PyFrame_GetBack", api.frame_back);
  resolve("PyFrame_GetCode", api.frame_code);
  resolve("PyFrame_GetLineNumber", api.frame_line);
  resolve("PyObject_GetAttrString", api.get_attr);
  resolve("PyUnicode_AsUTF8", api.as_utf8);
  resolve("Py_IncRef", api.inc_ref);
  resolve("Py_DecRef", api.dec_ref);
  resolve("PyErr_Fetch", api.err_fetch);
  resolve("PyErr_Restore", api.err_restore);

  resolve("Py_Version", api.version_hex);
  resolve("Py_GetVersion", api.version_text);
  resolve("Py_IsFinalizing", api.is_finalizing);
  if (api.is_finalizing == nullptr) resolve("_Py_IsFinalizing", api.is_finalizing);
  resolve("PyType_Type", api.runtime.type_type);
  resolve("PyCode_Type", api.runtime.code_type);
  resolve("PyUnicode_Type", api.runtime.unicode_type);
  resolve("PyCode_Addr2Line", api.runtime.addr2line);
  resolve("PyThreadState_GetID", api.runtime.thread_id);
  return api.complete() ? &api : nullptr;
}

// Resolved once, at the first capture: Python programs load libpython (or are it) long before.
const PythonApi* python() {
  static const PythonApi* const api = load();
  return api;
}

std::optional<pyframes::Version> detected_version(const PythonApi& py) {
  if (py.version_hex != nullptr) return pyframes::version_from_hex(*py.version_hex);
  const char* text = py.version_text != nullptr ? py.version_text() : nullptr;
  if (text == nullptr) return std::nullopt;
  return pyframes::version_from_text(text);
}

std::string version_name(std::optional<pyframes::Version> v) {
  if (!v) return "Python (version unknown)";
  return "Python " + std::to_string(v->major) + "." + std::to_string(v->minor);
}

constexpr std::size_t kCodeCacheCapacity = std::size_t{1} << 16;
constexpr std::size_t kLineCacheCapacity = std::size_t{1} << 16;
// Set in every cached value, so that a code object with no names is still a hit.
constexpr std::uint64_t kCached = std::uint64_t{1} << 63;
// Frames read per walk at most (the recorder asks for 128 at most).
constexpr std::size_t kMaxWalk = 128;
constexpr std::string_view kGilOnly = "Python frames are recorded only for threads holding the GIL";

format::PythonFrame frame_of(std::uint64_t names, int line) {
  return {static_cast<std::uint32_t>((names & ~kCached) >> 32), static_cast<std::uint32_t>(names),
          line, 0};
}

// Tells PythonStacks apart for the per-thread caches: an address could be another's later.
std::atomic<std::uint64_t> g_next_instance{1};

// The calling thread's frame cache (python_frame_cache.hpp) and the PythonStacks it was filled
// for: its string ids mean nothing to another. Trivial, so initial-exec TLS with no destructor
// to order against the hooks; the cache is freed at thread exit through a pthread key.
struct ThreadFrameCache {
  std::uint64_t instance = 0;
  PythonFrameCache* cache = nullptr;
};
[[gnu::tls_model("initial-exec")]] thread_local ThreadFrameCache t_frames;

void free_frame_cache(void* cache) {
  delete static_cast<PythonFrameCache*>(cache);
  // Still this thread: a capture made later in its exit (another key's destructor) allocates
  // afresh and sets the key again, which pthread then destroys in its next round.
  t_frames = {};
}

pthread_key_t frame_cache_key() {
  static const pthread_key_t key = [] {
    pthread_key_t k{};
    pthread_key_create(&k, free_frame_cache);
    return k;
  }();
  return key;
}

// This thread's cache for `instance`, emptied if it was another's; nullptr if out of memory.
PythonFrameCache* frame_cache(std::uint64_t instance) {
  ThreadFrameCache& t = t_frames;
  if (t.instance == instance) [[likely]] {
    return t.cache;
  }
  if (t.cache == nullptr) {
    t.cache = new (std::nothrow) PythonFrameCache;
    if (t.cache == nullptr) return nullptr;
    pthread_setspecific(frame_cache_key(), t.cache);
  } else {
    t.cache->clear();
  }
  t.instance = instance;
  return t.cache;
}

}  // namespace

PythonStacks::PythonStacks(StringTable& strings, PythonStackOptions options)
    : strings_(strings),
      options_(std::move(options)),
      code_names_(kCodeCacheCapacity),
      lines_(kLineCacheCapacity),
      instance_(g_next_instance.fetch_add(1, std::memory_order_relaxed)) {}

bool PythonStacks::available() const {
  return python() != nullptr;
}

CodeRange PythonStacks::eval_loop() const {
  // Exported by CPython 3.6 to 3.13 (PEP 523), from libpython or from a python executable
  // linked with it statically (those export their symbols for extension modules).
  static const CodeRange range =
      python() != nullptr ? function_range(dlsym(RTLD_DEFAULT, "_PyEval_EvalFrameDefault"))
                          : CodeRange{};
  return range;
}

void PythonStacks::note(std::string_view message) {
  if (options_.messages != nullptr) {
    options_.messages(message);
    return;
  }
  std::string line = "cudefrag: trace: ";
  line.append(message);
  line += '\n';
  ssize_t ignored = ::write(STDERR_FILENO, line.data(), line.size());  // as the recorder's sink
  static_cast<void>(ignored);
}

void PythonStacks::decide() {
  const PythonApi& py = *python();
  const auto version = options_.assume_version ? options_.assume_version : detected_version(py);
  const auto layout = version ? pyframes::layout_for(*version) : std::nullopt;
  if (!layout) {
    note(version_name(version) + ": no frame layout known for it (3.11 to 3.13 are); " +
         std::string(kGilOnly));
  } else if (!py.runtime.complete()) {
    note(version_name(version) + ": symbols the frame walk needs are missing; " +
         std::string(kGilOnly));
  } else if (!pyframes::object_header_matches(*layout, py.runtime)) {
    note(version_name(version) +
         ": objects are not laid out as in a default build (free-threaded or debug?); " +
         std::string(kGilOnly));
  } else {
    layout_ = *layout;
    method_.store(Method::kWalk, std::memory_order_release);
    return;
  }
  method_.store(Method::kApi, std::memory_order_release);
}

std::size_t PythonStacks::capture(std::span<format::PythonFrame> out) {
  const PythonApi* api = python();
  if (api == nullptr || out.empty()) return 0;
  const PythonApi& py = *api;
  if (py.is_initialized() == 0) return 0;
  PyObj* const tstate = py.this_thread_state();
  if (tstate == nullptr) return 0;
  const bool holds_gil = py.gil_check() != 0 && py.current_thread_state() == tstate;
  std::call_once(decided_, [this] { decide(); });

  if (method() == Method::kWalk) {
    // Finalization frees the thread states of threads that do not hold the GIL.
    if (!holds_gil && py.is_finalizing != nullptr && py.is_finalizing() != 0) return 0;
    const std::size_t n = capture_walk(tstate, holds_gil, out);
    if (method() == Method::kWalk) return n;
  }
  return holds_gil ? capture_api(tstate, out) : 0;
}

std::size_t PythonStacks::capture_walk(void* tstate, bool holds_gil,
                                       std::span<format::PythonFrame> out) {
  const PythonApi& py = *python();
  std::array<pyframes::RawFrame, kMaxWalk> raw;
  const auto walked = std::span(raw).first(std::min(out.size(), raw.size()));
  const pyframes::Walk walk = pyframes::walk_frames(layout_, py.runtime, tstate, walked);
  if (!walk.consistent) {
    if (!noted_stop_.exchange(true)) {
      note(version_name(layout_.version) +
           ": a Python frame did not read as expected; such stacks are cut short there");
    }
    if (holds_gil) return capture_api(tstate, out);
  }
  PythonFrameCache* const cache = frame_cache(instance_);
  for (std::size_t i = 0; i < walk.count; ++i) {
    if (const format::PythonFrame* hit = cache != nullptr ? cache->find(raw[i]) : nullptr) {
      out[i] = *hit;
      continue;
    }
    const std::uint64_t key = pyframes::code_key(raw[i]);
    out[i] = frame_of(names_read(raw[i].code, key, holds_gil), line_for(raw[i], key));
    if (cache != nullptr) cache->insert(raw[i], out[i]);
  }
  if (holds_gil && !checked_.exchange(true) &&
      !agrees_with_api(tstate, std::span(raw).first(walk.count), out, walked.size())) {
    method_.store(Method::kApi, std::memory_order_release);
    note(version_name(layout_.version) + ": frames read in place differ from the C API's; " +
         std::string(kGilOnly));
    return 0;
  }
  return walk.count;
}

bool PythonStacks::agrees_with_api(void* tstate, std::span<const pyframes::RawFrame> walked,
                                   std::span<const format::PythonFrame> lines, std::size_t limit) {
  const PythonApi& py = *python();
  std::size_t n = 0;
  bool same = true;
  PyObj* frame = py.thread_frame(tstate);
  while (frame != nullptr && same && n < limit) {
    PyObj* code = py.frame_code(frame);
    same = n < walked.size() && walked[n].code == code && lines[n].line == py.frame_line(frame);
    py.dec_ref(code);
    ++n;
    PyObj* back = py.frame_back(frame);
    py.dec_ref(frame);
    frame = back;
  }
  if (frame != nullptr) py.dec_ref(frame);
  return same && n == walked.size();
}

std::size_t PythonStacks::capture_api(void* tstate, std::span<format::PythonFrame> out) {
  const PythonApi& py = *python();
  std::size_t n = 0;
  PyObj* frame = py.thread_frame(tstate);
  while (frame != nullptr && n < out.size()) {
    PyObj* code = py.frame_code(frame);
    const int line = py.frame_line(frame);
    const std::uint64_t names = names_of(code);
    py.dec_ref(code);
    out[n++] = frame_of(names, line);
    PyObj* back = py.frame_back(frame);
    py.dec_ref(frame);
    frame = back;
  }
  if (frame != nullptr) py.dec_ref(frame);
  return n;
}

std::int32_t PythonStacks::line_for(const pyframes::RawFrame& frame, std::uint64_t code_key) {
  std::uint64_t key = (code_key ^ static_cast<std::uint32_t>(frame.unit)) * 0x9E3779B97F4A7C15u;
  key = nonzero_key(key ^ (key >> 32));
  if (const std::uint64_t line = lines_.find(key); line != 0) {
    return static_cast<std::int32_t>(static_cast<std::uint32_t>(line));
  }
  const int line = pyframes::line_of(python()->runtime, frame);
  std::lock_guard lock(mutex_);
  if (!lines_.full() && lines_.find(key) == 0) {
    lines_.insert(key, kCached | static_cast<std::uint32_t>(line));
  }
  return line;
}

std::uint64_t PythonStacks::names_read(const void* code, std::uint64_t key, bool holds_gil) {
  key = nonzero_key(key);
  if (const std::uint64_t names = code_names_.find(key); names != 0) return names;

  std::lock_guard lock(mutex_);
  if (const std::uint64_t names = code_names_.find(key); names != 0) return names;
  std::string file;
  std::string function;
  pyframes::code_names(layout_, python()->runtime, code, file, function);
  const std::uint32_t file_id = file.empty() ? 0 : strings_.intern(file);
  const std::uint32_t function_id = function.empty() ? 0 : strings_.intern(function);
  const std::uint64_t names = kCached | std::uint64_t{file_id} << 32 | function_id;
  if (!code_names_.full()) {
    // See python_stack.hpp: a reference only where one may be taken.
    if (holds_gil) python()->inc_ref(const_cast<void*>(code));
    code_names_.insert(key, names);
  }
  return names;
}

std::uint64_t PythonStacks::names_of(PyObj* code) {
  const auto key = nonzero_key(reinterpret_cast<std::uintptr_t>(code));
  if (const std::uint64_t names = code_names_.find(key); names != 0) return names;

  const PythonApi& py = *python();
  std::lock_guard lock(mutex_);
  if (const std::uint64_t names = code_names_.find(key); names != 0) return names;
  // Attribute lookups must not disturb an exception the program is handling.
  PyObj* type = nullptr;
  PyObj* value = nullptr;
  PyObj* traceback = nullptr;
  py.err_fetch(&type, &value, &traceback);
  const auto text_of = [&](const char* attribute) -> std::uint32_t {
    PyObj* s = py.get_attr(code, attribute);
    if (s == nullptr) return 0;
    const char* utf8 = py.as_utf8(s);
    const std::uint32_t id = utf8 != nullptr ? strings_.intern(utf8) : 0;
    py.dec_ref(s);
    return id;
  };
  const std::uint32_t file = text_of("co_filename");
  std::uint32_t function = text_of("co_qualname");  // 3.11+
  if (function == 0) function = text_of("co_name");
  py.err_restore(type, value, traceback);  // also clears any error of ours

  const std::uint64_t names = kCached | std::uint64_t{file} << 32 | function;
  if (!code_names_.full()) {
    py.inc_ref(code);  // pinned: see python_stack.hpp
    code_names_.insert(key, names);
  }
  return names;
}

}  // namespace cudefrag::trace
