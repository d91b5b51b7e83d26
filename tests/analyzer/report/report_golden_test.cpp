// Golden files for `cudefrag report` (as heaptrack compares interpreted traces with .expected
// files): the traces in examples/traces/ are made by golden_traces.cpp, and each case's output
// (stdout, stderr, exit status) must equal examples/traces/<case>.expected.
//
// To regenerate after a deliberate change, run tests/analyzer/report/regenerate_golden.sh
// BUILD_DIR (it sets CUDEFRAG_REGENERATE_GOLDEN=1), then review the diff.
#include <gtest/gtest.h>
#include <stdio.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "analyzer/report/report_command.hpp"
#include "tests/analyzer/report/golden_traces.hpp"
#include "tests/analyzer/support/command_run.hpp"
#include "tests/shim/trace/trace_files.hpp"

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

std::string replace_all(std::string text, const std::string& from, const std::string& to) {
  for (std::size_t at = 0; (at = text.find(from, at)) != std::string::npos; at += to.size()) {
    text.replace(at, from.size(), to);
  }
  return text;
}

// Runs the report in this process, as `cudefrag report ARGS`, capturing both streams.
Result report(std::vector<std::string> args, const std::string& cwd = {}) {
  return testing::run_in_process(report_main, std::move(args), cwd);
}

TEST(GoldenTraces, AreWhatTheGeneratorWrites) {
  if (regenerating()) {
    testing::write_golden_traces(kDir);
    GTEST_SKIP() << "regenerated the traces in " << kDir;
  }
  trace::testing::TempDir dir;
  for (const std::string& name : testing::write_golden_traces(dir.path().string())) {
    EXPECT_EQ(read_file(dir.file(name)), read_file(kDir + "/" + name))
        << name << " differs from what golden_traces.cpp writes: regenerate the golden files";
  }
}

struct Case {
  std::string name;
  std::string trace;
  std::vector<std::string> args;
};

void PrintTo(const Case& c, std::ostream* os) {
  *os << c.name;
}

class ReportGolden : public ::testing::TestWithParam<Case> {};

TEST_P(ReportGolden, MatchesTheExpectedOutput) {
  const Case& c = GetParam();
  std::vector<std::string> args = c.args;
  // A relative path, from the source directory: the report wraps long lines (a warning naming
  // the trace), so an absolute path would make the text depend on where the checkout lives.
  args.push_back("examples/traces/" + c.trace);
  const Result run = report(args, kSource);
  std::string shown = "$ cudefrag report";
  for (const std::string& a : args) shown += " " + a;
  std::string text = shown + "\n" + run.out;
  if (!run.err.empty()) text += "--- stderr ---\n" + run.err;
  text += "--- exit status " + std::to_string(run.status) + " ---\n";
  text = replace_all(text, kSource + "/", "");

  const std::string expected_path = kDir + "/" + c.name + ".expected";
  if (regenerating()) {
    write_file(expected_path, text);
    GTEST_SKIP() << "regenerated " << expected_path;
  }
  EXPECT_EQ(text, read_file(expected_path)) << "output differs from " << expected_path;
}

INSTANTIATE_TEST_SUITE_P(
    Cases, ReportGolden,
    ::testing::Values(
        Case{"oom", "oom.trace", {}}, Case{"oom.json", "oom.trace", {"--json", "-"}},
        Case{"oom.range", "oom.trace", {"--from", "1.5", "--to", "3.2", "--buckets", "10"}},
        Case{"oom.site", "oom.trace", {"--site", "attention", "--top", "3"}},
        Case{"multi_device", "multi_device.trace", {}},
        Case{"multi_device.device1", "multi_device.trace", {"--device", "1"}},
        Case{"multi_device.device1.json", "multi_device.trace", {"--device", "1", "--json", "-"}},
        Case{"truncated", "truncated.trace", {"--top", "3"}},
        Case{"corrupted", "corrupted.trace", {}}, Case{"future", "future.trace", {}},
        Case{"empty", "empty.trace", {}}, Case{"not-a-trace", "not-a-trace.csv", {}}),
    [](const ::testing::TestParamInfo<Case>& param) {
      std::string name = param.param.name;
      for (char& ch : name) {
        if (ch == '.' || ch == '-') ch = '_';
      }
      return name;
    });

}  // namespace
}  // namespace cudefrag::analyzer
