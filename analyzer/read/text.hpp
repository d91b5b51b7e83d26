// Records as one line of text each, for cudefrag_trace_dump, tests and people reading a trace
// by eye. The printer remembers what earlier records defined (start time, entry point names,
// strings) so later lines can use names; feed it every record in file order.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>

#include "analyzer/read/reader.hpp"

namespace cudefrag::analyzer {

class RecordPrinter {
 public:
  // One line, without a newline. Times print as seconds since the trace started.
  std::string line(const Record& record);

 private:
  std::string time(std::uint64_t ns) const;
  std::string entry(std::uint16_t id) const;
  std::string string(std::uint32_t id) const;

  std::uint64_t start_ns_ = 0;
  std::unordered_map<std::uint16_t, std::string> entries_;
  std::unordered_map<std::uint32_t, std::string> strings_;
};

// `text` in double quotes, with quotes, backslashes and control characters escaped.
std::string quoted(std::string_view text);

}  // namespace cudefrag::analyzer
