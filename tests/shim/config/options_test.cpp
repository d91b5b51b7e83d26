// The configuration table: every variable with good and bad values, sizes with units, messages
// that name the variable, the value and the accepted values, and passthrough on any bad value.
#include "shim/config/options.hpp"

#include <gtest/gtest.h>

#include <array>
#include <map>
#include <string>

namespace cudefrag::config {
namespace {

using Env = std::map<std::string, std::string>;

LoadResult load_env(const Env& env) {
  return load(
      [](const char* name, void* context) -> const char* {
        const auto& e = *static_cast<const Env*>(context);
        const auto it = e.find(name);
        return it == e.end() ? nullptr : it->second.c_str();
      },
      const_cast<Env*>(&env));
}

TEST(Options, DefaultsMatchTheTable) {
  const LoadResult r = load_env({});
  EXPECT_EQ(r.error_count, 0U);
  EXPECT_EQ(r.config.mode, Mode::kArena);
  EXPECT_EQ(r.config.log_level, LogLevel::kWarn);
  EXPECT_TRUE(r.config.log_file.empty());
  EXPECT_TRUE(r.config.trace.empty());
  EXPECT_EQ(r.config.limit, Bytes{0});
  EXPECT_TRUE(r.config.hook_dlsym);
  EXPECT_TRUE(r.config.stats_file.empty());
  EXPECT_EQ(r.config.stacks, Stacks::kBoth);
  EXPECT_EQ(r.config.native_frames, 64);
  EXPECT_EQ(r.config.grow_percent, 200u);
  // The documented defaults are what an empty value gives.
  for (const OptionSpec& s : kOptions) {
    Config c;
    if (s.kind == Kind::kChoice || s.kind == Kind::kBool || s.kind == Kind::kCount) {
      EXPECT_TRUE(parse_option(s.id, s.default_text, c)) << s.env;
    }
    Config empty;
    EXPECT_TRUE(parse_option(s.id, "", empty)) << s.env;
  }
}

TEST(Options, TableIsConsistent) {
  for (std::size_t i = 0; i < kOptions.size(); ++i) {
    const OptionSpec& s = kOptions[i];
    EXPECT_EQ(static_cast<std::size_t>(s.id), i) << s.env;
    EXPECT_TRUE(s.env.starts_with("CUDEFRAG_")) << s.env;
    EXPECT_FALSE(s.help.empty()) << s.env;
    EXPECT_FALSE(s.accepted.empty()) << s.env;
    EXPECT_TRUE(s.flag.empty() || s.flag.starts_with("--")) << s.env;
    EXPECT_EQ(s.kind == Kind::kChoice, !s.choices.empty()) << s.env;
    for (std::string_view choice : s.choices) {
      EXPECT_NE(s.accepted.find(choice), std::string_view::npos) << s.env << " " << choice;
    }
  }
}

TEST(Options, EveryVariableAcceptsItsGoodValues) {
  const LoadResult r = load_env({{"CUDEFRAG_MODE", "passthrough"},
                                 {"CUDEFRAG_LOG_LEVEL", "debug"},
                                 {"CUDEFRAG_LOG_FILE", "/tmp/shim.log"},
                                 {"CUDEFRAG_TRACE", "/tmp/run.trace"},
                                 {"CUDEFRAG_LIMIT", "24GiB"},
                                 {"CUDEFRAG_HOOK_DLSYM", "off"},
                                 {"CUDEFRAG_STATS_FILE", "/tmp/stats"},
                                 {"CUDEFRAG_STACKS", "python"},
                                 {"CUDEFRAG_NATIVE_FRAMES", "16"}});
  EXPECT_EQ(r.error_count, 0U);
  EXPECT_EQ(r.config.mode, Mode::kPassthrough);
  EXPECT_EQ(r.config.log_level, LogLevel::kDebug);
  EXPECT_EQ(r.config.log_file.view(), "/tmp/shim.log");
  EXPECT_EQ(r.config.trace.view(), "/tmp/run.trace");
  EXPECT_EQ(r.config.limit, GiB(24));
  EXPECT_FALSE(r.config.hook_dlsym);
  EXPECT_EQ(r.config.stats_file.view(), "/tmp/stats");
  EXPECT_EQ(r.config.stacks, Stacks::kPython);
  EXPECT_EQ(r.config.native_frames, 16);
}

TEST(Options, NativeFramesIsAWholeNumberFromOneTo128) {
  for (const auto& [text, frames] : std::array<std::pair<const char*, int>, 5>{
           {{"1", 1}, {"128", 128}, {" 32 ", 32}, {"064", 64}, {"", 64}}}) {
    Config c;
    c.native_frames = 7;
    EXPECT_TRUE(parse_option(Option::kNativeFrames, text, c)) << text;
    EXPECT_EQ(c.native_frames, frames) << text;
  }
  for (const char* bad : {"0", "129", "-1", "+8", "12a", "1e2", "1000", "8 8", "0x10", "sixty"}) {
    Config c;
    EXPECT_FALSE(parse_option(Option::kNativeFrames, bad, c)) << bad;
    EXPECT_EQ(c.native_frames, 64) << bad;
  }
}

TEST(Options, GrowIsZeroOrAPercentageFrom100To10000) {
  for (const auto& [text, percent] : std::array<std::pair<const char*, std::uint32_t>, 6>{
           {{"0", 0}, {"100", 100}, {"10000", 10000}, {" 150 ", 150}, {"0300", 300}, {"", 200}}}) {
    Config c;
    c.grow_percent = 7;
    EXPECT_TRUE(parse_option(Option::kGrow, text, c)) << text;
    EXPECT_EQ(c.grow_percent, percent) << text;
  }
  for (const char* bad :
       {"99", "1", "10001", "-100", "+200", "2e2", "150%", "1.5", "000000", "x"}) {
    Config c;
    EXPECT_FALSE(parse_option(Option::kGrow, bad, c)) << bad;
    EXPECT_EQ(c.grow_percent, 200u) << bad;
  }
}

TEST(Options, ChoicesIgnoreCaseAndBlanks) {
  Config c;
  EXPECT_TRUE(parse_option(Option::kMode, " Arena ", c));
  EXPECT_EQ(c.mode, Mode::kArena);
  EXPECT_TRUE(parse_option(Option::kLogLevel, "OFF", c));
  EXPECT_EQ(c.log_level, LogLevel::kOff);
  for (std::string_view s : kStacksChoices) EXPECT_TRUE(parse_option(Option::kStacks, s, c));
  for (std::string_view s : kLogLevelChoices) EXPECT_TRUE(parse_option(Option::kLogLevel, s, c));
}

TEST(Options, BadValuesAreRejectedAndLeaveTheValueAlone) {
  Config c;
  EXPECT_FALSE(parse_option(Option::kMode, "fast", c));
  EXPECT_EQ(c.mode, Mode::kArena);
  EXPECT_FALSE(parse_option(Option::kLogLevel, "verbose", c));
  EXPECT_FALSE(parse_option(Option::kStacks, "all", c));
  EXPECT_FALSE(parse_option(Option::kHookDlsym, "maybe", c));
  EXPECT_TRUE(c.hook_dlsym);
  EXPECT_FALSE(parse_option(Option::kLimit, "lots", c));
  EXPECT_EQ(c.limit, Bytes{0});
  EXPECT_FALSE(parse_option(Option::kTrace, std::string(kMaxPath, 'x'), c));
}

TEST(Options, Booleans) {
  for (const char* yes : {"1", "true", "TRUE", "yes", "on", "On"}) {
    bool v = false;
    EXPECT_TRUE(parse_bool(yes, v)) << yes;
    EXPECT_TRUE(v) << yes;
  }
  for (const char* no : {"0", "false", "No", "off"}) {
    bool v = true;
    EXPECT_TRUE(parse_bool(no, v)) << no;
    EXPECT_FALSE(v) << no;
  }
  bool v = true;
  EXPECT_FALSE(parse_bool("2", v));
  EXPECT_FALSE(parse_bool("", v));
}

TEST(Options, SizesWithUnits) {
  const std::array<std::pair<const char*, std::uint64_t>, 16> good{{
      {"0", 0},
      {"", 0},
      {"4096", 4096},
      {"4096B", 4096},
      {"24GiB", 24ULL << 30},
      {"512MiB", 512ULL << 20},
      {"1.5GiB", 3ULL << 29},
      {"1.5 GiB", 3ULL << 29},
      {"0.5KiB", 512},
      {"64K", 64ULL << 10},
      {"2g", 2ULL << 30},
      {"1TiB", 1ULL << 40},
      {"1KB", 1000},
      {"3GB", 3000000000ULL},
      {"2.25mb", 2250000},
      {"16777216", 16ULL << 20},
  }};
  for (const auto& [text, bytes] : good) {
    Bytes b{123};
    EXPECT_TRUE(parse_bytes(text, b)) << text;
    EXPECT_EQ(b.value, bytes) << text;
  }
  for (const char* bad : {"GiB", "-1GiB", "1.2.3GiB", "12XB", "1e9", "one", "1 0", ".",
                          "99999999999999999999", "17179869184GiB", "1GiB extra"}) {
    Bytes b{123};
    EXPECT_FALSE(parse_bytes(bad, b)) << bad;
    EXPECT_EQ(b.value, 123U) << bad;
  }
}

TEST(Options, MessagesNameTheVariableTheValueAndTheAcceptedValues) {
  const LoadResult r = load_env({{"CUDEFRAG_MODE", "fast"}, {"CUDEFRAG_LIMIT", "12XB"}});
  ASSERT_EQ(r.error_count, 2U);
  EXPECT_EQ(r.error(0), "CUDEFRAG_MODE='fast' is not valid; accepted: arena, passthrough");
  EXPECT_NE(r.error(1).find("CUDEFRAG_LIMIT='12XB' is not valid; accepted: a size"),
            std::string_view::npos)
      << r.error(1);
  // A long value is cut, the message still names the accepted values.
  const LoadResult l = load_env({{"CUDEFRAG_STACKS", std::string(5000, 'q')}});
  ASSERT_EQ(l.error_count, 1U);
  EXPECT_NE(l.error(0).find("'..."), std::string_view::npos);
  EXPECT_NE(l.error(0).find("accepted: none, native, python, both"), std::string_view::npos);
}

TEST(Options, AnyBadValueMeansPassthrough) {
  for (const auto& [name, value] :
       std::map<std::string, std::string>{{"CUDEFRAG_LOG_LEVEL", "loud"},
                                          {"CUDEFRAG_LIMIT", "much"},
                                          {"CUDEFRAG_HOOK_DLSYM", "perhaps"},
                                          {"CUDEFRAG_STACKS", "all"}}) {
    const LoadResult r = load_env({{"CUDEFRAG_MODE", "arena"}, {name, value}});
    EXPECT_EQ(r.error_count, 1U) << name;
    EXPECT_EQ(r.config.mode, Mode::kPassthrough) << name;
  }
  EXPECT_EQ(load_env({{"CUDEFRAG_MODE", "turbo"}}).config.mode, Mode::kPassthrough);
  // The other values still apply.
  const LoadResult r = load_env({{"CUDEFRAG_LIMIT", "much"}, {"CUDEFRAG_LOG_LEVEL", "error"}});
  EXPECT_EQ(r.config.log_level, LogLevel::kError);
}

TEST(Options, FormatInvalidFitsAnyBuffer) {
  std::array<char, 16> small{};
  const std::string_view m = format_invalid(spec(Option::kMode), "--mode", "x", small);
  EXPECT_EQ(m.size(), small.size() - 1);
  EXPECT_EQ(small.back(), '\0');
}

TEST(Options, MarkdownTableListsEveryVariable) {
  const std::string md = markdown_table();
  for (const OptionSpec& s : kOptions) {
    EXPECT_NE(md.find("`" + std::string(s.env) + "`"), std::string::npos) << s.env;
    if (!s.flag.empty()) {
      EXPECT_NE(md.find(std::string(s.flag)), std::string::npos) << s.flag;
    }
  }
  EXPECT_NE(md.find("--no-hook-dlsym"), std::string::npos);
}

}  // namespace
}  // namespace cudefrag::config
