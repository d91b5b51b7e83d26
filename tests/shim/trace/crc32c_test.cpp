#include "shim/trace/crc32c.hpp"

#include <gtest/gtest.h>

#include <string_view>
#include <vector>

namespace cudefrag::trace {
namespace {

std::uint32_t crc_of(std::string_view text, std::uint32_t start = 0) {
  return crc32c(std::as_bytes(std::span(text)), start);
}

TEST(Crc32c, KnownVectors) {
  EXPECT_EQ(crc_of(""), 0u);
  EXPECT_EQ(crc_of("123456789"), 0xE3069283u);
  // RFC 3720 (iSCSI) B.4: 32 bytes of zeros, and of 0xFF.
  const std::vector<std::byte> zeros(32, std::byte{0});
  const std::vector<std::byte> ones(32, std::byte{0xFF});
  EXPECT_EQ(crc32c(zeros), 0x8A9136AAu);
  EXPECT_EQ(crc32c(ones), 0x62A8AB43u);
}

TEST(Crc32c, ContinuesAcrossPiecesOfAnyLength) {
  const std::string text = "The quick brown fox jumps over the lazy dog, twice over.";
  for (std::size_t cut = 0; cut <= text.size(); ++cut) {
    const std::string_view all(text);
    EXPECT_EQ(crc_of(all.substr(cut), crc_of(all.substr(0, cut))), crc_of(all)) << cut;
  }
}

}  // namespace
}  // namespace cudefrag::trace
