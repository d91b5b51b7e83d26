// The command line of `cudefrag run`: options validated against the shim's configuration table
// (the same parser the shim uses, so the launcher cannot accept what the shim would refuse), then
// the program and its arguments.
#pragma once

#include <span>
#include <string>
#include <utility>
#include <vector>

namespace cudefrag::launcher {

struct RunOptions {
  std::vector<std::pair<std::string, std::string>> env;  // CUDEFRAG_* variables to set
  std::string library;                                   // --lib; empty: find it
  bool quiet = false;                                    // --quiet: no summary
  bool keep_torch_alloc_conf = false;                    // --keep-torch-alloc-conf
  bool help = false;
  std::vector<std::string> program;  // program and its arguments
};

struct ParsedRun {
  RunOptions options;
  std::string error;  // empty when the command line is valid
};

ParsedRun parse_run_options(std::span<char* const> args);

// The usage text of `cudefrag run`, options listed from the configuration table.
std::string run_usage();

}  // namespace cudefrag::launcher
