#include "shim/trace/python_frames_layout.hpp"

#include <charconv>
#include <cstddef>

namespace cudefrag::trace::pyframes {
namespace {

// Struct mirrors: the fields CPython declares, in its order and with its types, up to the last
// field we read; offsetof on them gives the offsets. Members we never read keep their C names
// so that each mirror can be compared line by line with the header it follows. Only the order,
// sizes and alignments matter: these types are never instantiated.
using Ptr = void*;
using Ssize = std::ptrdiff_t;  // Py_ssize_t, Py_hash_t

struct Object {  // PyObject_HEAD
  Ssize ob_refcnt;
  Ptr ob_type;
};
struct VarObject {  // PyObject_VAR_HEAD
  Object ob_base;
  Ssize ob_size;
};

namespace v3_11 {  // Include/cpython/pystate.h, internal/pycore_frame.h, cpython/code.h, 3.11.7
struct CFrame {
  std::uint8_t use_tracing;
  Ptr current_frame;
  Ptr previous;
};
struct ThreadState {
  Ptr prev, next, interp;
  int _initialized, _static;
  int recursion_remaining, recursion_limit, recursion_headroom;
  int tracing, tracing_what;
  Ptr cframe;
  Ptr c_profilefunc, c_tracefunc, c_profileobj, c_traceobj;
  Ptr curexc_type, curexc_value, curexc_traceback;
  Ptr exc_info, dict;
  int gilstate_counter;
  Ptr async_exc;
  unsigned long thread_id, native_thread_id;
  int trash_delete_nesting;
  Ptr trash_delete_later;
  Ptr on_delete, on_delete_data;
  int coroutine_origin_tracking_depth;
  Ptr async_gen_firstiter, async_gen_finalizer, context;
  std::uint64_t context_ver, id;
};
struct InterpreterFrame {
  Ptr f_func, f_globals, f_builtins, f_locals, f_code, frame_obj, previous;
  Ptr prev_instr;
  int stacktop;
  bool is_entry;
  char owner;
};
struct Code {
  VarObject ob_base;
  Ptr co_consts, co_names, co_exceptiontable;
  int co_flags;
  short co_warmup, _co_linearray_entry_size;
  int co_argcount, co_posonlyargcount, co_kwonlyargcount, co_stacksize, co_firstlineno;
  int co_nlocalsplus, co_nlocals, co_nplaincellvars, co_ncellvars, co_nfreevars;
  Ptr co_localsplusnames, co_localspluskinds, co_filename, co_name, co_qualname, co_linetable;
  Ptr co_weakreflist, _co_code;
  char* _co_linearray;
  int _co_firsttraceable;
  Ptr co_extra;
  char co_code_adaptive[1];
};
struct AsciiStr {
  Object ob_base;
  Ssize length, hash;
  StrState state;
  Ptr wstr;
};
struct CompactStr {
  AsciiStr _base;
  Ssize utf8_length;
  char* utf8;
  Ssize wstr_length;
};
}  // namespace v3_11

namespace v3_12 {  // the same headers, 3.12.1
struct CFrame {
  Ptr current_frame;
  Ptr previous;
};
struct ThreadState {
  Ptr prev, next, interp;
  unsigned _status;  // a 32-bit bit-field
  int py_recursion_remaining, py_recursion_limit, c_recursion_remaining, recursion_headroom;
  int tracing, what_event;
  Ptr cframe;
  Ptr c_profilefunc, c_tracefunc, c_profileobj, c_traceobj;
  Ptr current_exception, exc_info, dict;
  int gilstate_counter;
  Ptr async_exc;
  unsigned long thread_id, native_thread_id;
  struct {
    int delete_nesting;
    Ptr delete_later;
  } trash;
  Ptr on_delete, on_delete_data;
  int coroutine_origin_tracking_depth;
  Ptr async_gen_firstiter, async_gen_finalizer, context;
  std::uint64_t context_ver, id;
};
struct InterpreterFrame {
  Ptr f_code, previous, f_funcobj, f_globals, f_builtins, f_locals, frame_obj;
  Ptr prev_instr;
  int stacktop;
  std::uint16_t return_offset;
  char owner;
};
struct Code {
  VarObject ob_base;
  Ptr co_consts, co_names, co_exceptiontable;
  int co_flags, co_argcount, co_posonlyargcount, co_kwonlyargcount, co_stacksize, co_firstlineno;
  int co_nlocalsplus, co_framesize, co_nlocals, co_ncellvars, co_nfreevars;
  std::uint32_t co_version;
  Ptr co_localsplusnames, co_localspluskinds, co_filename, co_name, co_qualname, co_linetable;
  Ptr co_weakreflist, _co_cached;
  std::uint64_t _co_instrumentation_version;
  Ptr _co_monitoring;
  int _co_firsttraceable;
  Ptr co_extra;
  char co_code_adaptive[1];
};
struct AsciiStr {
  Object ob_base;
  Ssize length, hash;
  StrState state;
};
struct CompactStr {
  AsciiStr _base;
  Ssize utf8_length;
  char* utf8;
};
}  // namespace v3_12

namespace v3_13 {  // the same headers, 3.13.0
struct ThreadState {
  Ptr prev, next, interp;
  std::uintptr_t eval_breaker;
  unsigned _status;  // a 32-bit bit-field
  int _whence, state;
  int py_recursion_remaining, py_recursion_limit, c_recursion_remaining, recursion_headroom;
  int tracing, what_event;
  Ptr current_frame;
  Ptr c_profilefunc, c_tracefunc, c_profileobj, c_traceobj;
  Ptr current_exception, exc_info, dict;
  int gilstate_counter;
  Ptr async_exc;
  unsigned long thread_id, native_thread_id;
  Ptr delete_later;
  std::uintptr_t critical_section;
  int coroutine_origin_tracking_depth;
  Ptr async_gen_firstiter, async_gen_finalizer, context;
  std::uint64_t context_ver, id;
};
struct InterpreterFrame {
  Ptr f_executable, previous, f_funcobj, f_globals, f_builtins, f_locals, frame_obj;
  Ptr instr_ptr;
  int stacktop;
  std::uint16_t return_offset;
  char owner;
};
struct Code {
  VarObject ob_base;
  Ptr co_consts, co_names, co_exceptiontable;
  int co_flags, co_argcount, co_posonlyargcount, co_kwonlyargcount, co_stacksize, co_firstlineno;
  int co_nlocalsplus, co_framesize, co_nlocals, co_ncellvars, co_nfreevars;
  std::uint32_t co_version;
  Ptr co_localsplusnames, co_localspluskinds, co_filename, co_name, co_qualname, co_linetable;
  Ptr co_weakreflist, co_executors, _co_cached;
  std::uintptr_t _co_instrumentation_version;
  Ptr _co_monitoring;
  int _co_firsttraceable;
  Ptr co_extra;
  char co_code_adaptive[1];
};
using AsciiStr = v3_12::AsciiStr;
using CompactStr = v3_12::CompactStr;
}  // namespace v3_13

// Fields every version names alike.
template <typename Frame, typename Code, typename AsciiStr, typename CompactStr>
Layout common(Version version) {
  Layout l;
  l.version = version;
  l.object_type = offsetof(Object, ob_type);
  l.frame_previous = offsetof(Frame, previous);
  l.frame_owner = offsetof(Frame, owner);
  l.code_units_count = offsetof(VarObject, ob_size);
  l.code_filename = offsetof(Code, co_filename);
  l.code_qualname = offsetof(Code, co_qualname);
  l.code_linetable = offsetof(Code, co_linetable);
  l.code_firstlineno = offsetof(Code, co_firstlineno);
  l.code_firsttraceable = offsetof(Code, _co_firsttraceable);
  l.code_units = offsetof(Code, co_code_adaptive);
  l.str_length = offsetof(AsciiStr, length);
  l.str_state = offsetof(AsciiStr, state);
  l.str_ascii_data = sizeof(AsciiStr);
  l.str_compact_data = sizeof(CompactStr);
  return l;
}

Layout layout_3_11() {
  using namespace v3_11;
  Layout l = common<InterpreterFrame, Code, AsciiStr, CompactStr>({3, 11});
  l.tstate_frame = offsetof(ThreadState, cframe);
  l.through_cframe = true;
  l.cframe_current_frame = offsetof(CFrame, current_frame);
  l.tstate_id = offsetof(ThreadState, id);
  l.frame_code = offsetof(InterpreterFrame, f_code);
  l.frame_instr = offsetof(InterpreterFrame, prev_instr);
  l.owner_cstack = kNoOwner;
  l.max_owner = 2;  // thread, generator, frame object
  l.str_has_ready_bit = true;
  return l;
}

Layout layout_3_12() {
  using namespace v3_12;
  Layout l = common<InterpreterFrame, Code, AsciiStr, CompactStr>({3, 12});
  l.code_version = offsetof(Code, co_version);
  l.tstate_frame = offsetof(ThreadState, cframe);
  l.through_cframe = true;
  l.cframe_current_frame = offsetof(CFrame, current_frame);
  l.tstate_id = offsetof(ThreadState, id);
  l.frame_code = offsetof(InterpreterFrame, f_code);
  l.frame_instr = offsetof(InterpreterFrame, prev_instr);
  l.owner_cstack = 3;
  l.max_owner = 3;
  return l;
}

Layout layout_3_13() {
  using namespace v3_13;
  Layout l = common<InterpreterFrame, Code, AsciiStr, CompactStr>({3, 13});
  l.code_version = offsetof(Code, co_version);
  l.tstate_frame = offsetof(ThreadState, current_frame);
  l.through_cframe = false;
  l.tstate_id = offsetof(ThreadState, id);
  l.frame_code = offsetof(InterpreterFrame, f_executable);
  l.frame_instr = offsetof(InterpreterFrame, instr_ptr);
  l.owner_cstack = 3;
  l.max_owner = 3;
  return l;
}

}  // namespace

Version version_from_hex(std::uint64_t hex) {
  return {static_cast<int>((hex >> 24) & 0xFF), static_cast<int>((hex >> 16) & 0xFF)};
}

std::optional<Version> version_from_text(std::string_view text) {
  Version v;
  const char* const end = text.data() + text.size();
  auto [dot, major_error] = std::from_chars(text.data(), end, v.major);
  if (major_error != std::errc{} || dot == end || *dot != '.') return std::nullopt;
  if (std::from_chars(dot + 1, end, v.minor).ec != std::errc{}) return std::nullopt;
  return v;
}

std::optional<Layout> layout_for(Version version) {
  if (version.major != 3) return std::nullopt;
  switch (version.minor) {
    case 11:
      return layout_3_11();
    case 12:
      return layout_3_12();
    case 13:
      return layout_3_13();
    default:
      return std::nullopt;
  }
}

}  // namespace cudefrag::trace::pyframes
