#include "analyzer/export/utf8.hpp"

#include <cstdint>

namespace cudefrag::analyzer {
namespace {

// Length of the valid UTF-8 sequence at text[at], or 0 when there is none.
std::size_t sequence(std::string_view text, std::size_t at) {
  const auto c = static_cast<unsigned char>(text[at]);
  if (c < 0x80) return 1;
  std::size_t n = 0;
  std::uint32_t cp = 0;
  if ((c & 0xE0) == 0xC0) {
    n = 2;
    cp = c & 0x1F;
  } else if ((c & 0xF0) == 0xE0) {
    n = 3;
    cp = c & 0x0F;
  } else if ((c & 0xF8) == 0xF0) {
    n = 4;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (at + n > text.size()) return 0;
  for (std::size_t i = 1; i < n; ++i) {
    const auto cc = static_cast<unsigned char>(text[at + i]);
    if ((cc & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (cc & 0x3F);
  }
  // Overlong forms, surrogates and values past U+10FFFF are invalid.
  static constexpr std::uint32_t kSmallest[5] = {0, 0, 0x80, 0x800, 0x10000};
  if (cp < kSmallest[n] || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return n;
}

}  // namespace

std::string_view valid_utf8(std::string_view text, std::string& storage) {
  std::size_t at = 0;
  while (at < text.size()) {
    const std::size_t n = sequence(text, at);
    if (n == 0) break;
    at += n;
  }
  if (at == text.size()) return text;
  storage.assign(text.substr(0, at));
  while (at < text.size()) {
    const std::size_t n = sequence(text, at);
    if (n == 0) {
      storage += "\xEF\xBF\xBD";
      ++at;
    } else {
      storage.append(text.substr(at, n));
      at += n;
    }
  }
  return storage;
}

}  // namespace cudefrag::analyzer
