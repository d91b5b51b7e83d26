#include "analyzer/report/html_escape.hpp"

namespace cudefrag::analyzer {

std::string html_escaped(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        if ((static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\n') || c == 0x7f) {
          out += "\xEF\xBF\xBD";
        } else {
          out += c;
        }
    }
  }
  return out;
}

std::string shortened(std::string_view text, std::size_t max_chars) {
  const auto continuation = [](char c) { return (static_cast<unsigned char>(c) & 0xC0) == 0x80; };
  if (max_chars == 0) return {};
  std::size_t chars = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (continuation(text[i])) continue;
    if (chars + 1 == max_chars) {
      // The last character fits only if it is the last of the text.
      std::size_t end = i + 1;
      while (end < text.size() && continuation(text[end])) ++end;
      if (end == text.size()) return std::string(text);
      return std::string(text.substr(0, i)) + "…";
    }
    ++chars;
  }
  return std::string(text);
}

}  // namespace cudefrag::analyzer
