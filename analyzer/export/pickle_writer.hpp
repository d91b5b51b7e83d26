// A writer of Python pickles (protocol 4, without framing), for the few types a memory
// snapshot holds: dict, list, tuple, str, int, bool, None, float. It emits only opcodes that
// PyTorch's memory_viz unpickler (MemoryViz.js) also reads, and appends to a string that the
// caller flushes to a file as it goes.
//
// Building containers: empty_list()/empty_dict(), then mark(), the items (key, value pairs for
// a dict), then appends()/setitems(). The viewer spreads each APPENDS batch into a function
// call, so callers keep batches to a thousand items or so, as Python's own pickler does.
// Memo: put(id) after a value stores it, get(id) pushes it again (any id, as the caller picks;
// ids below 256 take two bytes to refer to, larger ones five).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>

namespace cudefrag::analyzer {

class PickleWriter {
 public:
  static constexpr std::size_t kBatch = 1000;

  void proto() { op(0x80).byte(4); }
  void stop() { op('.'); }
  void none() { op('N'); }
  void boolean(bool v) { op(v ? 0x88 : 0x89); }
  void integer(std::int64_t v);
  void integer(std::uint64_t v);
  void integer(int v) { integer(static_cast<std::int64_t>(v)); }
  void floating(double v);
  // UTF-8 text; invalid sequences become U+FFFD so that the reader's decoder accepts it.
  void str(std::string_view text);
  void empty_list() { op(']'); }
  void empty_dict() { op('}'); }
  void mark() { op('('); }
  void appends() { op('e'); }
  void setitems() { op('u'); }
  void tuple() { op('t'); }  // the items since the last mark() become a tuple
  void put(std::uint32_t id);
  void get(std::uint32_t id);

  // A dict entry with a str key.
  template <typename T>
  void item(std::string_view key, T value) {
    str(key);
    if constexpr (std::is_same_v<T, std::string_view> || std::is_same_v<T, const char*>) {
      str(value);
    } else if constexpr (std::is_same_v<T, bool>) {
      boolean(value);
    } else {
      integer(value);
    }
  }

  std::string& buffer() { return out_; }

 private:
  PickleWriter& op(int code) {
    out_ += static_cast<char>(code);
    return *this;
  }
  PickleWriter& byte(int value) { return op(value); }
  void le32(std::uint32_t v);

  std::string out_;
};

}  // namespace cudefrag::analyzer
