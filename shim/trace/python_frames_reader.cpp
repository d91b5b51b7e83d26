#include "shim/trace/python_frames_reader.hpp"

#include <algorithm>
#include <cstring>
#include <type_traits>

namespace cudefrag::trace::pyframes {
namespace {

using Address = std::uintptr_t;

Address address_of(const void* p) {
  return reinterpret_cast<Address>(p);
}

// A field of a structure we only know by offset. memcpy: the structures are not ours, so no C++
// object of type T lives there (and the compiler emits one plain load).
template <typename T>
T load(const void* base, std::size_t offset) {
  static_assert(std::is_trivially_copyable_v<T>);
  T value;
  std::memcpy(&value, static_cast<const unsigned char*>(base) + offset, sizeof value);
  return value;
}

bool aligned(const void* p) {
  return p != nullptr && address_of(p) % alignof(void*) == 0;
}

bool has_type(const Layout& layout, const void* object, const void* type) {
  return aligned(object) && load<const void*>(object, layout.object_type) == type;
}

void append_utf8(std::string& out, std::uint32_t c) {
  // A lone surrogate has no UTF-8 form; nor has anything above U+10FFFF.
  if ((c >= 0xD800 && c <= 0xDFFF) || c > 0x10FFFF) c = 0xFFFD;
  if (c < 0x80) {
    out += static_cast<char>(c);
  } else if (c < 0x800) {
    out += static_cast<char>(0xC0 | (c >> 6));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    out += static_cast<char>(0xE0 | (c >> 12));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (c >> 18));
    out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  }
}

template <typename Char>
void append_chars(std::string& out, const unsigned char* data, std::size_t count) {
  for (std::size_t i = 0; i < count; ++i) {
    Char c;
    std::memcpy(&c, data + i * sizeof c, sizeof c);
    append_utf8(out, c);
  }
}

// The innermost frame the thread state points at (nullptr when it runs no Python code).
const void* innermost_frame(const Layout& layout, const void* tstate) {
  if (!layout.through_cframe) return load<const void*>(tstate, layout.tstate_frame);
  const void* cframe = load<const void*>(tstate, layout.tstate_frame);
  return aligned(cframe) ? load<const void*>(cframe, layout.cframe_current_frame) : nullptr;
}

// The chain is not what the layout says: the frames read so far are kept.
Walk stopped(Walk walk) {
  walk.consistent = false;
  return walk;
}

// Code objects far larger than any compiler output mean we are not reading a code object.
constexpr std::ptrdiff_t kMaxCodeUnits = std::ptrdiff_t{1} << 28;

}  // namespace

// The key changes if any identity field does, so a code object freed and another allocated at
// its address is a different key unless its file name, qualified name and line table all reuse
// the old ones' addresses too, with the same first line and (3.12+) the same co_version.
std::uint64_t code_key(const RawFrame& frame) {
  constexpr std::uint64_t kMultiplier = 0x9E3779B97F4A7C15u;
  std::uint64_t h = address_of(frame.code);
  for (const void* field : {frame.filename, frame.qualname, frame.linetable}) {
    h = (h ^ address_of(field)) * kMultiplier;
    h ^= h >> 29;
  }
  h = (h ^ (std::uint64_t{frame.version} << 32 | static_cast<std::uint32_t>(frame.firstlineno))) *
      kMultiplier;
  return h ^ (h >> 32);
}

bool object_header_matches(const Layout& layout, const Runtime& runtime) {
  return has_type(layout, runtime.code_type, runtime.type_type) &&
         has_type(layout, runtime.unicode_type, runtime.type_type);
}

