#include "analyzer/replay/replay_options.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace cudefrag::analyzer::replay {
namespace {

ParsedReplayArgs parse(std::vector<std::string> words) {
  std::vector<char*> args;
  for (std::string& w : words) args.push_back(w.data());
  return parse_replay_args(args);
}

TEST(ReplayOptions, Defaults) {
  const auto p = parse({"t.cdtrace"});
  ASSERT_TRUE(p.options.has_value()) << p.error;
  EXPECT_EQ(p.options->trace, "t.cdtrace");
  EXPECT_EQ(p.options->card_step, MiB(256));
  EXPECT_EQ(p.options->context, MiB(512));
  EXPECT_FALSE(p.options->card.has_value());
  EXPECT_EQ(p.options->models.size(), 4u);
  EXPECT_EQ(p.options->repeat, 1u);
  EXPECT_EQ(p.options->grow, 200u);
  EXPECT_EQ(p.options->small_max, MiB(8));
}

TEST(ReplayOptions, SmallMaxTakesTheShimsValues) {
  EXPECT_EQ(parse({"t", "--small-max", "2MiB"}).options->small_max, MiB(2));
  EXPECT_EQ(parse({"t", "--small-max", "0"}).options->small_max, Bytes{});
  for (const char* bad : {"17MiB", "-1", "x", ""}) {
    EXPECT_NE(parse({"t", "--small-max", bad}).error.find("--small-max"), std::string::npos) << bad;
  }
}

TEST(ReplayOptions, GrowTakesTheShimsValues) {
  EXPECT_EQ(parse({"t", "--grow", "0"}).options->grow, 0u);
  EXPECT_EQ(parse({"t", "--grow", "150"}).options->grow, 150u);
  for (const char* bad : {"99", "10001", "-1", "x", ""}) {
    EXPECT_NE(parse({"t", "--grow", bad}).error.find("--grow"), std::string::npos) << bad;
  }
}

TEST(ReplayOptions, RepeatIsAWholeNumberFromOneToAThousand) {
  const auto p = parse({"t", "--repeat", "8"});
  ASSERT_TRUE(p.options.has_value()) << p.error;
  EXPECT_EQ(p.options->repeat, 8u);
  EXPECT_EQ(parse({"t", "--repeat", "1000"}).options->repeat, 1000u);
  for (const char* bad : {"0", "1001", "-1", "2.5", "x", ""}) {
    EXPECT_NE(parse({"t", "--repeat", bad}).error.find("--repeat"), std::string::npos) << bad;
  }
}

TEST(ReplayOptions, ValuesAndModels) {
  const auto p = parse({"--card", "1.5", "t", "--card-step", "0.5", "--context", "0", "--model",
                        "native,cudefrag", "--model", "native", "--device", "1", "--json", "-"});
  ASSERT_TRUE(p.options.has_value()) << p.error;
  EXPECT_EQ(p.options->card, MiB(1536));
  EXPECT_EQ(p.options->card_step, MiB(512));
  EXPECT_EQ(p.options->context, Bytes{});
  EXPECT_EQ(p.options->device, 1);
  EXPECT_EQ(p.options->json, "-");
  ASSERT_EQ(p.options->models.size(), 2u);
  EXPECT_EQ(p.options->models[0], ModelKind::kNative);
  EXPECT_EQ(p.options->models[1], ModelKind::kArena);
}

TEST(ReplayOptions, SeveralModelsAfterOneFlag) {
  const auto p = parse({"--model", "async", "expandable", "t"});
  ASSERT_TRUE(p.options.has_value()) << p.error;
  EXPECT_EQ(p.options->trace, "t");
  ASSERT_EQ(p.options->models.size(), 2u);
  EXPECT_EQ(p.options->models[0], ModelKind::kAsyncPool);
  EXPECT_EQ(p.options->models[1], ModelKind::kExpandable);
}

TEST(ReplayOptions, BadCommandLinesSayWhy) {
  EXPECT_NE(parse({}).error.find("no trace"), std::string::npos);
  EXPECT_NE(parse({"t", "--card"}).error.find("needs a value"), std::string::npos);
  EXPECT_NE(parse({"t", "--card", "0"}).error.find("--card"), std::string::npos);
  EXPECT_NE(parse({"t", "--card-step", "-1"}).error.find("--card-step"), std::string::npos);
  EXPECT_NE(parse({"t", "--model", "tlsf"}).error.find("models:"), std::string::npos);
  EXPECT_NE(parse({"t", "--device", "x"}).error.find("--device"), std::string::npos);
  EXPECT_NE(parse({"t", "u"}).error.find("more than one"), std::string::npos);
  EXPECT_NE(parse({"t", "--bogus"}).error.find("unknown option"), std::string::npos);
  EXPECT_TRUE(parse({"--help"}).help);
}

}  // namespace
}  // namespace cudefrag::analyzer::replay
