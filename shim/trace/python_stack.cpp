#include "shim/trace/python_stack.hpp"

#include <dlfcn.h>

#include <string_view>

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
  return api.complete() ? &api : nullptr;
}

// Resolved once, at the first capture: Python programs load libpython (or are it) long before.
const PythonApi* python() {
  static const PythonApi* const api = load();
  return api;
}

constexpr std::size_t kCodeCacheCapacity = std::size_t{1} << 16;
// Set in every cached value, so that a code object with no names is still a hit.
constexpr std::uint64_t kCached = std::uint64_t{1} << 63;

}  // namespace

PythonStacks::PythonStacks(StringTable& strings)
    : strings_(strings), code_names_(kCodeCacheCapacity) {}

bool PythonStacks::available() const {
  return python() != nullptr;
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

std::size_t PythonStacks::capture(std::span<format::PythonFrame> out) {
  const PythonApi* api = python();
  if (api == nullptr || out.empty()) return 0;
  const PythonApi& py = *api;
  if (py.is_initialized() == 0 || py.gil_check() == 0) return 0;
  PyObj* state = py.current_thread_state();
  if (state == nullptr || state != py.this_thread_state()) return 0;

  std::size_t n = 0;
  PyObj* frame = py.thread_frame(state);
  while (frame != nullptr && n < out.size()) {
    PyObj* code = py.frame_code(frame);
    const int line = py.frame_line(frame);
    const std::uint64_t names = names_of(code);
    py.dec_ref(code);
    out[n++] = format::PythonFrame{static_cast<std::uint32_t>((names & ~kCached) >> 32),
                                   static_cast<std::uint32_t>(names), line, 0};
    PyObj* back = py.frame_back(frame);
    py.dec_ref(frame);
    frame = back;
  }
  if (frame != nullptr) py.dec_ref(frame);
  return n;
}

}  // namespace cudefrag::trace
