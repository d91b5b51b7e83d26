#include "analyzer/export/pickle_writer.hpp"

#include <bit>

#include "analyzer/export/utf8.hpp"

namespace cudefrag::analyzer {

void PickleWriter::le32(std::uint32_t v) {
  for (int i = 0; i < 4; ++i) out_ += static_cast<char>((v >> (8 * i)) & 0xFF);
}

void PickleWriter::integer(std::int64_t v) {
  if (v >= 0 && v < 256) {
    op('K').byte(static_cast<int>(v));  // BININT1
  } else if (v >= 0 && v < 65536) {
    op('M');  // BININT2
    out_ += static_cast<char>(v & 0xFF);
    out_ += static_cast<char>((v >> 8) & 0xFF);
  } else if (v >= INT32_MIN && v <= INT32_MAX) {
    op('J');  // BININT
    le32(static_cast<std::uint32_t>(static_cast<std::int32_t>(v)));
  } else {
    // LONG1: little-endian two's complement, as few bytes as keep the sign.
    auto u = static_cast<std::uint64_t>(v);
    std::string bytes;
    for (int i = 0; i < 8; ++i) bytes += static_cast<char>((u >> (8 * i)) & 0xFF);
    while (bytes.size() > 1) {
      const auto last = static_cast<unsigned char>(bytes.back());
      const auto prev = static_cast<unsigned char>(bytes[bytes.size() - 2]);
      const bool redundant = (last == 0 && prev < 0x80) || (last == 0xFF && prev >= 0x80);
      if (!redundant) break;
      bytes.pop_back();
    }
    op(0x8a).byte(static_cast<int>(bytes.size()));
    out_ += bytes;
  }
}

void PickleWriter::integer(std::uint64_t v) {
  if (v <= static_cast<std::uint64_t>(INT64_MAX)) {
    integer(static_cast<std::int64_t>(v));
    return;
  }
  op(0x8a).byte(9);  // a ninth byte keeps the value positive
  for (int i = 0; i < 8; ++i) out_ += static_cast<char>((v >> (8 * i)) & 0xFF);
  out_ += '\0';
}

void PickleWriter::floating(double v) {
  op('G');  // BINFLOAT: big-endian IEEE 754
  const auto bits = std::bit_cast<std::uint64_t>(v);
  for (int i = 7; i >= 0; --i) out_ += static_cast<char>((bits >> (8 * i)) & 0xFF);
}

void PickleWriter::str(std::string_view text) {
  std::string repaired;
  const std::string_view valid = valid_utf8(text, repaired);
  if (valid.size() < 256) {
    op(0x8c).byte(static_cast<int>(valid.size()));  // SHORT_BINUNICODE
  } else {
    op('X');  // BINUNICODE
    le32(static_cast<std::uint32_t>(valid.size()));
  }
  out_.append(valid);
}

void PickleWriter::put(std::uint32_t id) {
  if (id < 256) {
    op('q').byte(static_cast<int>(id));  // BINPUT
    return;
  }
  op('r');  // LONG_BINPUT
  le32(id);
}

void PickleWriter::get(std::uint32_t id) {
  if (id < 256) {
    op('h').byte(static_cast<int>(id));  // BINGET
    return;
  }
  op('j');  // LONG_BINGET
  le32(id);
}

}  // namespace cudefrag::analyzer
