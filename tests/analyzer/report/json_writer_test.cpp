// The JSON writer's escaping, nesting and number formats.
#include "analyzer/report/json_writer.hpp"

#include <gtest/gtest.h>

#include <optional>
#include <string>

namespace cudefrag::analyzer {
namespace {

TEST(JsonWriter, NestsAndEscapes) {
  JsonWriter j;
  j.begin_object();
  j.field("text", "a \"quoted\"\\ line\n\x01");
  j.key("list").begin_array();
  j.value(std::uint64_t{18446744073709551615u}).value(std::int64_t{-3}).value(true).null();
  j.end_array();
  j.key("empty").begin_object().end_object();
  j.key("t").seconds(-1'500'000'000);
  j.end_object();
  EXPECT_EQ(j.take(),
            "{\n"
            "  \"text\": \"a \\\"quoted\\\"\\\\ line\\n\\u0001\",\n"
            "  \"list\": [\n"
            "    18446744073709551615,\n"
            "    -3,\n"
            "    true,\n"
            "    null\n"
            "  ],\n"
            "  \"empty\": {},\n"
            "  \"t\": -1.500000000\n"
            "}\n");
}

TEST(JsonWriter, OptionalIsItsValueOrNull) {
  JsonWriter j;
  j.begin_object();
  j.field("number", std::optional<int>(-7));
  j.field("text", std::optional<std::string>("x"));
  j.field("none", std::optional<std::uint64_t>());
  j.end_object();
  EXPECT_EQ(j.take(),
            "{\n"
            "  \"number\": -7,\n"
            "  \"text\": \"x\",\n"
            "  \"none\": null\n"
            "}\n");
}

}  // namespace
}  // namespace cudefrag::analyzer
