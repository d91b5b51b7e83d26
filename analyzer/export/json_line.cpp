#include "analyzer/export/json_line.hpp"

#include <cinttypes>
#include <cstdio>

#include "analyzer/export/utf8.hpp"

namespace cudefrag::analyzer {

std::string json_quote(std::string_view raw) {
  std::string repaired;
  const std::string_view text = valid_utf8(raw, repaired);
  std::string out = "\"";
  for (const char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    switch (ch) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (c < 0x20 || c == 0x7F) {
          char escaped[8];
          std::snprintf(escaped, sizeof escaped, "\\u%04x", c);
          out += escaped;
        } else {
          out += ch;  // valid UTF-8 passes through
        }
    }
  }
  out += '"';
  return out;
}

void JsonLine::key(std::string_view name) {
  if (!first_) out_ += ',';
  first_ = false;
  out_ += json_quote(name);
  out_ += ':';
}

JsonLine& JsonLine::field(std::string_view k, std::string_view text) {
  key(k);
  out_ += json_quote(text);
  return *this;
}

JsonLine& JsonLine::field(std::string_view k, std::uint64_t number) {
  key(k);
  out_ += std::to_string(number);
  return *this;
}

JsonLine& JsonLine::field(std::string_view k, std::int64_t number) {
  key(k);
  out_ += std::to_string(number);
  return *this;
}

JsonLine& JsonLine::micros(std::string_view k, std::int64_t ns) {
  key(k);
  const bool negative = ns < 0;
  const std::uint64_t magnitude =
      negative ? static_cast<std::uint64_t>(-(ns + 1)) + 1 : static_cast<std::uint64_t>(ns);
  char text[40];
  std::snprintf(text, sizeof text, "%s%" PRIu64 ".%03" PRIu64, negative ? "-" : "",
                magnitude / 1000, magnitude % 1000);
  out_ += text;
  return *this;
}

JsonLine& JsonLine::strings(std::string_view k, const std::vector<std::string>& items) {
  key(k);
  out_ += '[';
  for (std::size_t i = 0; i < items.size(); ++i) {
    if (i != 0) out_ += ',';
    out_ += json_quote(items[i]);
  }
  out_ += ']';
  return *this;
}

JsonLine& JsonLine::object(std::string_view k, const JsonLine& inner) {
  key(k);
  out_ += inner.text();
  return *this;
}

}  // namespace cudefrag::analyzer
