// How the example programs fail: a throw that names the call site, turned into a non-zero exit
// by main(), so a wrong result can never look like a pass.
#pragma once

#include <source_location>
#include <stdexcept>
#include <string>

namespace cudefrag::examples {

class Failure : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

[[noreturn]] inline void fail(const std::string& what,
                              std::source_location where = std::source_location::current()) {
  throw Failure(std::string(where.file_name()) + ":" + std::to_string(where.line()) + ": " + what);
}

// A result check that is not an API error: wrong data, a pitch too small, an address range that
// does not cover the allocation.
inline void expect(bool ok, const std::string& what,
                   std::source_location where = std::source_location::current()) {
  if (!ok) fail("check failed: " + what, where);
}

}  // namespace cudefrag::examples
