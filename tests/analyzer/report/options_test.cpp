// The command line of `cudefrag report`.
#include "analyzer/report/options.hpp"

#include <gtest/gtest.h>

namespace cudefrag::analyzer {
namespace {

ParsedReportArgs parse(std::vector<std::string> args) {
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  return parse_report_args(argv);
}

TEST(ReportOptions, AllOptions) {
  const auto p = parse({"--json", "out.json", "--device", "1", "--from", "1.5", "--to", "20",
                        "--site", "model.py", "--top", "5", "--buckets", "40", "t.trace"});
  ASSERT_TRUE(p.options) << p.error;
  const ReportOptions& o = *p.options;
  EXPECT_EQ(o.trace, "t.trace");
  EXPECT_EQ(o.json, "out.json");
  EXPECT_EQ(o.device, 1);
  EXPECT_DOUBLE_EQ(*o.from_s, 1.5);
  EXPECT_DOUBLE_EQ(*o.to_s, 20);
  EXPECT_EQ(o.site, "model.py");
  EXPECT_EQ(o.top, 5u);
  EXPECT_EQ(o.buckets, 40u);
}

TEST(ReportOptions, Defaults) {
  const auto p = parse({"t.trace"});
  ASSERT_TRUE(p.options);
  EXPECT_FALSE(p.options->json);
  EXPECT_FALSE(p.options->device);
  EXPECT_EQ(p.options->top, 10u);
}

TEST(ReportOptions, Errors) {
  EXPECT_EQ(parse({}).error, "no trace given");
  EXPECT_EQ(parse({"a", "b"}).error, "more than one trace given ('a', 'b')");
  EXPECT_EQ(parse({"--top", "0", "t"}).error, "invalid value '0' for --top");
  EXPECT_EQ(parse({"--device", "x", "t"}).error, "invalid value 'x' for --device");
  EXPECT_EQ(parse({"--from", "-1", "t"}).error, "invalid value '-1' for --from");
  EXPECT_EQ(parse({"--from", "nan", "t"}).error, "invalid value 'nan' for --from");
  EXPECT_EQ(parse({"--from", "3", "--to", "2", "t"}).error, "--to must not be before --from");
  EXPECT_EQ(parse({"t", "--site"}).error, "--site needs a value");
  EXPECT_EQ(parse({"--verbose", "t"}).error, "unknown option '--verbose'");
  EXPECT_TRUE(parse({"t", "--help"}).help);
}

}  // namespace
}  // namespace cudefrag::analyzer
