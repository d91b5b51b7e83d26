// One compact JSON object on one line, for outputs with an event per line (perfetto.hpp).
// report/json_writer.hpp is its indented counterpart for whole documents.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace cudefrag::analyzer {

class JsonLine {
 public:
  JsonLine() { out_ = "{"; }

  JsonLine& field(std::string_view key, std::string_view text);
  JsonLine& field(std::string_view key, const char* text) {
    return field(key, std::string_view(text));
  }
  JsonLine& field(std::string_view key, const std::string& text) {
    return field(key, std::string_view(text));
  }
  JsonLine& field(std::string_view key, std::uint64_t number);
  JsonLine& field(std::string_view key, std::int64_t number);
  JsonLine& field(std::string_view key, int number) {
    return field(key, static_cast<std::int64_t>(number));
  }
  // µs with three decimals, from ns: exact.
  JsonLine& micros(std::string_view key, std::int64_t ns);
  JsonLine& strings(std::string_view key, const std::vector<std::string>& items);
  // A nested object, written by `fill` into its own JsonLine.
  JsonLine& object(std::string_view key, const JsonLine& inner);

  std::string text() const { return out_ + "}"; }

 private:
  void key(std::string_view name);

  std::string out_;
  bool first_ = true;
};

// `text` as a JSON string, quotes included.
std::string json_quote(std::string_view text);

}  // namespace cudefrag::analyzer