Walk walk_frames(const Layout& layout, const Runtime& runtime, const void* tstate,
                 std::span<RawFrame> out) {
  Walk walk;
  if (!aligned(tstate) || runtime.thread_id(const_cast<void*>(tstate)) !=
                              load<std::uint64_t>(tstate, layout.tstate_id)) {
    return stopped(walk);
  }
  // Skipped frames are few (one shim frame per entry into the interpreter from C, and frames not
  // yet started); this bound also stops a cycle.
  std::size_t budget = 2 * out.size() + 64;
  for (const void* frame = innermost_frame(layout, tstate); frame != nullptr;) {
    if (walk.count == out.size()) return walk;
    if (budget-- == 0 || !aligned(frame)) return stopped(walk);
    const int owner = load<signed char>(frame, layout.frame_owner);
    if (owner < 0 || owner > layout.max_owner) return stopped(walk);
    const void* const previous = load<const void*>(frame, layout.frame_previous);
    if (owner == layout.owner_cstack) {  // holds no code object in 3.13
      frame = previous;
      continue;
    }
    const void* const code = load<const void*>(frame, layout.frame_code);
    if (!has_type(layout, code, runtime.code_type)) return stopped(walk);

    // The instruction as an index into the code units, as _PyInterpreterFrame_LASTI computes it:
    // -1 (3.11, 3.12: a frame not started yet) to the number of code units, exclusive.
    const auto units = static_cast<std::ptrdiff_t>(address_of(code) + layout.code_units);
    const auto instr =
        static_cast<std::ptrdiff_t>(address_of(load<const void*>(frame, layout.frame_instr)));
    const std::ptrdiff_t bytes = instr - units;
    const auto count = load<std::ptrdiff_t>(code, layout.code_units_count);
    if (count <= 0 || count > kMaxCodeUnits || bytes % 2 != 0 || bytes < -2 || bytes / 2 >= count) {
      return stopped(walk);
    }
    const std::ptrdiff_t index = bytes / 2;
    // _PyFrame_IsIncomplete: the interpreter shows no frame before its first traceable unit.
    if (owner != layout.owner_generator && index < load<int>(code, layout.code_firsttraceable)) {
      frame = previous;
      continue;
    }
    // Plain loads, no hashing: a cache hit compares them (python_stack.cpp).
    out[walk.count++] = {
        code,
        load<const void*>(code, layout.code_filename),
        load<const void*>(code, layout.code_qualname),
        load<const void*>(code, layout.code_linetable),
        load<std::int32_t>(code, layout.code_firstlineno),
        layout.code_version != 0 ? load<std::uint32_t>(code, layout.code_version) : 0,
        static_cast<std::int32_t>(index)};
    frame = previous;
  }
  return walk;
}

int line_of(const Runtime& runtime, const RawFrame& frame) {
  return runtime.addr2line(const_cast<void*>(frame.code), frame.unit * 2);  // in bytes
}

void code_names(const Layout& layout, const Runtime& runtime, const void* code, std::string& file,
                std::string& function) {
  constexpr std::size_t kMaxChars = 16384;
  read_str(layout, runtime, load<const void*>(code, layout.code_filename), file, kMaxChars);
  read_str(layout, runtime, load<const void*>(code, layout.code_qualname), function, kMaxChars);
}

bool read_str(const Layout& layout, const Runtime& runtime, const void* str, std::string& out,
              std::size_t max_chars) {
  if (!has_type(layout, str, runtime.unicode_type)) return false;
  const auto state = load<StrState>(str, layout.str_state);
  if (state.compact == 0 || (layout.str_has_ready_bit && state.ready_or_static == 0)) return false;
  const unsigned kind = state.kind;
  if ((kind != 1 && kind != 2 && kind != 4) || (state.ascii != 0 && kind != 1)) return false;
  const auto length = load<std::ptrdiff_t>(str, layout.str_length);
  if (length < 0) return false;
  const std::size_t count = std::min(static_cast<std::size_t>(length), max_chars);
  const auto* data = static_cast<const unsigned char*>(str) +
                     (state.ascii != 0 ? layout.str_ascii_data : layout.str_compact_data);
  switch (kind) {
    case 1:
      if (state.ascii != 0) {
        out.append(reinterpret_cast<const char*>(data), count);
      } else {
        append_chars<std::uint8_t>(out, data, count);  // Latin-1
      }
      break;
    case 2:
      append_chars<std::uint16_t>(out, data, count);
      break;
    default:
      append_chars<std::uint32_t>(out, data, count);
      break;
  }
  return true;
}

}  // namespace cudefrag::trace::pyframes
