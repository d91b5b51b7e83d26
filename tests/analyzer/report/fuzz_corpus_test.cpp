// Every input of the reader's fuzz corpus (tests/fuzz/corpus/reader/: seeds, inputs the fuzzer
// found interesting, and those that once crashed) through `cudefrag report`, text and JSON, with
// the option sets the fuzz target uses. CI runs this under ASan+UBSan, so a crash or undefined
// behaviour that the fuzzer once found stays fixed even where libFuzzer cannot run.
#include <gtest/gtest.h>
#include <stdio.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "analyzer/report/report_command.hpp"

namespace cudefrag::analyzer {
namespace {

int run_report(std::vector<std::string> args) {
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  char* text = nullptr;
  std::size_t size = 0;
  FILE* out = open_memstream(&text, &size);
  const int status = report_main(argv, out, out);
  std::fclose(out);
  std::free(text);
  return status;
}

TEST(FuzzCorpus, EveryInputIsReportedOrRefusedCleanly) {
  const std::filesystem::path dir =
      std::filesystem::path(CUDEFRAG_SOURCE_DIR) / "tests/fuzz/corpus/reader";
  ASSERT_TRUE(std::filesystem::is_directory(dir)) << dir;
  const std::vector<std::vector<std::string>> option_sets = {{},
                                                             {"--json", "-"},
                                                             {"--device", "0"},
                                                             {"--from", "0.001", "--to", "1"},
                                                             {"--site", "main", "--buckets", "1"}};
  std::size_t inputs = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (!entry.is_regular_file()) continue;
    ++inputs;
    for (const auto& options : option_sets) {
      std::vector<std::string> args = options;
      args.push_back(entry.path().string());
      const int status = run_report(args);
      EXPECT_TRUE(status == 0 || status == 2) << entry.path() << " exit " << status;
    }
  }
  EXPECT_GT(inputs, 0u);
}

}  // namespace
}  // namespace cudefrag::analyzer
