// Reads a thread's Python frames straight from CPython's structures (python_frames_layout.hpp),
// for a thread that does not hold the GIL.
//
// Why this is sound: the caller passes the CALLING thread's own thread state. That thread is
// blocked in our hook, so its frame chain cannot change while we read it, and each frame holds a
// strong reference to its code object, which holds its names and line table: everything read
// stays alive. Other threads may run Python meanwhile, so nothing here writes to Python memory,
// takes or drops a reference, allocates through Python or calls a function that needs the GIL.
// The walk calls no Python function but PyThreadState_GetID (a field read). line_of calls
// PyCode_Addr2Line, which only reads the code object and its line table in 3.11 to 3.13
// (checked in the sources and in the disassembly of those versions' libpython: it calls nothing
// but _PyCode_CheckLineNumber, which calls nothing that allocates).
//
// Why this is safe against a wrong layout: every object is type-checked before it is trusted
// (code objects against &PyCode_Type, names against &PyUnicode_Type), the thread state's `id` is
// compared with PyThreadState_GetID(), frame owners and instruction offsets are range-checked,
// and the walk is bounded. The first inconsistency ends the walk.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "shim/trace/python_frames_layout.hpp"

namespace cudefrag::trace::pyframes {

// What the reader needs from the interpreter in this process (found with dlsym).
struct Runtime {
  const void* type_type = nullptr;                          // &PyType_Type
  const void* code_type = nullptr;                          // &PyCode_Type
  const void* unicode_type = nullptr;                       // &PyUnicode_Type
  int (*addr2line)(void* code, int byte_offset) = nullptr;  // PyCode_Addr2Line
  std::uint64_t (*thread_id)(void* tstate) = nullptr;       // PyThreadState_GetID

  bool complete() const { return type_type && code_type && unicode_type && addr2line && thread_id; }
};

// True when the static type objects have the object header `layout` expects (their type is
// &PyType_Type at layout.object_type): false for free-threaded and Py_TRACE_REFS builds.
bool object_header_matches(const Layout& layout, const Runtime& runtime);

// A frame as walked, with what identifies its code object's names and line table: the fields
// a cache of them must compare (python_stack.hpp). No default member initialisers: the walk's
// array of 128 of them is then left uninitialised (zeroing its 6 KiB cost 60 ns a capture).
struct RawFrame {
  const void* code;
  const void* filename;   // co_filename
  const void* qualname;   // co_qualname
  const void* linetable;  // co_linetable
  std::int32_t firstlineno;
  std::uint32_t version;  // co_version (3.12+), else 0
  // The instruction, in code units from the start of the code (_PyInterpreterFrame_LASTI).
  std::int32_t unit;

  // Same code object as far as can be told without a reference to it (python_stack.hpp):
  // same address, names, line table, first line and version.
  bool same_code(const RawFrame& o) const {
    return code == o.code && filename == o.filename && qualname == o.qualname &&
           linetable == o.linetable && firstlineno == o.firstlineno && version == o.version;
  }
};

// A hash of a frame's code identity (all of RawFrame but `unit`): the key of the shared caches
// of names and lines.
std::uint64_t code_key(const RawFrame& frame);

struct Walk {
  std::size_t count = 0;
  bool consistent = true;  // false: stopped at something the layout does not explain
};

// The frames of `tstate`, innermost first, as the interpreter shows them (frames it considers
// incomplete, and the shim frames it keeps on the C stack, are left out). `tstate` must be the
// calling thread's own thread state.
Walk walk_frames(const Layout& layout, const Runtime& runtime, const void* tstate,
                 std::span<RawFrame> out);

// The source line of a frame's instruction, as the interpreter reports it. Decodes the line table
// from its start: costs about as much as the rest of the walk together, so callers cache it.
int line_of(const Runtime& runtime, const RawFrame& frame);

// Appends the code object's co_filename and co_qualname as UTF-8; a name that is not an exact,
// compact str is left empty. `code` must come from walk_frames on this thread.
void code_names(const Layout& layout, const Runtime& runtime, const void* code, std::string& file,
                std::string& function);

// Appends a str's characters as UTF-8 (lone surrogates become U+FFFD), at most max_chars of them.
// False, appending nothing, unless `str` is an exact str stored compactly (the only kind the
// interpreter puts in code objects): no other storage is read.
bool read_str(const Layout& layout, const Runtime& runtime, const void* str, std::string& out,
              std::size_t max_chars);

}  // namespace cudefrag::trace::pyframes
