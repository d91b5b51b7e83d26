// Where CPython keeps a thread's frames, code objects and strings: byte offsets for the versions
// whose layouts we mirror, so that frames can be read without calling Python (python_stack.hpp
// says when and why).
//
// Covered: CPython 3.11, 3.12 and 3.13, default builds on LP64 Linux (64-bit pointers and
// Py_ssize_t). Not covered, and refused at run time by python_frames_reader's checks rather than
// by version: free-threaded builds (3.13t: a larger object header) and Py_TRACE_REFS builds (two
// more header pointers). The offsets come from struct mirrors of the 3.11.7, 3.12.1 and 3.13.0
// headers (python_frames_layout.cpp), written for this project and checked against offsetof in
// those headers; patch releases do not change these structs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace cudefrag::trace::pyframes {

struct Version {
  int major = 0;
  int minor = 0;
  friend bool operator==(const Version&, const Version&) = default;
};

// From Py_Version (3.11+: 0xMMmmppRS, e.g. 0x030C03F0 for 3.12.3 final).
Version version_from_hex(std::uint64_t hex);
// From Py_GetVersion()'s text ("3.10.13 (main, ...)"); nullopt if it does not start "M.m".
std::optional<Version> version_from_text(std::string_view text);

inline constexpr int kNoOwner = -1;

// PyASCIIObject's `state` bit-field, the same in 3.11 to 3.13 but for its bit 7: `ready` in 3.11,
// `statically_allocated` after. Read by copying its 32 bits into this mirror.
struct StrState {
  unsigned interned : 2;
  unsigned kind : 3;  // bytes per character: 1, 2 or 4
  unsigned compact : 1;
  unsigned ascii : 1;
  unsigned ready_or_static : 1;
  unsigned : 24;
};
static_assert(sizeof(StrState) == 4);

struct Layout {
  Version version;

  // Every object: the reference count, then the type (PyObject, default builds).
  std::size_t object_type = 0;

  // PyThreadState: the innermost frame is tstate->cframe->current_frame (3.11, 3.12) or
  // tstate->current_frame (3.13). `id` is checked against PyThreadState_GetID() on every walk:
  // it lies after the frame pointer, so a shifted prefix shows there.
  std::size_t tstate_frame = 0;  // offset of cframe (3.11, 3.12) or current_frame (3.13)
  bool through_cframe = false;
  std::size_t cframe_current_frame = 0;
  std::size_t tstate_id = 0;

  // _PyInterpreterFrame. `instr` is prev_instr (3.11, 3.12: the last code unit started) or
  // instr_ptr (3.13: the one executing); either way the interpreter's line is that of
  // `instr - code units`, as _PyInterpreterFrame_LASTI computes it.
  std::size_t frame_code = 0;  // f_code, or f_executable (3.13: may be None on a shim frame)
  std::size_t frame_previous = 0;
  std::size_t frame_instr = 0;
  std::size_t frame_owner = 0;  // a char
  int owner_generator = 1;
  int owner_cstack = kNoOwner;  // 3.12+: the entry frame the interpreter puts on the C stack
  int max_owner = 2;

  // PyCodeObject (a PyVarObject: ob_size counts 2-byte code units).
  std::size_t code_units_count = 0;  // ob_size
  std::size_t code_filename = 0;
  std::size_t code_qualname = 0;
  std::size_t code_linetable = 0;
  std::size_t code_firstlineno = 0;
  // co_version (3.12+): numbered from a counter as each code object is made, so it tells a code
  // object from a later one at the same address. 0: none (3.11).
  std::size_t code_version = 0;
  std::size_t code_firsttraceable =
      0;                       // frames before it are incomplete: the interpreter hides them
  std::size_t code_units = 0;  // co_code_adaptive

  // str (PyASCIIObject / PyCompactUnicodeObject): a compact string's characters follow its
  // header, whose size depends on whether it is ASCII.
  std::size_t str_length = 0;
  std::size_t str_state = 0;
  std::size_t str_ascii_data = 0;
  std::size_t str_compact_data = 0;
  bool str_has_ready_bit = false;  // 3.11 (PEP 393 "ready"); dropped in 3.12
};

// The layout for a version, or nullopt when we have none (before 3.11, after 3.13).
std::optional<Layout> layout_for(Version version);

}  // namespace cudefrag::trace::pyframes
