// Strings stored once in a trace (Python file and function names, native modules and symbols),
// referred to by id. Interning takes a lock: it happens only on a cache miss (a code object or
// a native address seen for the first time), never for a repeated call site.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "shim/trace/definitions.hpp"

namespace cudefrag::trace {

class StringTable {
 public:
  // Longer strings are cut to this many bytes.
  static constexpr std::size_t kMaxBytes = 16384;

  explicit StringTable(DefinitionQueue& definitions) : definitions_(definitions) {}

  // The id of `text` (from 1), defining it in the trace on first sight.
  std::uint32_t intern(std::string_view text);

 private:
  DefinitionQueue& definitions_;
  std::mutex mutex_;
  std::unordered_map<std::string, std::uint32_t> ids_;
};

}  // namespace cudefrag::trace
