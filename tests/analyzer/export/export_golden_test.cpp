// Golden files for `cudefrag export` (as report_golden_test.cpp does for the report): the
// outputs for examples/traces/oom.trace must equal examples/traces/oom.*.expected, and the
// messages and exit status for the broken traces <name>.export.expected.
//
// To regenerate after a deliberate change: CUDEFRAG_REGENERATE_GOLDEN=1
// BUILD/tests/analyzer/export/analyzer_export_golden_test, then review the diff. Whether the
// outputs are right for their consumers is checked by check_exports.py.
#include <gtest/gtest.h>
#include <stdio.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "analyzer/export/export_command.hpp"
#include "tests/analyzer/support/command_run.hpp"

namespace cudefrag::analyzer {
namespace {

const std::string kSource = CUDEFRAG_SOURCE_DIR;
const std::string kDir = kSource + "/examples/traces";

using testing::read_file;
using testing::write_file;
using Result = testing::CommandResult;

bool regenerating() {
  return testing::regenerating_golden();
}

// `cudefrag export ARGS` in this process, from the source directory (relative trace paths keep
// the messages independent of the checkout's location).
Result run_export(std::vector<std::string> args) {
  return testing::run_in_process(export_main, std::move(args), kSource);
}

class TempDir {
 public:
  TempDir() {
    char pattern[] = "/tmp/cudefrag-export-XXXXXX";
    path_ = ::mkdtemp(pattern);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

void expect_golden(const std::string& actual, const std::string& name) {
  const std::string path = kDir + "/" + name;
  if (regenerating()) {
    write_file(path, actual);
    return;
  }
  EXPECT_TRUE(actual == read_file(path)) << "output differs from " << path << " (regenerate?)";
}

TEST(ExportGolden, OomTraceInEveryFormat) {
  TempDir dir;
  const Result r =
      run_export({"examples/traces/oom.trace", "--perfetto", dir.file("p.json"), "--memory-viz",
                  dir.file("v.pickle"), "--rmm-csv", dir.file("r.csv")});
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(r.err, "");
  EXPECT_EQ(r.out, "");
  expect_golden(read_file(dir.file("p.json")), "oom.perfetto.json.expected");
  expect_golden(read_file(dir.file("v.pickle")), "oom.memory_viz.pickle.expected");
  expect_golden(read_file(dir.file("r.csv")), "oom.rmm.csv.expected");
}

TEST(ExportGolden, OneOutputOnStdoutIsTheSameAsTheFile) {
  if (regenerating()) GTEST_SKIP();
  const Result r = run_export({"examples/traces/oom.trace", "--rmm-csv", "-"});
  EXPECT_EQ(r.status, 0);
  EXPECT_EQ(r.out, read_file(kDir + "/oom.rmm.csv.expected"));
}

struct Case {
  std::string name;
  std::string trace;
};

void PrintTo(const Case& c, std::ostream* os) {
  *os << c.name;
}

class ExportMessages : public ::testing::TestWithParam<Case> {};

// Broken traces: the message and the exit status, and no output left behind on an error.
TEST_P(ExportMessages, MatchTheExpectedText) {
  const Case& c = GetParam();
  TempDir dir;
  const std::string output = dir.file("out.json");
  const Result r = run_export({"examples/traces/" + c.trace, "--perfetto", output});
  std::string text = "$ cudefrag export examples/traces/" + c.trace + " --perfetto OUT\n" + r.err +
                     "--- exit status " + std::to_string(r.status) + " ---\n";
  expect_golden(text, c.name + ".export.expected");
  EXPECT_EQ(std::filesystem::exists(output), r.status == 0);
}

INSTANTIATE_TEST_SUITE_P(Cases, ExportMessages,
                         ::testing::Values(Case{"truncated", "truncated.trace"},
                                           Case{"corrupted", "corrupted.trace"},
                                           Case{"empty", "empty.trace"},
                                           Case{"not-a-trace", "not-a-trace.csv"}),
                         [](const ::testing::TestParamInfo<Case>& param) {
                           std::string name = param.param.name;
                           for (char& ch : name) {
                             if (ch == '-') ch = '_';
                           }
                           return name;
                         });

TEST(Export, AnUnwritableOutputExitsWithOne) {
  const Result r = run_export({"examples/traces/oom.trace", "--perfetto", "/nonexistent/p.json"});
  EXPECT_EQ(r.status, 1);
  EXPECT_EQ(r.err,
            "cudefrag export: cannot write '/nonexistent/p.json': No such file or directory\n");
}

TEST(Export, ABadCommandLineExitsWithTwo) {
  const Result r = run_export({"examples/traces/oom.trace"});
  EXPECT_EQ(r.status, 2);
  EXPECT_EQ(r.err.substr(0, r.err.find('\n')),
            "cudefrag export: no output given (--perfetto, --memory-viz or --rmm-csv)");
}

}  // namespace
}  // namespace cudefrag::analyzer
