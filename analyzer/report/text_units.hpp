// Numbers as the report prints them.
#pragma once

#include <cstdint>
#include <string>

namespace cudefrag::analyzer {

// "0 B", "512 B", "1.5 KiB", "3.0 MiB", "24.0 GiB", "1.2 TiB".
std::string bytes_text(std::uint64_t bytes);

// Seconds with millisecond precision: "12.345".
std::string seconds_text(std::int64_t ns);

// "42%" (rounded); "-" when the whole is 0.
std::string percent_text(std::uint64_t part, std::uint64_t whole);

}  // namespace cudefrag::analyzer
