#include "analyzer/export/export_options.hpp"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace cudefrag::analyzer {
namespace {

ParsedExportArgs parse(std::vector<std::string> args) {
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  return parse_export_args(argv);
}

TEST(ExportOptions, OutputsAndFilters) {
  const ParsedExportArgs p = parse({"--perfetto", "p.json", "t.trace", "--device", "1", "--from",
                                    "0.5", "--to", "2", "--rmm-csv", "-"});
  ASSERT_TRUE(p.options) << p.error;
  EXPECT_EQ(p.options->trace, "t.trace");
  EXPECT_EQ(p.options->perfetto, "p.json");
  EXPECT_EQ(p.options->rmm_csv, "-");
  EXPECT_FALSE(p.options->memory_viz);
  EXPECT_EQ(p.options->filter.device, 1);
  EXPECT_EQ(p.options->filter.from_s, 0.5);
  EXPECT_EQ(p.options->filter.to_s, 2.0);
  EXPECT_FALSE(p.options->filter.until_oom);
  EXPECT_TRUE(parse({"t", "--until-oom", "--memory-viz", "v"}).options->filter.until_oom);
}

TEST(ExportOptions, Errors) {
  EXPECT_EQ(parse({"t.trace"}).error, "no output given (--perfetto, --memory-viz or --rmm-csv)");
  EXPECT_EQ(parse({"--perfetto", "a"}).error, "no trace given");
  EXPECT_EQ(parse({"t", "--memory-viz"}).error, "--memory-viz needs a value");
  EXPECT_EQ(parse({"t", "--perfetto", "-", "--rmm-csv", "-"}).error,
            "only one output can go to stdout ('-')");
  EXPECT_EQ(parse({"t", "--perfetto", "a", "--json", "x"}).error, "unknown option '--json'");
  EXPECT_EQ(parse({"t", "--perfetto", "a", "--top", "3"}).error, "unknown option '--top'");
  EXPECT_EQ(parse({"t", "--perfetto", "a", "--device", "-1"}).options->filter.device, -1);
  EXPECT_EQ(parse({"t", "--perfetto", "a", "--to", "1", "--from", "2"}).error,
            "--to must not be before --from");
  EXPECT_EQ(parse({"t", "--perfetto", "a", "--device", "x"}).error,
            "invalid value 'x' for --device");
  EXPECT_TRUE(parse({"--help"}).help);
}

}  // namespace
}  // namespace cudefrag::analyzer
