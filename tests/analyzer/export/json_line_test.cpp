#include "analyzer/export/json_line.hpp"

#include <gtest/gtest.h>

namespace cudefrag::analyzer {
namespace {

TEST(JsonLine, OneCompactObject) {
  const std::string text = JsonLine()
                               .field("ph", "C")
                               .field("n", std::uint64_t{18446744073709551615u})
                               .micros("ts", 1234567)
                               .micros("neg", -1500)
                               .strings("l", {"a", "b"})
                               .object("args", JsonLine().field("x", -3))
                               .text();
  EXPECT_EQ(text,
            "{\"ph\":\"C\",\"n\":18446744073709551615,\"ts\":1234.567,\"neg\":-1.500,"
            "\"l\":[\"a\",\"b\"],\"args\":{\"x\":-3}}");
}

TEST(JsonLine, StringsAreEscapedAndValidUtf8) {
  EXPECT_EQ(json_quote("a\"\\\n\x01\xc3\xa9"), "\"a\\\"\\\\\\n\\u0001\xc3\xa9\"");
  EXPECT_EQ(json_quote("bad\xff"), "\"bad\xef\xbf\xbd\"");
  EXPECT_EQ(json_quote("\xe2\x82"), "\"\xef\xbf\xbd\xef\xbf\xbd\"");  // cut short
}

}  // namespace
}  // namespace cudefrag::analyzer
