// Trace strings are the program's bytes (file names, symbols, mark texts) and need not be valid
// UTF-8, which a pickle's str and a JSON document must be: invalid sequences become U+FFFD.
#pragma once

#include <string>
#include <string_view>

namespace cudefrag::analyzer {

// `text` itself when it is valid UTF-8 (the common case: no copy), else a repaired copy kept in
// `storage`.
std::string_view valid_utf8(std::string_view text, std::string& storage);

}  // namespace cudefrag::analyzer
